"""What the stream consumer does with each record, free of Lambda plumbing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from salon.data.models import ClientProfile, item_from_raw
from salon.services.fanout import FanoutRepository, ProfileChange, fan_out
from salon.services.fanout import repository as fanout_repository

logger = Logger(child=True)


class PoisonRecord(Exception):
    """A record no retry can apply: parked on the failure queue instead of holding the shard."""


@dataclass
class ClientInBatch:
    """One client's records in a batch: the first one's sequence number (where the client is applied), the
    newest record (whose images are applied), and everyone an earlier record had assigned."""

    first_sequence: str
    latest: dict[str, Any]
    earlier_assignees: set[str] = field(default_factory=set)
    records: int = 1


def _profile_keys(record: dict[str, Any]) -> str | None:
    keys = record.get("dynamodb", {}).get("Keys", {})
    pk, sk = str(keys.get("pk", {}).get("S", "")), str(keys.get("sk", {}).get("S", ""))
    if pk.startswith("CLIENT#") and sk == "PROFILE":
        return pk.split("#", 1)[1]
    return None


def _assignees(image: dict[str, Any] | None) -> set[str]:
    return set((image or {}).get("assignees", {}).get("SS", []))


def coalesce(records: list[dict[str, Any]]) -> dict[str, ClientInBatch]:
    """Only a client's newest image in a batch is applied, and it is applied at the client's FIRST record:
    when that fails, the partial batch response names the first record, and Lambda retries the batch from
    it, so every record of the client comes again. (Applied at the newest record, a failure there would be
    retried from the newest record alone: an earlier record of the batch, an unassignment say, counts as
    done, and its effect, the unassigned pro's tombstone, would be lost.) The views it removes include
    anyone an earlier record of the batch had assigned."""
    batch: dict[str, ClientInBatch] = {}
    for record in records:
        client_id = _profile_keys(record)
        if client_id is None:
            continue
        data = record["dynamodb"]
        seen = batch.get(client_id)
        if seen is None:
            batch[client_id] = ClientInBatch(data["SequenceNumber"], record, _assignees(data.get("OldImage")))
        else:
            seen.latest = record
            seen.earlier_assignees |= _assignees(data.get("OldImage"))
            seen.records += 1
    return batch


# Written on a profile by history writes (the pros who worked on the client) and never shown in a view.
_NOT_IN_VIEWS = frozenset({"history_pros"})


def _nothing_for_views(data: dict[str, Any]) -> bool:
    """The record changed only what no view shows: no read, no write."""
    old, new = data.get("OldImage"), data.get("NewImage")
    if not old or not new:
        return False
    changed = {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
    return changed <= _NOT_IN_VIEWS


def _profile(image: dict[str, Any] | None) -> ClientProfile | None:
    if not image:
        return None
    try:
        item = item_from_raw(image)
    except Exception as exc:
        raise PoisonRecord(f"unreadable image: {exc}") from exc
    if not isinstance(item, ClientProfile):
        raise PoisonRecord(f"not a client profile: {type(item).__name__}")
    return item


def _member_keys(record: dict[str, Any]) -> tuple[str, str] | None:
    keys = record.get("dynamodb", {}).get("Keys", {})
    pk, sk = str(keys.get("pk", {}).get("S", "")), str(keys.get("sk", {}).get("S", ""))
    if pk.startswith("STUDIO#") and sk.startswith("MEMBER#"):
        return pk.split("#", 1)[1], sk.split("#", 1)[1]
    return None


def member_jobs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The long work a change of a member item starts: an import on joining, a re-fan on a role change,
    the split of the clients on leaving."""
    ids = _member_keys(record)
    if ids is None:
        return []
    studio_id, pro_id = ids
    data = record.get("dynamodb", {})
    new, old = data.get("NewImage") or {}, data.get("OldImage") or {}

    def attr(image: dict[str, Any], name: str) -> str | None:
        value = image.get(name, {}).get("S")
        return str(value) if value is not None else None

    jobs: list[dict[str, Any]] = []
    if (
        new
        and attr(new, "status") == "active"
        and attr(new, "import_status") == "pending"
        and (not old or attr(old, "status") != "active" or attr(old, "import_status") != "pending")
    ):
        jobs.append({"kind": "import", "studio_id": studio_id, "pro_id": pro_id})
    if new and old and attr(new, "role") != attr(old, "role"):
        jobs.append({"kind": "refan_member", "studio_id": studio_id, "pro_id": pro_id})
    if new and attr(new, "status") == "leaving" and (not old or attr(old, "status") != "leaving"):
        jobs.append({"kind": "departure", "studio_id": studio_id, "pro_id": pro_id})
    return jobs


def profile_jobs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A client marked deleted starts its cascade."""
    client_id = _profile_keys(record)
    data = record.get("dynamodb", {})
    new, old = data.get("NewImage") or {}, data.get("OldImage") or {}
    if client_id and "deleted_at" in new and "deleted_at" not in old:
        return [{"kind": "delete_client", "client_id": client_id}]
    return []


def handle_record(
    record: dict[str, Any],
    batch: dict[str, ClientInBatch],
    repo: FanoutRepository = fanout_repository,
    park: Any = None,
    enqueue: Any = None,
) -> None:
    if enqueue is None:
        from salon.services.jobs import enqueue_message as enqueue
    for job in member_jobs(record) + profile_jobs(record):
        enqueue(job)
    client_id = _profile_keys(record)
    if client_id is None:
        return
    entry = batch.get(client_id)
    if entry is not None:
        if entry.first_sequence != record["dynamodb"]["SequenceNumber"]:
            return  # applied at the client's first record of the batch, with the newest image
        record = entry.latest
    data = record["dynamodb"]
    if (entry is None or entry.records == 1) and _nothing_for_views(data):
        return  # a first note, formula or sale by a pro on this client: the views stay as they are
    try:
        old, new = _profile(data.get("OldImage")), _profile(data.get("NewImage"))
    except PoisonRecord as exc:
        (park or park_record)(record, str(exc))
        return
    earlier = entry.earlier_assignees if entry is not None else set()
    writes = fan_out(ProfileChange(client_id, old, new, earlier), repo)
    logger.debug("fanned out", extra={"client_id": client_id, "write_calls": writes})


def park_record(record: dict[str, Any], reason: str) -> None:
    """Keys and image of a record that can never be applied, for an operator's redrive."""
    import boto3

    from salon.settings import get_settings

    url = get_settings().stream_failure_queue_url
    logger.error("parking stream record", extra={"reason": reason, "keys": record.get("dynamodb", {}).get("Keys")})
    from salon import metrics

    metrics.count(metrics.STREAM_RECORDS_PARKED)
    if url:
        boto3.client("sqs").send_message(
            QueueUrl=url, MessageBody=json.dumps({"reason": reason, "record": record}, default=str)
        )
