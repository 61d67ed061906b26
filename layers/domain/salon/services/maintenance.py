"""Jobs that keep denormalised copies right: re-fanning a member's views after a role change, copying a
studio's plan to its members, and the cascade that removes a deleted client."""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools import Logger

from salon import clock
from salon.data import keys
from salon.data.batch import batch_get, write_batch
from salon.data.models import ClientProfile, ClientTombstone, ClientView, Member, ProProfile, TableItem
from salon.data.tx import ConditionFailed, n, s, update_item
from salon.services.access import MASKED_ROLES
from salon.services.fanout import tombstone
from salon.services.views import build_view

logger = Logger(child=True)
PAGE = 100
MEMBERSHIP_ROUNDS = 3  # pages redone at once because the role changed while they were written
REFAN_REWRITES = 3  # rounds of rewriting views a concurrent edit overtook, before the chunk fails for its retry


class RefanRaced(Exception):
    """Profiles kept moving under a re-fan's writes; the job's retry (SQS) does the chunk again."""


def refan_member(message: dict[str, Any]) -> None:
    """Rewrite every view of one member with the masking their current role asks for.

    The writes are unconditional, so they can land on a newer view: this job reads a profile at v2, a pro
    edits it (v3) and the stream consumer writes the v3 view, then this job's v2 view replaces it, and no
    later record comes to mend it. So the profiles are read consistently and, once the views are written,
    read again: a view whose profile moved past what was written is rewritten, up to ``REFAN_REWRITES``
    rounds, then the chunk fails and is retried (a view behind its profile is rewritten then too)."""
    from salon.services.jobs import enqueue

    pro_id = message["pro_id"]
    for _ in range(MEMBERSHIP_ROUNDS):
        try:
            pro = TableItem.get(keys.pro_pk(pro_id), keys.PROFILE, consistent_read=True)
        except TableItem.DoesNotExist:
            return
        more = _refan_page(pro_id, pro, message.get("after"))
        if _membership(pro_id) == _membership_of(pro):
            if more is not None:
                enqueue("refan_member", pro_id=pro_id, after=more)
            return
        # The role or the membership changed while this page was written: its masking may be the old role's,
        # so the page is done again at once with the new one (a pro who left: their studio views are then left
        # to the departure job), rather than waiting for the message's retry.
    raise RefanRaced(f"the membership of {pro_id} kept changing under its re-fan")


def _refan_page(pro_id: str, pro: TableItem, start: str | None) -> str | None:
    """Rewrite one page of the pro's views with the masking ``pro``'s role asks for; the sort key of the next
    page, if any."""
    masked = isinstance(pro, ProProfile) and pro.role in MASKED_ROLES
    results = TableItem.query(
        keys.pro_pk(pro_id),
        TableItem.sk.startswith("CLIENT#"),
        limit=PAGE,
        page_size=PAGE,
        last_evaluated_key={"pk": {"S": keys.pro_pk(pro_id)}, "sk": {"S": start}} if start else None,
        consistent_read=True,
    )
    # A studio's views only while the pro is an active member of it: a re-fan that finds the pro leaving (or
    # gone) leaves those views to the departure job, never rewriting them with what the studio wrote since.
    member_of = (
        keys.studio_pk(pro.studio_id)
        if isinstance(pro, ProProfile) and pro.studio_id and pro.membership_status == "active"
        else None
    )
    views = [
        v
        for v in results
        if isinstance(v, ClientView) and (not str(v.owner).startswith("STUDIO#") or v.owner == member_of)
    ]
    profiles = batch_get([(keys.client_pk(v.client_id), keys.PROFILE) for v in views], consistent=True)
    now = clock.now_us()
    puts: dict[str, ClientView | ClientTombstone] = {}
    for view in views:
        profile = profiles.get((keys.client_pk(view.client_id), keys.PROFILE))
        if isinstance(profile, ClientProfile) and (
            bool(view.masked) != masked or int(view.version) < int(profile.version)
        ):
            puts[view.client_id] = _view_or_tombstone(profile, pro_id, masked, now)
    for _ in range(1 + REFAN_REWRITES):
        write_batch(puts=puts.values())
        puts = _overtaken(puts, pro_id, masked)
        if not puts:
            break
    else:
        raise RefanRaced(f"{len(puts)} profiles still moving under the re-fan of {pro_id}")
    return results.last_evaluated_key["sk"]["S"] if results.last_evaluated_key is not None else None


def _membership_of(pro: TableItem | None) -> tuple[str | None, str | None, str | None]:
    if not isinstance(pro, ProProfile):
        return None, None, None
    return pro.studio_id, pro.role, pro.membership_status


def _membership(pro_id: str) -> tuple[str | None, str | None, str | None]:
    try:
        return _membership_of(TableItem.get(keys.pro_pk(pro_id), keys.PROFILE, consistent_read=True))
    except TableItem.DoesNotExist:
        return None, None, None


def _view_or_tombstone(profile: ClientProfile, pro_id: str, masked: bool, now: int) -> ClientView | ClientTombstone:
    """What the stream consumer leaves in the pro's place for ``profile``: a view, or a tombstone once the pro
    is no longer assigned (a rewrite must not bring back a view the consumer removed)."""
    if pro_id in (profile.assignees or set()):
        return build_view(profile, pro_id, masked=masked, changed_at_us=now)
    return cast(ClientTombstone, tombstone(pro_id, profile.client_id, int(profile.version), now))


def _overtaken(
    written: dict[str, ClientView | ClientTombstone], pro_id: str, masked: bool
) -> dict[str, ClientView | ClientTombstone]:
    """What to write again: the items of ``written`` whose profile (read consistently) moved past them."""
    if not written:
        return {}
    profiles = batch_get([(keys.client_pk(c), keys.PROFILE) for c in written], consistent=True)
    now = clock.now_us()
    again: dict[str, ClientView | ClientTombstone] = {}
    for client_id, item in written.items():
        profile = profiles.get((keys.client_pk(client_id), keys.PROFILE))
        if isinstance(profile, ClientProfile):
            if int(profile.version) > int(item.version):
                again[client_id] = _view_or_tombstone(profile, pro_id, masked, now)
        elif isinstance(item, ClientView):  # deleted meanwhile: the consumer's tombstone was overwritten
            again[client_id] = cast(ClientTombstone, tombstone(pro_id, client_id, int(item.version) + 1, now))
    return again


def copy_studio_plan(message: dict[str, Any]) -> None:
    """Copy one plan decision to every active member's profile, unless the profile already holds a newer one:
    messages arrive late, twice and out of order, and an older decision must never undo a newer one (D45)."""
    studio_id, plan = message["studio_id"], message["plan"]
    version = int(message.get("plan_version") or 0)  # 0: a message from before decisions had versions
    for member in TableItem.query(keys.studio_pk(studio_id), TableItem.sk.startswith("MEMBER#"), consistent_read=True):
        if not isinstance(member, Member) or member.status != "active":
            continue
        try:
            update_item(
                keys.pro_pk(member.pro_id),
                keys.PROFILE,
                "SET studio_plan = :plan, studio_plan_version = :v",
                values={":plan": s(plan), ":sid": s(studio_id), ":v": n(version)},
                condition="studio_id = :sid AND (attribute_not_exists(studio_plan_version) "
                "OR studio_plan_version < :v)",
            )
        except ConditionFailed:
            continue  # left the studio meanwhile, or a newer decision is already there


def delete_client(message: dict[str, Any]) -> None:
    """The cascade of a deleted client: files (S3 objects too), every item of its record, its uniqueness
    items, and last its profile. Chunked and idempotent."""
    from salon.services.jobs import enqueue

    client_id = message["client_id"]
    try:
        profile = TableItem.get(keys.client_pk(client_id), keys.PROFILE, consistent_read=True)
    except TableItem.DoesNotExist:
        return
    if not isinstance(profile, ClientProfile) or not getattr(profile, "deleted_at", None):
        return
    try:
        from salon.services import uploads

        uploads.delete_client_files(client_id)
    except (ImportError, AttributeError):
        logger.warning("uploads service unavailable; files kept", extra={"client_id": client_id})
    children = [
        (i.pk, i.sk)
        for i in TableItem.query(keys.client_pk(client_id), limit=PAGE, page_size=PAGE, consistent_read=True)
        if i.sk != keys.PROFILE
    ]
    if children:
        write_batch(deletes=children)
        enqueue("delete_client", client_id=client_id)
        return
    deletes = [(keys.client_pk(client_id), keys.PROFILE)]
    if profile.phone:
        deletes.append((keys.unique_phone_pk(profile.owner, profile.phone), keys.UNIQUE))
    if profile.email:
        deletes.append((keys.unique_email_pk(profile.owner, profile.email), keys.UNIQUE))
    write_batch(deletes=deletes)
    logger.info("client deleted", extra={"client_id": client_id})
