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
    """The newest record of one client in a batch, and everyone its earlier records assigned."""

    latest_sequence: str
    earlier_assignees: set[str] = field(default_factory=set)


def _profile_keys(record: dict[str, Any]) -> str | None:
    keys = record.get("dynamodb", {}).get("Keys", {})
    pk, sk = str(keys.get("pk", {}).get("S", "")), str(keys.get("sk", {}).get("S", ""))
    if pk.startswith("CLIENT#") and sk == "PROFILE":
        return pk.split("#", 1)[1]
    return None


def _assignees(image: dict[str, Any] | None) -> set[str]:
    return set((image or {}).get("assignees", {}).get("SS", []))


def coalesce(records: list[dict[str, Any]]) -> dict[str, ClientInBatch]:
    """Only a client's newest record in a batch is applied; the views it removes include anyone
    an earlier record of the batch had assigned."""
    batch: dict[str, ClientInBatch] = {}
    for record in records:
        client_id = _profile_keys(record)
        if client_id is None:
            continue
        data = record["dynamodb"]
        seen = batch.get(client_id)
        earlier = set() if seen is None else seen.earlier_assignees
        if seen is not None:
            earlier |= _assignees(data.get("OldImage"))
        batch[client_id] = ClientInBatch(data["SequenceNumber"], earlier | _assignees(data.get("OldImage")))
    return batch


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


def handle_record(
    record: dict[str, Any],
    batch: dict[str, ClientInBatch],
    repo: FanoutRepository = fanout_repository,
    park: Any = None,
) -> None:
    client_id = _profile_keys(record)
    if client_id is None:
        return
    entry = batch.get(client_id)
    if entry is not None and entry.latest_sequence != record["dynamodb"]["SequenceNumber"]:
        return  # a newer record of this client in the same batch carries everything
    data = record["dynamodb"]
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
    if url:
        boto3.client("sqs").send_message(
            QueueUrl=url, MessageBody=json.dumps({"reason": reason, "record": record}, default=str)
        )
