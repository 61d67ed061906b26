"""Jobs that keep denormalised copies right: re-fanning a member's views after a role change, copying a
studio's plan to its members, and the cascade that removes a deleted client."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from salon import clock
from salon.data import keys
from salon.data.batch import batch_get, write_batch
from salon.data.models import ClientProfile, ClientView, Member, ProProfile, TableItem
from salon.data.tx import ConditionFailed, s, update_item
from salon.services.access import MASKED_ROLES
from salon.services.views import build_view

logger = Logger(child=True)
PAGE = 100


def refan_member(message: dict[str, Any]) -> None:
    """Rewrite every view of one member with the masking their current role asks for."""
    from salon.services.jobs import enqueue

    pro_id = message["pro_id"]
    try:
        pro = TableItem.get(keys.pro_pk(pro_id), keys.PROFILE, consistent_read=True)
    except TableItem.DoesNotExist:
        return
    masked = isinstance(pro, ProProfile) and pro.role in MASKED_ROLES
    start = message.get("after")
    results = TableItem.query(
        keys.pro_pk(pro_id),
        TableItem.sk.startswith("CLIENT#"),
        limit=PAGE,
        page_size=PAGE,
        last_evaluated_key={"pk": {"S": keys.pro_pk(pro_id)}, "sk": {"S": start}} if start else None,
    )
    views = [v for v in results if isinstance(v, ClientView)]
    profiles = batch_get([(keys.client_pk(v.client_id), keys.PROFILE) for v in views])
    now = clock.now_us()
    puts: list[TableItem] = []
    for view in views:
        profile = profiles.get((keys.client_pk(view.client_id), keys.PROFILE))
        if isinstance(profile, ClientProfile) and bool(view.masked) != masked:
            puts.append(build_view(profile, pro_id, masked=masked, changed_at_us=now))
    write_batch(puts=puts)
    if results.last_evaluated_key is not None:
        enqueue("refan_member", pro_id=pro_id, after=results.last_evaluated_key["sk"]["S"])


def copy_studio_plan(message: dict[str, Any]) -> None:
    studio_id, plan = message["studio_id"], message["plan"]
    for member in TableItem.query(keys.studio_pk(studio_id), TableItem.sk.startswith("MEMBER#")):
        if not isinstance(member, Member) or member.status != "active":
            continue
        try:
            update_item(
                keys.pro_pk(member.pro_id),
                keys.PROFILE,
                "SET studio_plan = :plan",
                values={":plan": s(plan), ":sid": s(studio_id)},
                condition="studio_id = :sid",
            )
        except ConditionFailed:
            continue


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
        for i in TableItem.query(keys.client_pk(client_id), limit=PAGE, page_size=PAGE)
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
