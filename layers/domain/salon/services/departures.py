"""Leaving a studio (SPEC.md "Studio life cycle" step 5): each side keeps what it should, nothing is lost.

``leave`` (``DELETE /studios/{sid}/members/{pro}``) is one transaction: the member goes active -> leaving,
the studio forgets the pro's role (and counts one admin less), and the pro's profile is detached at once,
so their access read puts them back in their own book and every studio client is out of reach. The stream
turns the member's new status into a ``departure`` job, run here one chunk at a time:

- the studio clients still assigned to the pro are read from the pro's own partition (their views), the
  profiles by BatchGetItem, and each client's collection by one Query;
- :func:`decide` splits them: the pro keeps what they added (created, brought on join, merged on join);
  the studio keeps what someone else added, what anyone else has history with (``history_pros``, and the
  items themselves as a safety net), and what holds an open package or gift card; a client the studio does
  not keep leaves the studio with the pro;
- a kept client becomes a NEW personal client of the pro (its id is written on a mapping item first, so a
  retry reuses it) holding only what the pro authored or did: notes, formula versions, confirmed photos
  (the S3 objects copied, registered first so their S3 events confirm them), appointments they served and
  purchases they sold (packages and gift cards too when the client leaves the studio);
- then, in one transaction per chunk with the member's counters, the pro is unassigned from each studio
  client the studio keeps (their view becomes a tombstone through the stream) and each client that leaves
  the studio is marked deleted (the cascade job removes it; the copy exists already).

Every step is idempotent: copies are puts of the same keys, the profile put is conditional, the final
write is conditional on the pro still being assigned, and the counters move only with it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError

from salon import clock
from salon.data import keys
from salon.data.batch import batch_get, write_batch
from salon.data.connection import table_connection
from salon.data.models import (
    ClientProfile,
    ClientView,
    Member,
    ProProfile,
    Studio,
    TableItem,
    Upload,
    item_from_raw,
)
from salon.data.tx import TransactionCancelled, Tx, WriteConflict, n, s, update_item
from salon.errors import Conflict, Forbidden, NotFound
from salon.identity import Caller
from salon.ids import new_id
from salon.schemas.common import decode_cursor, encode_cursor
from salon.schemas.departures import DepartureClient, DeparturePreview
from salon.schemas.studios import Member as MemberOut
from salon.services.access import MASKED_ROLES
from salon.services.contact import fold_name
from salon.services.views import build_view

logger = Logger(child=True)

CHUNK = 48  # studio clients split per job message (their settling write: 49 actions)
CREATES_PER_TRANSACTION = 24  # new personal clients a transaction (4 actions each at most)
WORKERS = 8  # clients copied in parallel within a chunk
CONTACT_FIELDS = ("name", "phone", "email", "birthday", "tags", "allergies", "marketing_consent")
#: The attribute naming who wrote or did each kind of history item.
AUTHOR_FIELD = {
    "NOTE#": "author_id",
    "FORMULA#": "author_id",
    "APPT#": "provider_id",
    "PURCHASE#": "sold_by",
    "PKG#": "sold_by",
    "GIFT#": "sold_by",
    "UPLOAD#": "uploaded_by",
}
#: Bookkeeping of the studio's record, never copied (the quota follows the copied files).
NOT_COPIED = ("PROFILE", "ALIAS", "QUOTA", "CHECKIN#", "MERGE#", "CONFLICT#")
#: Balances stay with the book that sold them unless the client leaves the studio altogether.
BALANCES = ("PKG#", "GIFT#")
INDEX_ATTRIBUTES = ("gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")


# ------------------------------------------------------------------------------------------ the rule
@dataclass(frozen=True)
class Decision:
    pro_keeps: bool
    studio_keeps: bool
    reasons: tuple[str, ...]

    @property
    def leaves_with_pro(self) -> bool:
        return not self.studio_keeps


def added_by(pro_id: str, created_by: str | None, brought_by: str | None) -> bool:
    return pro_id in (created_by, brought_by)


def decide(
    pro_id: str,
    *,
    created_by: str | None,
    brought_by: str | None,
    history_pros: Iterable[str] = (),
    merged_by_pro: bool = False,
    open_balance: bool = False,
    others_did: bool = False,
) -> Decision:
    """Who keeps a studio client when ``pro_id`` leaves.

    The pro keeps it iff they created it, brought it on join, or merged their own client into it on join.
    The studio keeps it iff someone else added it, anyone else (a member now or before) has history with it,
    or it holds an open package or gift card. A client the studio does not keep was added by the pro, so the
    pro keeps it: it leaves the studio with them. ``others_did``: the client's own items name someone else
    (the job's check behind ``history_pros``).
    """
    reasons: list[str] = []
    mine = added_by(pro_id, created_by, brought_by)
    if created_by == pro_id:
        reasons.append("created_by_pro")
    if brought_by == pro_id and created_by != pro_id:
        reasons.append("brought_by_pro")
    if merged_by_pro and not mine:
        reasons.append("merged_by_pro")
    if not mine:
        reasons.append("added_by_other")
    if others_did or set(history_pros) - {pro_id}:
        reasons.append("other_history")
    if open_balance:
        reasons.append("open_balance")
    pro_keeps = mine or merged_by_pro
    studio_keeps = not mine or "other_history" in reasons or open_balance
    return Decision(pro_keeps=pro_keeps or not studio_keeps, studio_keeps=studio_keeps, reasons=tuple(reasons))


def balance_decides(pro_id: str, profile: ClientProfile, others: bool = False) -> bool:
    """Only a client the pro added, with no one else's history, needs the open-balance check."""
    return (
        added_by(pro_id, profile.created_by, profile.brought_by)
        and not others
        and not (set(profile.history_pros or set()) - {pro_id})
    )


# ------------------------------------------------------------------------------------ HTTP: leave
@dataclass
class _Read:
    caller: ProProfile | None
    member: Member | None
    studio: Studio | None


def _read(caller: Caller, studio_id: str, pro_id: str) -> _Read:
    """The caller's profile, the member and the studio: one BatchGetItem."""
    wanted = [
        (keys.pro_pk(caller.pro_id), keys.PROFILE),
        (keys.studio_pk(studio_id), keys.member_sk(pro_id)),
        (keys.studio_pk(studio_id), keys.STUDIO),
    ]
    found = batch_get(wanted, consistent=True)  # a member who just joined (or just changed role) is found
    me, member, studio = (found.get(k) for k in wanted)
    return _Read(
        me if isinstance(me, ProProfile) else None,
        member if isinstance(member, Member) else None,
        studio if isinstance(studio, Studio) else None,
    )


def _authorise(caller: Caller, studio_id: str, pro_id: str, read: _Read) -> Member:
    """The pro themself (while their member item exists) or an active admin of the studio."""
    me = read.caller
    is_member = me is not None and me.studio_id == studio_id and me.membership_status == "active"
    if caller.pro_id == pro_id:
        if read.member is None:
            raise NotFound("No such studio.", code="studio_not_found")
        return read.member
    if not is_member:
        raise NotFound("No such studio.", code="studio_not_found")
    assert me is not None
    if me.role != "admin":
        raise Forbidden("Only studio admins may remove a member.", code="admin_only")
    if read.member is None:
        raise NotFound("No such member.", code="member_not_found")
    return read.member


def leave(caller: Caller, studio_id: str, pro_id: str) -> MemberOut:
    """The pro leaves, or an admin removes them: 202 with the member, the split runs as a job."""
    from salon.services.studios import member_out

    read = _read(caller, studio_id, pro_id)
    member = _authorise(caller, studio_id, pro_id, read)
    if member.status != "active":
        return member_out(member)  # leaving or left already: the same answer as the first DELETE
    studio = read.studio
    if studio is None:
        raise NotFound("No such studio.", code="studio_not_found")
    if studio.owner_id == pro_id:
        _refuse_owner(studio, pro_id)
    now = clock.now_iso()
    tx = Tx()
    tx.update(
        keys.studio_pk(studio_id),
        keys.member_sk(pro_id),
        "SET #status = :leaving, left_at = :now, removed_by = :by, kept_by_pro = :zero, kept_by_studio = :zero, "
        "left_with_pro = :zero",
        values={
            ":leaving": s("leaving"),
            ":active": s("active"),
            ":now": s(now),
            ":by": s(caller.pro_id),
            ":zero": n(0),
            ":role": s(member.role),
        },
        names={"#status": "status", "#role": "role"},
        condition="#status = :active AND #role = :role",
    )
    admin = member.role == "admin"
    values: dict[str, Any] = {":pro": s(pro_id), ":role": s(member.role)}
    condition = "owner_id <> :pro AND member_roles.#pro = :role"
    expression = "REMOVE member_roles.#pro"
    if admin:
        expression += " ADD admin_count :minus"
        values |= {":minus": n(-1), ":one": n(1)}
        condition += " AND admin_count > :one"
    studio_index = tx.update(
        keys.studio_pk(studio_id), keys.STUDIO, expression, values=values, names={"#pro": pro_id}, condition=condition
    )
    # Detached at once: the access read decides by this profile, so studio clients are out of reach now.
    tx.update(
        keys.pro_pk(pro_id),
        keys.PROFILE,
        "SET membership_status = :leaving REMOVE studio_id, #role, studio_country, studio_time_zone, studio_plan",
        values={":leaving": s("leaving"), ":sid": s(studio_id)},
        names={"#role": "role"},
        condition="studio_id = :sid",
    )
    try:
        tx.run()
    except (WriteConflict, TransactionCancelled) as exc:
        if isinstance(exc, WriteConflict) or exc.conflict:
            raise Conflict("The studio changed meanwhile; try again.", code="member_changed") from None
        if exc.failed(studio_index):
            again = _read(caller, studio_id, pro_id).studio
            if again is not None and again.owner_id == pro_id:
                _refuse_owner(again, pro_id)
            if admin and again is not None and int(again.admin_count) <= 1:
                raise Conflict("The last admin cannot leave while other members remain.", code="last_admin") from None
        raise Conflict("The member changed meanwhile; read it again.", code="member_changed") from None
    member.status = "leaving"
    member.left_at = now
    member.removed_by = caller.pro_id
    member.kept_by_pro = member.kept_by_studio = member.left_with_pro = 0
    return member_out(member)


def _refuse_owner(studio: Studio, pro_id: str) -> None:
    """The owner is an admin, so the last admin is always the owner: name what must happen first."""
    others = {p for p in (studio.member_roles.as_dict() if studio.member_roles else {}) if p != pro_id}
    if int(studio.admin_count) <= 1 and others:
        raise Conflict(
            "The last admin cannot leave while other members remain: make another member admin, then hand over "
            "ownership.",
            code="last_admin",
        )
    raise Conflict("The owner hands over ownership before leaving.", code="owner_must_transfer")


# ---------------------------------------------------------------------------------- HTTP: preview
def preview(caller: Caller, studio_id: str, pro_id: str, limit: int, cursor: str | None) -> DeparturePreview:
    """Which studio clients of the pro each side would keep, and why; read from the profiles, plus one
    small Query of a client only where a merge or an open balance decides the outcome."""
    read = _read(caller, studio_id, pro_id)
    member = _authorise(caller, studio_id, pro_id, read)
    if member.status == "left":
        raise NotFound("No such member.", code="member_not_found")
    after = decode_cursor(cursor).get("after") if cursor else None
    if after is not None and not after.startswith("CLIENT#"):
        from salon.errors import field_error

        raise field_error("query", "cursor", "Not a cursor this API gave out.")
    profiles, last = _assigned(studio_id, pro_id, limit, after)
    with ThreadPoolExecutor(WORKERS) as pool:
        decisions = list(pool.map(lambda p: _preview_decision(pro_id, p), profiles))
    items = [
        DepartureClient(
            client_id=p.client_id,
            name=p.name,
            pro_keeps=d.pro_keeps,
            studio_keeps=d.studio_keeps,
            reasons=list(d.reasons),  # type: ignore[arg-type]
        )
        for p, d in zip(profiles, decisions, strict=True)
    ]
    return DeparturePreview(
        studio_id=studio_id,
        pro_id=pro_id,
        items=items,
        next_cursor=encode_cursor({"after": last}) if last else None,
    )


def _preview_decision(pro_id: str, profile: ClientProfile) -> Decision:
    merged = False
    balance = False
    if not added_by(pro_id, profile.created_by, profile.brought_by):
        merged = any(r.get("pro_id", {}).get("S") == pro_id for r in _query_raw(profile.client_id, "MERGE#"))
    elif balance_decides(pro_id, profile):
        from salon.services.membership import has_open_balance

        balance = has_open_balance(profile.client_id)
    return decide(
        pro_id,
        created_by=profile.created_by,
        brought_by=profile.brought_by,
        history_pros=profile.history_pros or set(),
        merged_by_pro=merged,
        open_balance=balance,
    )


def _assigned(
    studio_id: str, pro_id: str, limit: int, after: str | None, seen: dict[str, ClientView] | None = None
) -> tuple[list[ClientProfile], str | None]:
    """Up to ``limit`` studio clients assigned to the pro, from their own partition (views; tombstones and
    flags skipped) and the profiles (BatchGetItem); and the sort key to continue after, if more may follow.
    ``seen`` is given the pro's view of each (what reached them before they left)."""
    owner = keys.book_owner_for_studio(studio_id)
    results = TableItem.query(
        keys.pro_pk(pro_id),
        TableItem.sk.startswith("CLIENT#"),
        page_size=4 * limit + 1,
        last_evaluated_key={"pk": {"S": keys.pro_pk(pro_id)}, "sk": {"S": after}} if after else None,
        consistent_read=True,
    )
    views: list[ClientView] = []
    last: str | None = None
    more = False
    for item in results:
        if isinstance(item, ClientView) and item.owner == owner:
            if len(views) == limit:
                more = True
                break
            views.append(item)
        last = item.sk
    profiles = batch_get([(keys.client_pk(v.client_id), keys.PROFILE) for v in views], consistent=True)
    mine = []
    for view in views:
        profile = profiles.get((keys.client_pk(view.client_id), keys.PROFILE))
        if (
            isinstance(profile, ClientProfile)
            and profile.owner == owner
            and pro_id in (profile.assignees or set())
            and not getattr(profile, "deleted_at", None)
        ):
            mine.append(profile)
            if seen is not None:
                seen[view.client_id] = view
    return mine, (last if more else None)


def _query_raw(client_id: str, prefix: str | None = None) -> list[dict[str, Any]]:
    """A client's items as plain DynamoDB values (kinds added later never break the split)."""
    conn = table_connection()
    items: list[dict[str, Any]] = []
    start = None
    condition = "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else "")
    values = {":pk": s(keys.client_pk(client_id)), **({":prefix": s(prefix)} if prefix else {})}
    while True:
        resp = conn.client.query(
            TableName=TableItem.Meta.table_name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        items += resp.get("Items", [])
        start = resp.get("LastEvaluatedKey")
        if not start:
            return items


# --------------------------------------------------------------------------------------- the job
@dataclass
class Outcome:
    profile: ClientProfile
    decision: Decision
    raw_items: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)  # the pro's merge records on this client
    new_client_id: str | None = None  # the pro's personal client the copies go to
    masked: bool = False  # the pro leaves as an apprentice or assistant: only the contact values they entered
    as_left: ClientView | None = None  # edited after the leave: the values the pro's copy takes (their view)


def run_departure_chunk(message: dict[str, Any]) -> None:
    """One chunk: split up to ``CHUNK`` assigned studio clients, then enqueue the next, or finish."""
    from salon.services.jobs import enqueue

    studio_id, pro_id = message["studio_id"], message["pro_id"]
    try:
        member = TableItem.get(keys.studio_pk(studio_id), keys.member_sk(pro_id), consistent_read=True)
    except TableItem.DoesNotExist:
        return
    if not isinstance(member, Member) or member.status != "leaving":
        return  # finished already (a replayed message), or never left
    started = time.monotonic()
    views: dict[str, ClientView] = {}
    profiles, last = _assigned(studio_id, pro_id, CHUNK, message.get("after"), views)
    if profiles:
        with ThreadPoolExecutor(min(WORKERS, len(profiles))) as pool:
            masked = member.role in MASKED_ROLES

            def plan(profile: ClientProfile) -> Outcome:
                outcome = plan_client(studio_id, pro_id, profile, masked=masked)
                if member.left_at and str(profile.updated_at) > str(member.left_at):
                    # Edited after the leave: nothing written since reaches the pro (SPEC "Leave"), so their
                    # copy takes the values their view held, which the fan-out stopped updating at the leave.
                    outcome.as_left = views.get(profile.client_id)
                return outcome

            outcomes = list(pool.map(plan, profiles))
            kept = [o for o in outcomes if o.decision.pro_keeps]
            list(pool.map(lambda o: _create_personal(studio_id, pro_id, o), kept))  # the copies' targets
            list(pool.map(lambda o: _copy_items(pro_id, o), kept))
            _settle(studio_id, pro_id, outcomes, pool)
        _count(studio_id, pro_id)
    logger.info(
        "departure chunk",
        extra={"studio_id": studio_id, "pro_id": pro_id, "clients": len(profiles), "s": time.monotonic() - started},
    )
    if last is not None:
        enqueue("departure", studio_id=studio_id, pro_id=pro_id, after=last)
        return
    _finish(studio_id, pro_id)


def split_client(studio_id: str, pro_id: str, profile: ClientProfile, *, masked: bool = False) -> Outcome:
    """Decide one client and, when the pro keeps it, make their personal copy (idempotent)."""
    outcome = plan_client(studio_id, pro_id, profile, masked=masked)
    if outcome.decision.pro_keeps:
        _create_personal(studio_id, pro_id, outcome)
        _copy_items(pro_id, outcome)
    return outcome


def plan_client(studio_id: str, pro_id: str, profile: ClientProfile, *, masked: bool = False) -> Outcome:
    """Read the client's collection, decide, and when the pro keeps it, fix their new id for it."""
    raw_items = _query_raw(profile.client_id)
    others = any(_author(raw) not in (None, pro_id) for raw in raw_items)
    merges = [r for r in raw_items if r["sk"]["S"].startswith("MERGE#") and r.get("pro_id", {}).get("S") == pro_id]
    balance = False
    if balance_decides(pro_id, profile, others):
        from salon.services.membership import open_balance_in

        balance = open_balance_in([item_from_raw(r) for r in raw_items if r["sk"]["S"].startswith(BALANCES)])
    decision = decide(
        pro_id,
        created_by=profile.created_by,
        brought_by=profile.brought_by,
        history_pros=profile.history_pros or set(),
        merged_by_pro=bool(merges),
        open_balance=balance,
        others_did=others,
    )
    outcome = Outcome(profile, decision, raw_items=raw_items, merges=merges, masked=masked)
    outcome.new_client_id = _record(studio_id, pro_id, profile.client_id, decision)
    return outcome


def _author(raw: dict[str, Any]) -> str | None:
    sk = raw["sk"]["S"]
    for prefix, name in AUTHOR_FIELD.items():
        if sk.startswith(prefix):
            if prefix == "UPLOAD#" and raw.get("status", {}).get("S") != "confirmed":
                return None  # a pending reservation is no one's work yet
            return str(raw.get(name, {}).get("S", "")) or None
    return None


def _record(studio_id: str, pro_id: str, client_id: str, decision: Decision) -> str | None:
    """Write how this client is split, and the pro's new id for it (chosen once with ``if_not_exists``, so
    every retry reuses it), before anything is copied; returns that id when the pro keeps the client."""
    expression = "SET kind = :kind, studio_id = :sid, pro_id = :pro, client_id = :cid, pro_keeps = :pk, "
    expression += "studio_keeps = :sk"
    values = {
        ":kind": s("departed"),
        ":sid": s(studio_id),
        ":pro": s(pro_id),
        ":cid": s(client_id),
        ":pk": {"BOOL": decision.pro_keeps},
        ":sk": {"BOOL": decision.studio_keeps},
    }
    if decision.pro_keeps:
        expression += ", new_client_id = if_not_exists(new_client_id, :new)"
        values[":new"] = s(new_id())
    item = update_item(
        keys.studio_pk(studio_id), keys.departed_sk(pro_id, client_id), expression, values=values, return_new=True
    )
    return str(item["new_client_id"]["S"]) if decision.pro_keeps else None


def _brought_values(merges: list[dict[str, Any]]) -> dict[str, Any]:
    """What the pro brought to a merge (the earliest merge first), decoded from the merge records."""
    values: dict[str, Any] = {}
    for record in sorted(merges, key=lambda r: r.get("merged_at", {}).get("S", "")):
        for name, raw in (record.get("brought", {}).get("M") or {}).items():
            if name in CONTACT_FIELDS and name not in values:
                values[name] = json.loads(raw["S"])
    return values


def _new_profile(pro_id: str, outcome: Outcome) -> ClientProfile:
    """The pro's personal client: the studio's values, or for a client merged on join only what the pro brought."""
    studio_client, new_client_id = outcome.profile, str(outcome.new_client_id)
    owner = keys.book_owner_for_pro(pro_id)
    if outcome.merges and not added_by(pro_id, studio_client.created_by, studio_client.brought_by):
        values = _brought_values(outcome.merges)
    else:
        source = outcome.as_left if outcome.as_left is not None else studio_client
        values = {name: getattr(source, name, None) for name in CONTACT_FIELDS}
        if outcome.masked:
            values |= {name: entered_value(pro_id, studio_client, name) for name in ("phone", "email")}
    profile = ClientProfile(keys.client_pk(new_client_id), keys.PROFILE)
    profile.client_id = new_client_id
    profile.owner = owner
    profile.name = values.get("name") or studio_client.name
    profile.name_folded = fold_name(profile.name)
    profile.phone = values.get("phone")
    profile.email = values.get("email")
    profile.phone_by = pro_id if profile.phone else None
    profile.email_by = pro_id if profile.email else None
    profile.birthday = values.get("birthday")
    profile.tags = list(values.get("tags") or [])
    profile.allergies = list(values.get("allergies") or [])
    profile.marketing_consent = bool(values.get("marketing_consent"))
    profile.version = 1
    profile.created_at = studio_client.created_at
    profile.updated_at = clock.now_iso()
    profile.created_by = pro_id
    profile.brought_by = pro_id
    profile.assignees = {pro_id}
    profile.history_pros = {pro_id} if any(_author(r) == pro_id for r in outcome.raw_items) else set()
    profile.gsi1pk = keys.book_pk(owner)
    profile.gsi1sk = keys.book_name_sk(profile.name_folded, new_client_id)
    return profile


def entered_value(pro_id: str, profile: ClientProfile, field: str) -> str | None:
    """The ``phone`` or ``email`` a leaving apprentice or assistant may keep: only a value they entered
    themselves (SPEC "Leave"), never one masked from them. The current value when they entered it
    (``<field>_by``; a profile recorded before ``_by`` existed counts as theirs only while unedited since
    they registered it, version 1); else, for the client's registrar, the value they entered before someone
    else replaced it (``registrar_<field>``); else nothing."""
    registrar = pro_id in (profile.created_by, profile.brought_by)
    current = getattr(profile, field, None)
    by = getattr(profile, f"{field}_by", None)
    if current and (by == pro_id or (by is None and registrar and int(profile.version) == 1)):
        return str(current)
    replaced = getattr(profile, f"registrar_{field}", None)
    return str(replaced) if registrar and replaced else None


def _create_personal(studio_id: str, pro_id: str, outcome: Outcome) -> None:
    """The pro's new personal client: its uniqueness items first (each conditional on being free or already
    this client's), then the profile (conditional on being new), then the pro's view (read-your-writes, D1;
    the stream sees the same version). Single conditional writes rather than a transaction: every step is
    idempotent, so a retry completes what an interrupted attempt began. When the pro's book already holds
    the phone or email (they registered this person meanwhile), their work goes to that client instead."""
    from salon.data.tx import ConditionFailed

    owner = keys.book_owner_for_pro(pro_id)
    profile = _new_profile(pro_id, outcome)
    claimed: list[str] = []
    for value, builder in ((profile.phone, keys.unique_phone_pk), (profile.email, keys.unique_email_pk)):
        if not value:
            continue
        pk = builder(owner, value)
        try:
            update_item(
                pk,
                keys.UNIQUE,
                "SET kind = :kind, client_id = :me",
                values={":kind": s("unique"), ":me": s(profile.client_id)},
                condition="attribute_not_exists(pk) OR client_id = :me",
            )
            claimed.append(pk)
        except ConditionFailed:
            existing = TableItem.get(pk, keys.UNIQUE, consistent_read=True)
            for mine in claimed:  # give back what this client took, then send its work to the holder
                with contextlib.suppress(ConditionFailed):
                    _delete_if_mine(mine, profile.client_id)
            _redirect(studio_id, pro_id, outcome, str(getattr(existing, "client_id", "")))
            return
    try:
        profile.save(condition=TableItem.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        return  # made by an earlier attempt; its view came with it or through the stream
    build_view(profile, pro_id, masked=False, changed_at_us=clock.now_us()).save()


def _delete_if_mine(pk: str, client_id: str) -> None:
    from salon.data.tx import ConditionFailed

    try:
        table_connection().client.delete_item(
            TableName=TableItem.Meta.table_name,
            Key={"pk": s(pk), "sk": s(keys.UNIQUE)},
            ConditionExpression="client_id = :me",
            ExpressionAttributeValues={":me": s(client_id)},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise ConditionFailed() from None
        raise


def _redirect(studio_id: str, pro_id: str, outcome: Outcome, existing: str) -> None:
    """The pro registered this person in their own book meanwhile: their work goes to that client."""
    update_item(
        keys.studio_pk(studio_id),
        keys.departed_sk(pro_id, outcome.profile.client_id),
        "SET new_client_id = :existing",
        values={":existing": s(existing)},
    )
    outcome.new_client_id = existing


def _copy_items(pro_id: str, outcome: Outcome) -> None:
    """Put copies of the pro's items under their new client with the same sort keys (idempotent), files first
    registered and then copied in S3 so their events confirm them. When the client leaves the studio,
    authorless items and closed balances the pro sold come along too."""
    from salon.data.uploads_repo import repository as uploads_repository
    from salon.services import uploads

    client_id, target_id, raw_items = outcome.profile.client_id, str(outcome.new_client_id), outcome.raw_items
    everything = outcome.decision.leaves_with_pro

    copies: list[dict[str, Any]] = []
    files = []
    for raw in raw_items:
        sk = raw["sk"]["S"]
        if sk in NOT_COPIED or sk.startswith(NOT_COPIED):
            continue
        author = _author(raw)
        if sk.startswith(keys.UPLOAD_PREFIX):
            if author == pro_id:
                files.append(raw)
            continue
        if sk.startswith(BALANCES) and not everything:
            continue
        known = any(sk.startswith(prefix) for prefix in AUTHOR_FIELD)
        if author == pro_id or (everything and not known):
            copy = {k: v for k, v in raw.items() if k not in INDEX_ATTRIBUTES}
            copy["pk"] = s(keys.client_pk(target_id))
            copy["copied_from"] = s(client_id)
            if "client_id" in copy:
                copy["client_id"] = s(target_id)
            copies.append(copy)
    write_batch(raw_puts=copies)
    confirmed = (
        {u.upload_id for u in uploads_repository.list_uploads(target_id) if u.status == "confirmed"} if files else set()
    )
    for raw in files:
        source = item_from_raw(raw)
        if not isinstance(source, Upload) or source.upload_id in confirmed:
            continue  # copied and confirmed by an earlier attempt
        # Registers the copy (same upload id: idempotent), then copies the object; its S3 event confirms it.
        uploads.copy_file(source, target_id, uploaded_by=pro_id)


def _settle(studio_id: str, pro_id: str, outcomes: list[Outcome], pool: ThreadPoolExecutor) -> None:
    """The studio side, after the copies: the pro is unassigned from each client the studio keeps (their view
    becomes a tombstone through the stream), and each client leaving with the pro is marked deleted (the
    cascade job removes it). A client edited meanwhile fails its version check: the chunk is retried."""
    changed = [c for c in pool.map(lambda o: _settle_one(pro_id, o), outcomes) if c]
    if changed:
        raise RuntimeError(f"{len(changed)} client(s) changed during the departure; the chunk is retried")


def _settle_one(pro_id: str, outcome: Outcome) -> bool:
    """Returns True when the client changed meanwhile (decide again)."""
    from salon.data.clients_repo import writes
    from salon.data.tx import ConditionFailed

    p = outcome.profile
    try:
        if outcome.decision.studio_keeps:
            writes.remove_assignee(p.client_id, p.owner, pro_id)
        else:
            writes.mark_deleted(p.client_id, p.owner, int(p.version), clock.now_iso())
    except ConditionFailed:
        try:
            now = TableItem.get(p.pk, p.sk, consistent_read=True)
        except TableItem.DoesNotExist:
            return False
        done = not isinstance(now, ClientProfile) or getattr(now, "deleted_at", None) or now.owner != p.owner
        return not done
    return False


def _count(studio_id: str, pro_id: str) -> None:
    """The member's counters, counted from the split records (so a retried or replayed chunk never counts
    twice): one Query of the studio's partition."""
    conn = table_connection()
    kept_pro = kept_studio = left = 0
    start = None
    while True:
        resp = conn.client.query(
            TableName=TableItem.Meta.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(keys.studio_pk(studio_id)), ":prefix": s(keys.departed_prefix(pro_id))},
            ProjectionExpression="pro_keeps, studio_keeps",
            ConsistentRead=True,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        for item in resp.get("Items", []):
            pro_keeps = item.get("pro_keeps", {}).get("BOOL", False)
            studio_keeps = item.get("studio_keeps", {}).get("BOOL", False)
            kept_pro += pro_keeps
            kept_studio += studio_keeps
            left += not studio_keeps
        start = resp.get("LastEvaluatedKey")
        if not start:
            break
    update_item(
        keys.studio_pk(studio_id),
        keys.member_sk(pro_id),
        "SET kept_by_pro = :a, kept_by_studio = :b, left_with_pro = :c",
        values={":a": n(kept_pro), ":b": n(kept_studio), ":c": n(left), ":leaving": s("leaving")},
        names={"#status": "status"},
        condition="#status = :leaving",
    )


def _finish(studio_id: str, pro_id: str) -> None:
    """No studio client is assigned any more: the member has left."""
    from salon.data.tx import ConditionFailed

    try:
        update_item(
            keys.studio_pk(studio_id),
            keys.member_sk(pro_id),
            "SET #status = :left",
            values={":left": s("left"), ":leaving": s("leaving")},
            names={"#status": "status"},
            condition="#status = :leaving",
        )
    except ConditionFailed:
        return
    with contextlib.suppress(ConditionFailed):  # rejoined elsewhere meanwhile
        update_item(
            keys.pro_pk(pro_id),
            keys.PROFILE,
            "SET membership_status = :left",
            values={":left": s("left"), ":leaving": s("leaving")},
            condition="membership_status = :leaving AND attribute_not_exists(studio_id)",
        )
    logger.info("departure done", extra={"studio_id": studio_id, "pro_id": pro_id})
