"""Re-drive the stream failure queue: re-fan the current profile of every client a failed record named.

    python -m tools.redrive --stack studio-records-prod [--dry-run]
    python -m tools.redrive --queue-url URL --table NAME [--endpoint-url http://127.0.0.1:4566]

The queue holds two kinds of message:

- ``{"reason", "record"}``: a record the consumer parked (``salon.services.stream.park_record``)
  because no retry could apply it; the record carries the item's keys and images.
- ``{"requestContext", "DDBStreamBatchInfo"}``: Lambda's on-failure destination after the retries
  ran out; it names only the shard and the sequence range, so the records are read back from the
  stream (possible for 24 hours).

For each client key found, the client's *current* profile is read and fanned out again
(``salon.services.fanout.fan_out`` with ``old=None, new=current``); pros the failed record had
assigned but the profile no longer does get their view replaced by a tombstone. Fan-out is
idempotent (views are written only when older), so running this twice is harmless. A message is
deleted once every client it names is re-fanned; one that cannot be handled (an unreadable current
profile, a stream range past retention, keys that are not a client profile) stays on the queue and
is reported, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    handled: int = 0
    left: list[dict[str, str]] = field(default_factory=list)
    clients: dict[str, int] = field(default_factory=dict)
    """client id -> write calls its re-fan made."""

    def as_dict(self) -> dict[str, Any]:
        return {"handled": self.handled, "left": self.left, "clients": self.clients}


class Unhandled(Exception):
    """A message this tool cannot act on; it stays on the queue."""


def _assignees(image: dict[str, Any] | None) -> set[str]:
    return set((image or {}).get("assignees", {}).get("SS", []))


def _client_of(record: dict[str, Any]) -> tuple[str, set[str]] | None:
    """The client id of a profile record and the pros its images assigned; None for other items."""
    data = record.get("dynamodb", {})
    keys = data.get("Keys", {})
    pk, sk = str(keys.get("pk", {}).get("S", "")), str(keys.get("sk", {}).get("S", ""))
    if pk.startswith("CLIENT#") and sk == "PROFILE":
        return pk.split("#", 1)[1], _assignees(data.get("OldImage")) | _assignees(data.get("NewImage"))
    return None


def stream_records(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a ``DDBStreamBatchInfo`` range, read back from the stream (as boto3 returns them)."""
    arn, start, end = info["streamArn"], int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    shards = [s["ShardId"] for s in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]]
    if info.get("shardId") in shards:
        shards = [info["shardId"]]
    found: list[dict[str, Any]] = []
    for shard in shards:
        try:
            iterator = streams.get_shard_iterator(
                StreamArn=arn,
                ShardId=shard,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=info["startSequenceNumber"],
            )["ShardIterator"]
        except Exception:  # the sequence number is not in this shard
            continue
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page.get("Records", [])
            for record in records:
                seq = int(record["dynamodb"]["SequenceNumber"])
                if start <= seq <= end:
                    found.append(record)
            if not records or int(records[-1]["dynamodb"]["SequenceNumber"]) >= end:
                break
            iterator = page.get("NextShardIterator")
    if not found:
        raise Unhandled("the stream no longer holds this range (24 h retention); re-fan the clients by hand")
    return found


def clients_of_message(body: dict[str, Any], streams: Any) -> dict[str, set[str]]:
    """Client ids a failure message names, with the pros its records assigned."""
    if "record" in body:
        records = [body["record"]]
    elif "DDBStreamBatchInfo" in body:
        records = stream_records(streams, body["DDBStreamBatchInfo"])
    else:
        raise Unhandled("not a parked record nor a stream batch")
    clients: dict[str, set[str]] = {}
    others = 0
    for record in records:
        found = _client_of(record)
        if found is None:
            others += 1
            continue
        clients.setdefault(found[0], set()).update(found[1])
    if others:
        raise Unhandled(f"{others} record(s) are not client profiles; replay them by hand ({sorted(clients)})")
    return clients


def refan(client_id: str, earlier_assignees: set[str]) -> int:
    """Fan the client's current profile out to its views; returns the write calls made."""
    from salon.data import keys
    from salon.data.models import ClientProfile, TableItem
    from salon.services.fanout import ProfileChange, fan_out

    try:
        current = TableItem.get(keys.client_pk(client_id), keys.PROFILE)
    except TableItem.DoesNotExist:
        return 0  # the client is gone; its cascade owns the views
    except Exception as exc:
        raise Unhandled(f"client {client_id}: the current profile cannot be read ({type(exc).__name__})") from exc
    if not isinstance(current, ClientProfile):
        raise Unhandled(f"client {client_id}: the PROFILE item is a {type(current).__name__}")
    return fan_out(ProfileChange(client_id, old=None, new=current, earlier_assignees=earlier_assignees))


def _messages(sqs: Any, queue_url: str, limit: int) -> Iterable[dict[str, Any]]:
    seen: set[str] = set()
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=300
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def redrive(
    sqs: Any,
    queue_url: str,
    streams: Any,
    *,
    dry_run: bool = False,
    limit: int = 1000,
    refan_client: Callable[[str, set[str]], int] = refan,
) -> Report:
    """Handle every message on the queue once; handled ones are deleted, the rest made visible again."""
    report = Report()
    keep: list[str] = []
    for message in _messages(sqs, queue_url, limit):
        try:
            clients = clients_of_message(json.loads(message["Body"]), streams)
            for client_id, assigned in sorted(clients.items()):
                if dry_run:
                    report.clients.setdefault(client_id, 0)
                elif client_id not in report.clients:
                    report.clients[client_id] = refan_client(client_id, assigned)
        except (Unhandled, ValueError, KeyError) as exc:
            report.left.append({"message_id": message["MessageId"], "why": str(exc)})
            keep.append(message["ReceiptHandle"])
            continue
        report.handled += 1
        if dry_run:
            keep.append(message["ReceiptHandle"])
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    for handle in keep:  # back on the queue at once, for the next run or a look by hand
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return report


def _stack_outputs(stack: str) -> dict[str, str]:
    import boto3

    (desc,) = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="deployed stack name (reads the queue and table from its outputs)")
    parser.add_argument("--queue-url", help="the stream failure queue (instead of --stack)")
    parser.add_argument("--table", help="the records table (instead of --stack)")
    parser.add_argument("--endpoint-url", help="an emulator, e.g. the local stack's http://127.0.0.1:4566")
    parser.add_argument("--dry-run", action="store_true", help="list the clients; change nothing")
    parser.add_argument("--limit", type=int, default=1000, help="messages to read at most")
    args = parser.parse_args(argv)
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    queue_url, table = args.queue_url, args.table
    if args.stack:
        outputs = _stack_outputs(args.stack)
        queue_url = queue_url or outputs["StreamFailureQueueUrl"]
        table = table or outputs["TableName"]
    if not queue_url or not table:
        parser.error("give --stack, or --queue-url and --table")
    # The domain layer reads its settings once, at import: set them before the first import.
    os.environ["TABLE_NAME"] = table
    os.environ["STREAM_FAILURE_QUEUE_URL"] = queue_url
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    import boto3

    sqs, streams = boto3.client("sqs"), boto3.client("dynamodbstreams")
    report = redrive(sqs, queue_url, streams, dry_run=args.dry_run, limit=args.limit)
    print(json.dumps(report.as_dict(), indent=2))
    return 1 if report.left else 0


if __name__ == "__main__":
    sys.exit(main())
