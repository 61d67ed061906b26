"""Event sources in the background: the table's stream, SQS queues and S3 notifications,
delivered to the functions the template wires them to, with Lambda's retry rules."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from devstack.emulator import Emulator
from devstack.functions import Invoker
from devstack.template import LOCAL_REGION

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


class Pump(threading.Thread):
    def __init__(self, name: str, stop: threading.Event, idle_s: float = 0.05) -> None:
        super().__init__(name=name, daemon=True)
        self._stop_event = stop
        self.idle_s = idle_s
        self.busy = False
        self.polls = 0  # finished polls, for drain()
        self.idle_streak = 0  # polls in a row that found nothing

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                worked = self.step()
            except Exception:
                if self._stop_event.is_set():
                    return
                log.exception("%s failed; retrying", self.name)
                worked = True  # not idle: what failed is still there
            self.idle_streak = 0 if worked else self.idle_streak + 1
            self.polls += 1
            if not worked:
                self._stop_event.wait(self.idle_s)

    def step(self) -> bool:
        raise NotImplementedError


class StreamPump(Pump):
    """Reads the table's stream (GetRecords) and invokes the consumer as Lambda's event source mapping would:
    filter criteria, batch size, partial batch responses, bisection on error, finite retries, then the
    on-failure destination."""

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
        self.bisect = bool(props.get("BisectBatchOnFunctionError", False))
        self.partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        self.filters = [json.loads(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", [])]
        self.failure_queue_url: str | None = None
        self._iterators: dict[str, str] = {}
        self._pending: list[dict[str, Any]] = []
        self._attempts = 0
        self._size = self.batch_size
        self.delivered = 0
        self.failed_batches = 0

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

    def step(self) -> bool:
        if not self._pending:
            self._fetch()
        if not self._pending:
            self.busy = False
            return False
        self.busy = True
        batch = self._pending[: self._size]
        failed_from: int | None = None
        try:
            result = self.pool.invoke({"Records": batch})
            failures = (result or {}).get("batchItemFailures") or [] if self.partial else []
            if failures:
                ids = {f["itemIdentifier"] for f in failures}
                failed_from = next((i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in ids), 0)
        except Exception:
            log.exception("stream batch of %d failed", len(batch))
            failed_from = 0
            if self.bisect and len(batch) > 1:
                self._size = max(1, len(batch) // 2)
        if failed_from is None:
            self._done(len(batch))
            return True
        self._pending = self._pending[failed_from:]  # records before the first failure are done
        self.delivered += failed_from
        self._attempts += 1
        if self.max_retries >= 0 and self._attempts > self.max_retries:
            self._park(batch[failed_from:])
            self._done(len(batch) - failed_from)
        return True

    def _done(self, count: int) -> None:
        self._pending = self._pending[count:]
        self.delivered += count
        self._attempts = 0
        self._size = self.batch_size

    def _park(self, records: list[dict[str, Any]]) -> None:
        """What Lambda sends to a stream's on-failure destination: the batch's position, not its records."""
        self.failed_batches += 1
        log.error(
            "stream records %s..%s exhausted their retries",
            records[0]["dynamodb"]["SequenceNumber"],
            records[-1]["dynamodb"]["SequenceNumber"],
        )
        if self.failure_queue_url:
            self.sqs.send_message(
                QueueUrl=self.failure_queue_url,
                MessageBody=json.dumps(
                    {
                        "requestContext": {
                            "condition": "RetryAttemptsExhausted",
                            "functionArn": self.pool.spec.logical_id,
                        },
                        "DDBStreamBatchInfo": {
                            "shardId": "local",
                            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                            "batchSize": len(records),
                            "streamArn": self.stream_arn,
                        },
                    }
                ),
            )


class SqsPump(Pump):
    """Receives from a queue and invokes the function with an SQS event; failed messages come back after
    their visibility timeout, and the queue's redrive policy moves them to the dead-letter queue."""

    def __init__(
        self,
        emulator: Emulator,
        queue_url: str,
        pool: Invoker,
        batch_size: int,
        stop: threading.Event,
        transform: Callable[[list[dict[str, Any]]], dict[str, Any] | None] | None = None,
    ) -> None:
        super().__init__(f"sqs->{pool.spec.logical_id}", stop)
        self.sqs = emulator.client("sqs")
        self.queue_url = queue_url
        self.pool = pool
        self.batch_size = batch_size
        self.transform = transform
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_arn = arn

    def step(self) -> bool:
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, self.batch_size),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            self.busy = False
            return False
        self.busy = True
        records = [
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
            for m in messages
        ]
        failed: set[str] = set()
        try:
            event = self.transform(records) if self.transform else {"Records": records}
            if event is not None:
                result = self.pool.invoke(event)
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", []) or []}
        except Exception:
            log.exception("%s: batch failed", self.name)
            failed = {r["messageId"] for r in records}
        done = [r for r in records if r["messageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)],
            )
        return True


def s3_event_from_messages(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The S3 event Lambda would get, from the notification messages the bucket sent to the local queue."""
    out: list[dict[str, Any]] = []
    for record in records:
        body = json.loads(record["body"])
        if body.get("Event") == "s3:TestEvent":
            continue
        out.extend(body.get("Records", []))
    return {"Records": out} if out else None
