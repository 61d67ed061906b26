"""Event sources in the background: the table's stream, SQS queues and S3 notifications, delivered to the
functions the template wires them to with Lambda's rules, AWS's documentation being the reference:

- DynamoDB stream (``StreamPump``; https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html,
  https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html): one batch at a
  time per shard, filter criteria, a partial batch response checkpoints at the lowest failed sequence number
  and retries from there, ``BisectBatchOnFunctionError`` splits a failed batch (a split costs no retry),
  ``MaximumRetryAttempts`` then the on-failure destination (``RetryAttemptsExhausted``), records older than
  ``MaximumRecordAgeInSeconds`` are not delivered and go there too (``RecordAgeExceeded``); the message is
  Lambda's invocation record (``requestContext``, ``responseContext``, ``version``, ``timestamp``,
  ``DDBStreamBatchInfo``), a position in the shard, not the records.
- SQS (``SqsPump``; https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html,
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html): several pollers, so several
  batches are in flight at once, up to the function's concurrency plus one; a batch the function has no free
  instance for is throttled and stays on the queue: the receive counted, it comes back after the visibility
  timeout and goes to the dead-letter queue after ``maxReceiveCount`` receives; at least once (a duplicate
  delivery, fault ``duplicate``) and out of order (fault ``reorder``); ``ReportBatchItemFailures``.
- S3 notifications are asynchronous invocations: ``devstack.async_invoke``.

Waits are scaled for a local stack (``DEVSTACK_SQS_TIME_SCALE``, default 0.05): a queue keeps the template's
``VisibilityTimeout`` as its attribute but the local poller receives with the scaled one (the jobs queue's
180 s is 9 s). Counts (receives, retries) are never scaled.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from devstack import faults
from devstack.emulator import Emulator
from devstack.functions import Invoker, function_arn
from devstack.template import LOCAL_REGION
from devstack.workers import Throttled

log = logging.getLogger("devstack.events")


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style filter patterns, the subset Lambda event filtering uses here."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(matches(sub, value.get(key)) for key, sub in pattern.items())
    if isinstance(pattern, list):
        for option in pattern:
            if isinstance(option, dict):
                if "prefix" in option and isinstance(value, str) and value.startswith(option["prefix"]):
                    return True
                if "exists" in option and (value is not None) == bool(option["exists"]):
                    return True
                if "anything-but" in option:
                    banned = option["anything-but"]
                    banned = banned if isinstance(banned, list) else [banned]
                    if value is not None and value not in banned:
                        return True
            elif value == option:
                return True
        return False
    return bool(pattern == value)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "timestamp"):
        return int(value.timestamp())
    return value


def time_scale() -> float:
    """How much shorter the local poller's visibility timeouts are than the queues'."""
    return float(os.environ.get("DEVSTACK_SQS_TIME_SCALE", "0.05"))


def _iso(epoch_s: float, ms: bool = True) -> str:
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


class Pump(threading.Thread):
    def __init__(self, name: str, stop: threading.Event, idle_s: float = 0.05) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_event = stop
        self.idle_s = idle_s
        self.busy = False
        self.polls = 0  # finished polls, for drain()
        self.idle_streak = 0  # polls in a row that found nothing
        self._counter_lock = threading.Lock()

    def run(self) -> None:
        self._loop()

    def _loop(self) -> None:
        while not self._stop_event.is_set():
            try:
                worked = self.step()
            except Exception:
                if self._stop_event.is_set():
                    return
                log.exception("%s failed; retrying", self.name)
                worked = True  # not idle: what failed is still there
            with self._counter_lock:
                self.idle_streak = 0 if worked else self.idle_streak + 1
                self.polls += 1
            if not worked:
                self._stop_event.wait(self.idle_s)

    def step(self) -> bool:
        raise NotImplementedError

    def settled(self) -> bool:
        """Nothing is left to deliver, nor in flight, nor waiting to be retried (for drain())."""
        return not self.busy


class StreamPump(Pump):
    """Reads the table's stream (GetRecords) and invokes the consumer as Lambda's event source mapping would:
    filter criteria, batch size, partial batch responses, bisection on error, finite retries, record age,
    then the on-failure destination."""

    def __init__(
        self, emulator: Emulator, stream_arn: str, pool: Invoker, event: dict[str, Any], stop: threading.Event
    ) -> None:
        super().__init__(f"stream->{pool.spec.logical_id}", stop)
        props = event["Properties"]
        self.client = emulator.client("dynamodbstreams")
        self.sqs = emulator.client("sqs")
        self.stream_arn = stream_arn
        self.pool = pool
        self.batch_size = int(props.get("BatchSize", 100))
        self.max_retries = int(props.get("MaximumRetryAttempts", -1))
        self.max_age_s = int(props.get("MaximumRecordAgeInSeconds", -1))
        self.bisect = bool(props.get("BisectBatchOnFunctionError", False))
        self.partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        self.filters = [json.loads(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", [])]
        self.failure_queue_url: str | None = None
        self._iterators: dict[str, str] = {}
        self._pending: list[dict[str, Any]] = []
        self._shard_of: dict[str, str] = {}  # sequence number -> shard id
        self._attempts = 0  # invocations of the batch at the head of _pending so far
        self._size = self.batch_size
        self._last_response: dict[str, Any] | None = None
        self.delivered = 0
        self.failed_batches = 0
        self.parked: list[dict[str, Any]] = []  # the on-failure records sent, for tests

    def _fetch(self) -> None:
        if not self._iterators:
            shards = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
            for shard in shards:
                self._iterators[shard["ShardId"]] = self.client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        for shard_id, iterator in list(self._iterators.items()):
            resp = self.client.get_records(ShardIterator=iterator, Limit=1000)
            self._iterators[shard_id] = resp.get("NextShardIterator") or iterator
            for record in resp.get("Records", []):
                event = self.lambda_record(record)
                if not self.filters or any(matches(f, event) for f in self.filters):
                    self._shard_of[event["dynamodb"]["SequenceNumber"]] = shard_id
                    self._pending.append(event)

    def lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        data = _plain(record["dynamodb"])
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": LOCAL_REGION,
            "dynamodb": data,
            "eventSourceARN": self.stream_arn,
        }

    def _expired(self, record: dict[str, Any], now: float) -> bool:
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        return self.max_age_s >= 0 and created is not None and now - float(created) > self.max_age_s

    def step(self) -> bool:
        if not self._pending:
            self._fetch()
        if not self._pending:
            self.busy = False
            return False
        self.busy = True
        # Records older than MaximumRecordAgeInSeconds are not delivered (the oldest are first).
        now = time.time()
        expired = 0
        while expired < len(self._pending) and self._expired(self._pending[expired], now):
            expired += 1
        if expired:
            self._park(self._pending[:expired], "RecordAgeExceeded")
            self._done(expired)
            return True
        batch = self._pending[: self._size]
        failed_from: int | None = None
        self._attempts += 1
        try:
            result = self.pool.invoke({"Records": batch})
            self._last_response = {"statusCode": 200, "executedVersion": "$LATEST"}
            failures = (
                ((result if isinstance(result, dict) else {}).get("batchItemFailures") or []) if self.partial else []
            )
            if failures:
                ids = [f.get("itemIdentifier") for f in failures]
                seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
                # Retry from the lowest failed sequence number; an empty or unknown identifier fails the batch.
                failed_from = min(seqs.index(i) for i in ids) if all(i in seqs for i in ids) else 0
        except Exception as exc:
            log.error("stream batch of %d failed: %s", len(batch), exc)
            self._last_response = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
            failed_from = 0
            if self.bisect and len(batch) > 1:
                # Splitting a batch does not count towards the retry quota.
                self._size = max(1, len(batch) // 2)
                self._attempts -= 1
                return True
        if failed_from is None:
            self._done(len(batch))
            return True
        if failed_from:  # records before the checkpoint are done; the retry starts at the failed one
            self._pending = self._pending[failed_from:]
            self.delivered += failed_from
            self._size = len(batch) - failed_from
        if self.max_retries >= 0 and self._attempts > self.max_retries:
            self._park(batch[failed_from:], "RetryAttemptsExhausted")
            self._done(len(batch) - failed_from)
        return True

    def _done(self, count: int) -> None:
        self._pending = self._pending[count:]
        self.delivered += count
        self._attempts = 0
        self._size = self.batch_size
        self._last_response = None

    def invocation_record(self, records: list[dict[str, Any]], condition: str) -> dict[str, Any]:
        """What Lambda sends a stream's on-failure destination: the batch's position in the shard (its range
        spans every record between, other items' and filtered-out ones too), not its records."""
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": function_arn(self.pool.spec),
                "condition": condition,
                "approximateInvokeCount": self._attempts,
            },
            "responseContext": self._last_response or {"statusCode": 0, "executedVersion": "$LATEST"},
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "DDBStreamBatchInfo": {
                "shardId": self._shard_of.get(first["SequenceNumber"], ""),
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(float(first.get("ApproximateCreationDateTime", 0)), False),
                "approximateArrivalOfLastRecord": _iso(float(last.get("ApproximateCreationDateTime", 0)), False),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }

    def _park(self, records: list[dict[str, Any]], condition: str) -> None:
        self.failed_batches += 1
        log.error(
            "stream records %s..%s: %s",
            records[0]["dynamodb"]["SequenceNumber"],
            records[-1]["dynamodb"]["SequenceNumber"],
            condition,
        )
        record = self.invocation_record(records, condition)
        self.parked.append(record)
        if self.failure_queue_url:
            self.sqs.send_message(QueueUrl=self.failure_queue_url, MessageBody=json.dumps(record))

    def settled(self) -> bool:
        return not self._pending


class SqsPump(Pump):
    """Lambda's SQS event source mapping: pollers receive batches and invoke the function, several at once;
    failed messages come back after their visibility timeout, and the queue's redrive policy moves them to
    the dead-letter queue after maxReceiveCount receives, throttled ones included.

    ``pollers=1`` (the default) is one poller that waits for the function (``step()`` delivers one batch, for
    tests that step pumps by hand); the local stack runs the function's concurrency plus one, which never wait:
    a batch received with no instance free is throttled."""

    def __init__(
        self,
        emulator: Emulator,
        queue_url: str,
        pool: Invoker,
        batch_size: int,
        stop: threading.Event,
        transform: Callable[[list[dict[str, Any]]], dict[str, Any] | None] | None = None,
        *,
        pollers: int = 1,
        visibility_timeout_s: int | None = None,
        partial: bool = True,
    ) -> None:
        super().__init__(f"sqs->{pool.spec.logical_id}", stop)
        self.sqs = emulator.client("sqs")
        self.queue_url = queue_url
        self.pool = pool
        self.batch_size = batch_size
        self.transform = transform
        self.pollers = pollers
        self.visibility_timeout_s = visibility_timeout_s
        self.partial = partial
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_arn = arn
        self._lock = threading.Lock()
        self._in_flight = 0
        self._held: deque[list[dict[str, Any]]] = deque()  # batches handed over later (fault "reorder")
        self._again: deque[dict[str, Any]] = deque()  # records delivered a second time (fault "duplicate")
        self.throttled = 0
        self.duplicates = 0

    # -- receiving
    def _receive(self) -> list[dict[str, Any]]:
        args: dict[str, Any] = {}
        if self.visibility_timeout_s is not None:
            args["VisibilityTimeout"] = self.visibility_timeout_s
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, self.batch_size),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            **args,
        )
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": self.queue_arn,
                "awsRegion": LOCAL_REGION,
            }
            for m in resp.get("Messages", [])
        ]

    def next_batch(self) -> list[dict[str, Any]]:
        """The next batch to hand over: a duplicate due, a batch held back, or a fresh receive (which, when
        the fault ``reorder`` fires, is held back behind the batch after it)."""
        with self._lock:
            if self._again:
                return [self._again.popleft()]
            if self._held:
                return self._held.popleft()
        records = self._receive()
        if records and faults.hit("reorder"):
            random.shuffle(records)
            later = self._receive()
            if later:
                with self._lock:
                    self._held.append(records)
                return later
        return records

    # -- delivering
    def step(self) -> bool:
        records = self.next_batch()
        if not records:
            self.busy = False
            return False
        self.busy = True
        self.deliver(records, wait_s=None if self.pollers == 1 else 0)
        return True

    def deliver(self, records: list[dict[str, Any]], wait_s: float | None) -> bool:
        """Invoke the function with one batch; delete what succeeded, leave the rest to come back after its
        visibility timeout. Returns False when the invocation was throttled."""
        with self._lock:
            self._in_flight += 1
        try:
            return self._deliver(records, wait_s)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _deliver(self, records: list[dict[str, Any]], wait_s: float | None) -> bool:
        failed: set[str] = set()
        try:
            event = self.transform(records) if self.transform else {"Records": records}
            if event is not None:
                result = self.pool.invoke(event, wait_s=wait_s)
                failures = (
                    ((result if isinstance(result, dict) else {}).get("batchItemFailures") or [])
                    if self.partial
                    else []
                )
                failed = {f.get("itemIdentifier") for f in failures}
                if not failed <= {r["messageId"] for r in records}:  # an unknown identifier fails the batch
                    failed = {r["messageId"] for r in records}
        except Throttled:
            self.throttled += 1
            log.warning("%s: throttled; %d message(s) stay on the queue (a receive counted)", self.name, len(records))
            return False
        except Exception as exc:
            log.error("%s: batch failed: %s", self.name, exc)
            failed = {r["messageId"] for r in records}
        done = [r for r in records if r["messageId"] not in failed and not r.get("_duplicate")]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)],
            )
        for record in records:
            if record["messageId"] not in failed and not record.get("_duplicate") and faults.hit("duplicate"):
                self.duplicates += 1
                with self._lock:
                    self._again.append({**record, "_duplicate": True})
        return True

    # -- several pollers at once
    def run(self) -> None:
        if self.pollers == 1:
            self._loop()
            return
        threads = [
            threading.Thread(target=self._poller, name=f"{self.name}#{i}", daemon=True) for i in range(self.pollers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _poller(self) -> None:
        backoff = 0.0
        while not self._stop_event.is_set():
            worked = False
            try:
                records = self.next_batch()
                if records:
                    worked = True
                    # Throttled: this poller backs off, as Lambda's slow down when the function throttles.
                    backoff = 0.0 if self.deliver(records, wait_s=0) else min(5.0, max(0.25, backoff * 2))
            except Exception:
                if self._stop_event.is_set():
                    return
                log.exception("%s failed; retrying", self.name)
                worked = True
            with self._counter_lock:
                self.idle_streak = 0 if worked else self.idle_streak + 1
                self.polls += 1
            if backoff:
                self._stop_event.wait(backoff)
            elif not worked:
                self._stop_event.wait(self.idle_s)

    def settled(self) -> bool:
        with self._lock:
            if self._in_flight or self._held or self._again:
                return False
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(int(v) == 0 for v in attrs.values())


def s3_event_from_messages(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The S3 event Lambda would get, from the notification messages the bucket sent to the local queue."""
    out: list[dict[str, Any]] = []
    for record in records:
        body = json.loads(record["body"])
        if body.get("Event") == "s3:TestEvent":
            continue
        out.extend(body.get("Records", []))
    return {"Records": out} if out else None
