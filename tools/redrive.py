"""Re-drive the failure queues: re-fan every client a failed stream batch named, restart the jobs its member
records started, and re-run the confirmation of every upload whose S3 event failed.

    python -m tools.redrive --stack studio-records-prod [--dry-run]
    python -m tools.redrive --queue-url URL [--queue-url URL2] --table NAME [--endpoint-url http://127.0.0.1:4566]

The queues hold three kinds of message:

- ``{"reason", "record"}`` (stream failure queue): a record the consumer parked
  (``salon.services.stream.park_record``) because no retry could apply it; it carries the item's keys and images.
- ``{"requestContext", "responseContext", "DDBStreamBatchInfo": {"shardId", "startSequenceNumber",
  "endSequenceNumber", "batchSize", "streamArn", ...}}`` (stream failure queue): Lambda's on-failure destination
  after the retries ran out (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html). It
  names only a shard and a sequence range, which the records are read back from (possible for 24 hours). The
  range holds every record of the table between the two numbers, those the event source's filter never
  delivered (notes, views, check-ins...) too: client profiles are re-fanned, member and profile records
  restart the job they start (an import, a departure, a re-fan, a cascade: each idempotent), and anything
  else is counted under ``ignored``.
- ``{"requestContext": {"condition": "RetriesExhausted", ...}, "requestPayload": {"Records": [S3 records]}}``
  (upload events failure queue): Lambda's on-failure destination of an asynchronous invocation
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html). The confirmation is run
  again for each object named (``salon.services.uploads.handle_s3_event``): it confirms the file, or rejects it
  and deletes the object and its reservation (a reservation that lapsed meanwhile is rejected too), so no
  object stays stored unconfirmed with its slot held.

For each client key found, the client's *current* profile is read and fanned out again
(``salon.services.fanout.fan_out`` with ``old=None, new=current``); pros the failed record had
assigned but the profile no longer does get their view replaced by a tombstone. Fan-out is
idempotent (views are written only when older), so running this twice is harmless. A message is
deleted once everything it names is handled; one that cannot be handled (an unreadable current
profile, a stream range past retention, a confirmation that fails again, a message of no known kind)
stays on the queue and is reported, and the exit code is 1.
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
    jobs: list[dict[str, Any]] = field(default_factory=list)
    """jobs restarted (their first chunk enqueued again)."""
    uploads: list[str] = field(default_factory=list)
    """object keys whose confirmation was run again."""
    ignored: int = 0
    """records of the stream range that are neither a client profile nor start a job."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "handled": self.handled,
            "left": self.left,
            "clients": self.clients,
            "jobs": self.jobs,
            "uploads": self.uploads,
            "ignored": self.ignored,
        }


@dataclass
class Contents:
    """What one failure message asks to be done again."""

    clients: dict[str, set[str]] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    s3_event: dict[str, Any] | None = None
    ignored: int = 0


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


EMPTY_PAGES = 20  # GetRecords may answer an empty page before the records that follow it


def stream_records(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a ``DDBStreamBatchInfo`` range, read back from its shard (as boto3 returns them)."""
    arn, start, end = info["streamArn"], int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    shards = [info["shardId"]] if info.get("shardId") else []
    if not shards:
        shards = [s["ShardId"] for s in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]]
    found: list[dict[str, Any]] = []
    for shard in shards:
        try:
            iterator = streams.get_shard_iterator(
                StreamArn=arn,
                ShardId=shard,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=info["startSequenceNumber"],
            )["ShardIterator"]
        except Exception:  # the shard is gone (past retention), or the sequence number is not in it
            continue
        empty = 0
        while iterator and empty < EMPTY_PAGES:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page.get("Records", [])
            empty = 0 if records else empty + 1
            for record in records:
                seq = int(record["dynamodb"]["SequenceNumber"])
                if start <= seq <= end:
                    found.append(record)
            if records and int(records[-1]["dynamodb"]["SequenceNumber"]) >= end:
                break
            iterator = page.get("NextShardIterator")
        if found:
            break
    if not found:
        raise Unhandled("the stream no longer holds this range (24 h retention); re-fan the clients by hand")
    return found


def _s3_records(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    payload = body.get("requestPayload")
    records = payload.get("Records") if isinstance(payload, dict) else None
    if isinstance(records, list) and records and all(r.get("eventSource") == "aws:s3" for r in records):
        return records
    return None


def contents_of_message(body: dict[str, Any], streams: Any) -> Contents:
    """What a failure message names: clients (with the pros its records assigned), jobs, an S3 event."""
    from salon.services.stream import member_jobs, profile_jobs

    contents = Contents()
    s3_records = _s3_records(body)
    if s3_records is not None:
        contents.s3_event = {"Records": s3_records}
        return contents
    if "record" in body:
        records = [body["record"]]
    elif "DDBStreamBatchInfo" in body:
        records = stream_records(streams, body["DDBStreamBatchInfo"])
    else:
        raise Unhandled("not a parked record, a stream batch nor an S3 event")
    for record in records:
        jobs = member_jobs(record) + profile_jobs(record)
        contents.jobs.extend(job for job in jobs if job not in contents.jobs)
        found = _client_of(record)
        if found is not None:
            contents.clients.setdefault(found[0], set()).update(found[1])
        elif not jobs:
            contents.ignored += 1
    return contents


def clients_of_message(body: dict[str, Any], streams: Any) -> dict[str, set[str]]:
    """Client ids a failure message names, with the pros its records assigned."""
    return contents_of_message(body, streams).clients


def restart_job(job: dict[str, Any]) -> None:
    """Enqueue a job's first chunk again (every runner checks what is left to do first)."""
    from salon.services.jobs import enqueue_message

    enqueue_message(dict(job))


def confirm_again(event: dict[str, Any]) -> list[str]:
    """Run the upload confirmation of an S3 event once more; raises when an object still fails."""
    from urllib.parse import unquote_plus

    from salon.services.uploads import handle_s3_event

    try:
        handle_s3_event(event)
    except Exception as exc:
        raise Unhandled(
            f"the confirmation failed again ({type(exc).__name__}); see the uploads function's log"
        ) from exc
    return [unquote_plus(str(r.get("s3", {}).get("object", {}).get("key", ""))) for r in event["Records"]]


def refan(client_id: str, earlier_assignees: set[str]) -> int:
    """Fan the client's current profile out to its views; returns the write calls made."""
    from salon.data import keys
    from salon.data.models import ClientProfile, TableItem
    from salon.services.fanout import ProfileChange, fan_out

    try:
        current = TableItem.get(keys.client_pk(client_id), keys.PROFILE, consistent_read=True)
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


def _act(
    contents: Contents,
    report: Report,
    dry_run: bool,
    refan_client: Callable[[str, set[str]], int],
    enqueue_job: Callable[[dict[str, Any]], None],
    confirm: Callable[[dict[str, Any]], list[str]],
) -> None:
    """Do what one message names again (or, in a dry run, only list it)."""
    if contents.s3_event is not None and not dry_run:
        report.uploads.extend(confirm(contents.s3_event))
    elif contents.s3_event is not None:
        report.uploads.extend(str(r["s3"]["object"]["key"]) for r in contents.s3_event["Records"])
    for client_id, assigned in sorted(contents.clients.items()):
        if dry_run:
            report.clients.setdefault(client_id, 0)
        elif client_id not in report.clients:
            report.clients[client_id] = refan_client(client_id, assigned)
    for job in contents.jobs:
        if job not in report.jobs:
            if not dry_run:
                enqueue_job(job)
            report.jobs.append(job)
    report.ignored += contents.ignored


def redrive(
    sqs: Any,
    queue_url: str,
    streams: Any,
    *,
    dry_run: bool = False,
    limit: int = 1000,
    refan_client: Callable[[str, set[str]], int] = refan,
    enqueue_job: Callable[[dict[str, Any]], None] = restart_job,
    confirm: Callable[[dict[str, Any]], list[str]] = confirm_again,
    report: Report | None = None,
) -> Report:
    """Handle every message on the queue once; handled ones are deleted, the rest made visible again."""
    report = report if report is not None else Report()
    keep: list[str] = []
    for message in _messages(sqs, queue_url, limit):
        try:
            contents = contents_of_message(json.loads(message["Body"]), streams)
            _act(contents, report, dry_run, refan_client, enqueue_job, confirm)
        except (Unhandled, ValueError, KeyError, TypeError, AttributeError) as exc:
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
    parser.add_argument("--stack", help="deployed stack name (reads the queues, table and bucket from its outputs)")
    parser.add_argument(
        "--queue-url", action="append", help="a failure queue (instead of --stack); give it once for each queue"
    )
    parser.add_argument("--table", help="the records table (instead of --stack)")
    parser.add_argument("--jobs-queue-url", help="the jobs queue, where restarted jobs go (instead of --stack)")
    parser.add_argument("--bucket", help="the uploads bucket (instead of --stack)")
    parser.add_argument("--endpoint-url", help="an emulator, e.g. the local stack's http://127.0.0.1:4566")
    parser.add_argument("--dry-run", action="store_true", help="list what would be done; change nothing")
    parser.add_argument("--limit", type=int, default=1000, help="messages to read at most, per queue")
    args = parser.parse_args(argv)
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    queue_urls, table, jobs_queue, bucket = list(args.queue_url or []), args.table, args.jobs_queue_url, args.bucket
    if args.stack:
        outputs = _stack_outputs(args.stack)
        queue_urls = queue_urls or [
            outputs[name] for name in ("StreamFailureQueueUrl", "UploadEventsFailureQueueUrl") if name in outputs
        ]
        table = table or outputs["TableName"]
        jobs_queue = jobs_queue or outputs.get("JobsQueueUrl")
        bucket = bucket or outputs.get("UploadsBucketName")
    if not queue_urls or not table:
        parser.error("give --stack, or --queue-url and --table")
    # The domain layer reads its settings once, at import: set them before the first import.
    os.environ["TABLE_NAME"] = table
    os.environ.setdefault("STREAM_FAILURE_QUEUE_URL", queue_urls[0])
    if jobs_queue:
        os.environ["JOBS_QUEUE_URL"] = jobs_queue
    if bucket:
        os.environ["UPLOADS_BUCKET"] = bucket
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    import boto3

    sqs, streams = boto3.client("sqs"), boto3.client("dynamodbstreams")
    report = Report()
    for queue_url in queue_urls:
        redrive(sqs, queue_url, streams, dry_run=args.dry_run, limit=args.limit, report=report)
    print(json.dumps(report.as_dict(), indent=2))
    return 1 if report.left else 0


if __name__ == "__main__":
    sys.exit(main())
