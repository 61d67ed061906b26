"""The local stack's event sources follow Lambda's documented rules (devstack/pumps.py), each shown here with a
fake function on moto's in-process SQS:

- SQS: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html and
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html (throttled receives count toward
  maxReceiveCount; several batches in flight; partial batch responses; at least once, out of order).
- DynamoDB streams: https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html and
  https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html (checkpoint at the
  lowest failed sequence number, bisection that costs no retry, MaximumRetryAttempts, MaximumRecordAgeInSeconds,
  the on-failure invocation record).
(S3 events as asynchronous invocations: devstack/async_invoke.py, tests/unit/test_redrive.py.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack import faults
from devstack.pumps import SqsPump, StreamPump
from devstack.template import LOCAL_REGION, FunctionSpec
from devstack.workers import InvocationError, Throttled


class InProcessAws:
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=LOCAL_REGION)


class FakeFunction:
    """A function the pumps invoke: ``behaviour(event)`` answers or raises; concurrency is enforced."""

    def __init__(self, behaviour: Callable[[dict[str, Any]], Any] | None = None, concurrency: int = 4) -> None:
        self.spec = FunctionSpec("FakeFunction", Path("."), "app.handler", {}, {})
        self.behaviour = behaviour or (lambda event: None)
        self.concurrency = concurrency
        self.events: list[dict[str, Any]] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any], wait_s: float | None = None) -> Any:
        with self._lock:
            if self.running >= self.concurrency:
                raise Throttled("TooManyRequestsException", "Rate Exceeded.")
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.events.append(event)
        try:
            return self.behaviour(event)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name=LOCAL_REGION)


def _queue(sqs: Any, name: str, max_receive_count: int | None = None) -> tuple[str, str | None]:
    attrs: dict[str, str] = {}
    dlq_url = None
    if max_receive_count:
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"], dlq_url


def _bodies(sqs: Any, url: str) -> list[str]:
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not got:
            return out
        out.extend(m["Body"] for m in got)


def _fire_once(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    fired: list[str] = []

    def hit(name: str) -> bool:
        if name == kind and not fired:
            fired.append(name)
            return True
        return False

    monkeypatch.setattr(faults, "hit", hit)


# ------------------------------------------------------------------ SQS


def test_throttled_receives_count_toward_max_receive_count_and_end_in_the_dead_letter_queue(sqs: Any) -> None:
    """A batch received when no instance is free is not processed, but its receive counts: after
    maxReceiveCount throttled receives the message is in the DLQ, never having run."""
    url, dlq = _queue(sqs, "jobs", max_receive_count=3)
    sqs.send_message(QueueUrl=url, MessageBody="chunk-2")
    busy = FakeFunction(concurrency=0)  # every instance busy
    pump = SqsPump(InProcessAws(), url, busy, 1, threading.Event(), pollers=2, visibility_timeout_s=0)  # type: ignore[arg-type]
    for _ in range(4):
        pump.step()
    assert pump.throttled == 3
    assert busy.events == []
    assert dlq is not None
    assert _bodies(sqs, dlq) == ["chunk-2"]
    assert _bodies(sqs, url) == []


def test_several_batches_are_in_flight_at_once_up_to_the_function_concurrency(sqs: Any) -> None:
    """Two chunks of one job chain run in parallel when the function has two instances; a third poller's
    batch is throttled and delivered after its visibility timeout."""
    url, _ = _queue(sqs, "jobs")
    for i in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"chunk-{i}")
    gate = threading.Event()
    fn = FakeFunction(lambda event: gate.wait(5), concurrency=2)
    stop = threading.Event()
    pump = SqsPump(InProcessAws(), url, fn, 1, stop, pollers=3, visibility_timeout_s=1)  # type: ignore[arg-type]
    pump.start()
    try:
        deadline = time.monotonic() + 10
        while (fn.running < 2 or pump.throttled < 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fn.running == 2
        assert pump.throttled >= 1
        assert not pump.settled()
        gate.set()
        while len({e["Records"][0]["body"] for e in fn.events}) < 4 and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        assert sorted({e["Records"][0]["body"] for e in fn.events}) == [f"chunk-{i}" for i in range(4)]
        assert fn.most_at_once == 2
        while not pump.settled() and time.monotonic() < deadline + 15:
            time.sleep(0.05)
        assert pump.settled()
    finally:
        stop.set()
        pump.join(5)


def test_a_partial_batch_response_deletes_only_the_messages_that_succeeded(sqs: Any) -> None:
    url, _ = _queue(sqs, "jobs")
    for body in ("ok-1", "bad", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)

    def fail_bad(event: dict[str, Any]) -> Any:
        return {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]
        }

    pump = SqsPump(InProcessAws(), url, FakeFunction(fail_bad), 10, threading.Event(), visibility_timeout_s=0)  # type: ignore[arg-type]
    assert pump.step()
    assert _bodies(sqs, url) == ["bad"]


def test_an_unknown_item_identifier_fails_the_whole_batch(sqs: Any) -> None:
    url, _ = _queue(sqs, "jobs")
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    fn = FakeFunction(lambda event: {"batchItemFailures": [{"itemIdentifier": ""}]})
    pump = SqsPump(InProcessAws(), url, fn, 10, threading.Event(), visibility_timeout_s=0)  # type: ignore[arg-type]
    pump.step()
    assert sorted(_bodies(sqs, url)) == ["a", "b"]


def test_a_message_may_be_delivered_twice(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard queues deliver at least once: with the fault ``duplicate`` a processed message is handed to
    the function a second time, with the same messageId."""
    _fire_once(monkeypatch, "duplicate")
    url, _ = _queue(sqs, "jobs")
    sqs.send_message(QueueUrl=url, MessageBody="once")
    fn = FakeFunction()
    pump = SqsPump(InProcessAws(), url, fn, 1, threading.Event())  # type: ignore[arg-type]
    while pump.step():
        pass
    ids = [e["Records"][0]["messageId"] for e in fn.events]
    assert len(ids) == 2
    assert ids[0] == ids[1]
    assert pump.duplicates == 1
    assert _bodies(sqs, url) == []


def test_messages_may_be_delivered_out_of_order(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the fault ``reorder`` a batch is handed over after the one received behind it."""
    _fire_once(monkeypatch, "reorder")
    url, _ = _queue(sqs, "jobs")
    for body in ("first", "second", "third"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    fn = FakeFunction()
    pump = SqsPump(InProcessAws(), url, fn, 1, threading.Event())  # type: ignore[arg-type]
    while pump.step():
        pass
    assert [e["Records"][0]["body"] for e in fn.events] == ["second", "first", "third"]


# --------------------------------------------------------------- stream


def _record(seq: int, pk: str = "CLIENT#1", created: float | None = None) -> dict[str, Any]:
    return {
        "eventID": f"e{seq}",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": {"S": pk}, "sk": {"S": "PROFILE"}},
            "SequenceNumber": str(100 + seq),
            "ApproximateCreationDateTime": int(created if created is not None else time.time()),
        },
    }


def _stream_pump(sqs: Any, fn: FakeFunction, records: list[dict[str, Any]], **props: Any) -> tuple[StreamPump, str]:
    failure_url, _ = _queue(sqs, "stream-failures")
    event = {"Properties": {"BatchSize": 4, "FunctionResponseTypes": ["ReportBatchItemFailures"], **props}}
    pump = StreamPump(
        InProcessAws(), "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x", fn, event, threading.Event()
    )  # type: ignore[arg-type]
    pump.failure_queue_url = failure_url
    pump._fetch = lambda: None  # type: ignore[method-assign]
    pump._pending = list(records)
    for r in records:
        pump._shard_of[r["dynamodb"]["SequenceNumber"]] = "shardId-000001"
    return pump, failure_url


def _seqs(event: dict[str, Any]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) - 100 for r in event["Records"]]


def test_a_partial_batch_failure_is_retried_from_the_lowest_failed_sequence_number(sqs: Any) -> None:
    fails_on_call = {1: {3, 4}, 2: {3}}  # 4 succeeds on its first retry, 3 on its second

    def fn_(event: dict[str, Any]) -> Any:
        failing = fails_on_call.get(len(fn.events), set())
        failed = [r for r in event["Records"] if int(r["dynamodb"]["SequenceNumber"]) - 100 in failing]
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failed]}

    fn = FakeFunction(fn_)
    pump, _ = _stream_pump(sqs, fn, [_record(i) for i in range(1, 5)])
    while pump.step():
        pass
    assert [_seqs(e) for e in fn.events] == [[1, 2, 3, 4], [3, 4], [3, 4]]
    assert pump.delivered == 4
    assert pump.parked == []


def test_bisection_isolates_a_bad_record_without_costing_retries_then_it_goes_to_the_destination(sqs: Any) -> None:
    def fn_(event: dict[str, Any]) -> Any:
        if 3 in _seqs(event):
            raise InvocationError("ValueError", "bad record")

    fn = FakeFunction(fn_)
    pump, failure_url = _stream_pump(
        sqs, fn, [_record(i) for i in range(1, 5)], BisectBatchOnFunctionError=True, MaximumRetryAttempts=1
    )
    while pump.step():
        pass
    assert [_seqs(e) for e in fn.events] == [[1, 2, 3, 4], [1, 2], [3, 4], [3], [3], [4]]
    (parked,) = [json.loads(b) for b in _bodies(sqs, failure_url)]
    assert parked["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert parked["requestContext"]["approximateInvokeCount"] == 2
    assert parked["DDBStreamBatchInfo"]["startSequenceNumber"] == "103"
    assert parked["DDBStreamBatchInfo"]["endSequenceNumber"] == "103"
    assert parked["DDBStreamBatchInfo"]["batchSize"] == 1


def test_the_on_failure_record_is_lambdas_and_spans_the_batch_range(sqs: Any) -> None:
    """The message is Lambda's invocation record: a position in the shard (other items' records inside the
    range), the function, the condition and the response, never the records themselves."""
    fn = FakeFunction(lambda event: (_ for _ in ()).throw(InvocationError("Sandbox.Timedout", "Task timed out")))
    records = [_record(1, "CLIENT#a"), _record(2, "CLIENT#b"), _record(3, "CLIENT#a")]
    pump, failure_url = _stream_pump(sqs, fn, records, MaximumRetryAttempts=0)
    while pump.step():
        pass
    (parked,) = [json.loads(b) for b in _bodies(sqs, failure_url)]
    assert set(parked) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
    assert set(parked["requestContext"]) == {"requestId", "functionArn", "condition", "approximateInvokeCount"}
    assert parked["requestContext"]["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:FakeFunction"
    assert parked["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert parked["version"] == "1.0"
    info = parked["DDBStreamBatchInfo"]
    assert set(info) == {
        "shardId",
        "startSequenceNumber",
        "endSequenceNumber",
        "approximateArrivalOfFirstRecord",
        "approximateArrivalOfLastRecord",
        "batchSize",
        "streamArn",
    }
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        "shardId-000001",
        "101",
        "103",
        3,
    )
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert "Records" not in json.dumps(parked)
    assert len(fn.events) == 1  # MaximumRetryAttempts 0: no retry


def test_records_older_than_the_maximum_age_are_not_delivered_and_go_to_the_destination(sqs: Any) -> None:
    old = time.time() - 7200
    records = [_record(1, created=old), _record(2, created=old), _record(3)]
    fn = FakeFunction()
    pump, failure_url = _stream_pump(sqs, fn, records, MaximumRecordAgeInSeconds=3600)
    while pump.step():
        pass
    assert [_seqs(e) for e in fn.events] == [[3]]
    (parked,) = [json.loads(b) for b in _bodies(sqs, failure_url)]
    assert parked["requestContext"]["condition"] == "RecordAgeExceeded"
    assert parked["DDBStreamBatchInfo"]["startSequenceNumber"] == "101"
    assert parked["DDBStreamBatchInfo"]["endSequenceNumber"] == "102"
