"""The registry of running jobs (``JOBS#<shard>`` / ``<kind>#<key>``) and the stall marks on their owners.

A job's item holds the message of its next chunk and when it last made progress. Every chunk that enqueues
the next one rewrites it; the chunk that enqueues none deletes it. The sweeper reads the partitions back with
consistent Queries of the base table (no index, so no lag) and resends what stopped moving.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from salon.data import keys
from salon.data.connection import table_connection
from salon.data.models import TableItem
from salon.data.tx import ConditionFailed, key, n, s, update_item


@dataclass
class Running:
    kind: str
    job_key: str
    message: str
    token: str
    state: str
    progress_s: int
    swept_s: int | None
    retries: int


def _shard(kind: str, job_key: str) -> int:
    return zlib.crc32(f"{kind}#{job_key}".encode()) % keys.JOB_SHARDS


def _key(kind: str, job_key: str) -> dict[str, Any]:
    return key(keys.jobs_pk(_shard(kind, job_key)), keys.job_sk(kind, job_key))


def register(kind: str, job_key: str, message: str, token: str, now_s: int) -> dict[str, Any]:
    """The job's next chunk is ``message``: progress now. Returns the item as it was (empty if new)."""
    resp = table_connection().client.update_item(
        TableName=TableItem.Meta.table_name,
        Key=_key(kind, job_key),
        UpdateExpression="SET #kind = :job, job_kind = :kind, job_key = :key, message = :m, #token = :t, "
        "#state = :running, progress_s = :now, retries = if_not_exists(retries, :zero) REMOVE swept_s",
        ExpressionAttributeNames={"#kind": "kind", "#token": "token", "#state": "state"},
        ExpressionAttributeValues={
            ":job": s("job"),
            ":kind": s(kind),
            ":key": s(job_key),
            ":m": s(message),
            ":t": s(token),
            ":running": s("running"),
            ":now": n(now_s),
            ":zero": n(0),
        },
        ReturnValues="ALL_OLD",
    )
    return dict(resp.get("Attributes") or {})


def finish(kind: str, job_key: str, token: str) -> bool:
    """The chunk of ``token`` was the job's last: forget the job, unless a newer chunk was enqueued since."""
    try:
        table_connection().client.delete_item(
            TableName=TableItem.Meta.table_name,
            Key=_key(kind, job_key),
            ConditionExpression="#token = :t",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={":t": s(token)},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def running(shard: int) -> list[Running]:
    """Every job of one registry partition, read consistently."""
    client = table_connection().client
    out: list[Running] = []
    start: dict[str, Any] | None = None
    while True:
        resp = client.query(
            TableName=TableItem.Meta.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(keys.jobs_pk(shard))},
            ConsistentRead=True,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        for raw in resp.get("Items", []):
            out.append(
                Running(
                    kind=raw["job_kind"]["S"],
                    job_key=raw["job_key"]["S"],
                    message=raw["message"]["S"],
                    token=raw["token"]["S"],
                    state=raw.get("state", {}).get("S", "running"),
                    progress_s=int(raw["progress_s"]["N"]),
                    swept_s=int(raw["swept_s"]["N"]) if "swept_s" in raw else None,
                    retries=int(raw.get("retries", {}).get("N", "0")),
                )
            )
        start = resp.get("LastEvaluatedKey")
        if not start:
            return out


def mark_swept(job: Running, now_s: int) -> bool:
    """The sweeper resends the job's chunk: one more retry, conditional on the job not having moved since it
    was read (another sweeper, or the chunk itself, got there first when it did)."""
    try:
        update_item(
            keys.jobs_pk(_shard(job.kind, job.job_key)),
            keys.job_sk(job.kind, job.job_key),
            "SET #state = :stalled, retries = :r, swept_s = :now",
            values={
                ":stalled": s("stalled"),
                ":r": n(job.retries + 1),
                ":now": n(now_s),
                ":t": s(job.token),
                ":p": n(job.progress_s),
            },
            names={"#state": "state", "#token": "token"},
            condition="#token = :t AND progress_s = :p",
        )
    except ConditionFailed:
        return False
    return True


def mark_member(studio_id: str, pro_id: str, retries: int | None, progress_at: str | None) -> None:
    """Show (``retries`` given) or clear the stall of a member's import or departure on the member item."""
    try:
        if retries is None:
            update_item(
                keys.studio_pk(studio_id),
                keys.member_sk(pro_id),
                "REMOVE job_state",
                condition="attribute_exists(pk)",
            )
        else:
            update_item(
                keys.studio_pk(studio_id),
                keys.member_sk(pro_id),
                "SET job_state = :stalled, job_retries = :r, job_progress_at = :at",
                values={":stalled": s("stalled"), ":r": n(retries), ":at": s(progress_at or "")},
                condition="attribute_exists(pk)",
            )
    except ConditionFailed:
        return
