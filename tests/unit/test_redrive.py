"""``make redrive`` (tools/redrive.py) on the failure messages Lambda really sends (moto in-process).

- A stream batch given up on: Lambda's on-failure record names only a shard and a sequence range
  (``DDBStreamBatchInfo``, https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html), and the
  range holds every record of the table written meanwhile, not only the batch's: notes, uniqueness items,
  invites, member items...
- An S3 event the uploads function failed on three times: the asynchronous invocation's on-failure record
  (``requestContext.condition`` ``RetriesExhausted``, the event under ``requestPayload``,
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack.template import LOCAL_REGION, LOCAL_STACK_NAME, Template
from tests.unit.test_import_in_progress import _call
from tests.unit.test_uploads import _image, _seed, invoke  # noqa: F401 - invoke is a fixture
from tools.redrive import redrive


def _ok(template: Template, method: str, path: str, sub: str, body: Any = None) -> Any:
    resp = _call(template, method, path, sub, body)
    assert resp["statusCode"] < 300, resp
    return json.loads(resp["body"]) if resp.get("body") else None


def _queue(name: str) -> str:
    url: str = boto3.client("sqs", region_name=LOCAL_REGION).get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-{name}")[
        "QueueUrl"
    ]
    return url


def _bodies(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=LOCAL_REGION)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


@pytest.fixture
def jobs_queue(aws: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from salon.settings import get_settings

    url = _queue("JobsQueue")
    monkeypatch.setenv("JOBS_QUEUE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _whole_shard(streams: Any, arn: str) -> tuple[str, list[dict[str, Any]]]:
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator)
        if not page["Records"]:
            break
        records += page["Records"]
        iterator = page.get("NextShardIterator")
    return shard["ShardId"], records


def test_a_real_on_failure_record_whose_range_holds_other_items_re_fans_the_clients_and_restarts_the_jobs(
    aws: Template, jobs_queue: str
) -> None:
    from salon.data.models import ClientView, TableItem

    studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    ana = _ok(aws, "POST", "/clients", "olga", {"name": "Ana", "phone": "+1 415 555 2671"})["client_id"]
    _ok(aws, "POST", f"/clients/{ana}/notes", "olga", {"body": "Prefers mornings"})
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})
    # The consumer failed on this batch every time: what it writes is missing (Olga's view of Ana, say).
    TableItem.get("PRO#olga", f"CLIENT#{ana}").delete()

    # (moto's in-process mock answers the streams API only on its plain regional endpoint)
    endpoint = f"https://streams.dynamodb.{LOCAL_REGION}.amazonaws.com"
    streams = boto3.client("dynamodbstreams", region_name=LOCAL_REGION, endpoint_url=endpoint)
    arn = boto3.client("dynamodb", region_name=LOCAL_REGION).describe_table(TableName=TableItem.Meta.table_name)[
        "Table"
    ]["LatestStreamArn"]
    shard_id, records = _whole_shard(streams, arn)
    kinds = {r["dynamodb"]["Keys"]["sk"]["S"].split("#")[0] for r in records}
    assert {"PROFILE", "NOTE", "UNIQUE", "MEMBER", "INVITE"} <= kinds  # a range of many items' records
    failure = {
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:studio-local-StreamFunction",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 6,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-12-04T18:13:49.717Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": "2026-12-04T18:13:19Z",
            "approximateArrivalOfLastRecord": "2026-12-04T18:13:20Z",
            "batchSize": 4,
            "streamArn": arn,
        },
    }
    sqs = boto3.client("sqs", region_name=LOCAL_REGION)
    queue = _queue("StreamFailureQueue")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(failure))

    report = redrive(sqs, queue, streams)

    assert report.left == []
    assert report.handled == 1
    assert ana in report.clients
    assert report.ignored > 0  # the note, the uniqueness items, the invite...
    # The members' INSERTs start their imports (the owner's on creating the studio, Bob's on joining).
    assert report.jobs == [{"kind": "import", "studio_id": studio_id, "pro_id": pro} for pro in ("olga", "bob")]
    assert isinstance(TableItem.get("PRO#olga", f"CLIENT#{ana}"), ClientView)
    assert _bodies(queue) == []  # handled, so gone
    restarted = _bodies(jobs_queue)
    assert sorted((m["kind"], m["pro_id"]) for m in restarted) == [("import", "bob"), ("import", "olga")]


def _async_failure(bucket: str, key: str, version_id: str, size: int) -> dict[str, Any]:
    """The on-failure record of an asynchronous invocation, as Lambda sends it to an SQS destination."""
    return {
        "version": "1.0",
        "timestamp": "2026-12-04T18:20:11.394Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:studio-local-UploadsFunction:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": "2026-12-04T18:17:01.117Z",
                    "eventName": "ObjectCreated:Post",
                    "userIdentity": {"principalId": "AWS:AIDAXMPL"},
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "studio-local-ObjectCreated",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {
                            "key": key,
                            "size": size,
                            "versionId": version_id,
                            "sequencer": "0062E99A88DC407460",
                        },
                    },
                }
            ]
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": "1 object(s) not processed; the event will be retried",
            "errorType": "RuntimeError",
        },
    }


@pytest.mark.parametrize("late", [False, True], ids=["in time: confirmed", "after the lapse: deleted"])
def test_an_upload_event_that_failed_every_retry_is_confirmed_or_cleaned_up_by_the_redrive(
    invoke: Callable[..., dict[str, Any]],  # noqa: F811 - the fixture
    aws: Template,
    monkeypatch: pytest.MonkeyPatch,
    late: bool,
) -> None:
    from salon import clock
    from salon.data.models import TableItem
    from salon.settings import get_settings

    bucket = get_settings().uploads_bucket
    client_id = _seed("ana")
    body = _image("PNG", (32, 32))
    granted = invoke("POST", f"/clients/{client_id}/uploads", "ana", {"content_type": "image/png", "size": len(body)})
    upload_id = granted["json"]["upload_id"]
    key = f"clients/{client_id}/{upload_id}"
    s3 = boto3.client("s3", region_name=LOCAL_REGION)
    version = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")["VersionId"]
    # The function failed on the event three times; Lambda put it on the failure queue. Nothing confirmed it.
    sqs = boto3.client("sqs", region_name=LOCAL_REGION)
    queue = _queue("UploadEventsFailureQueue")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(_async_failure(bucket, key, version, len(body))))
    assert invoke("GET", f"/clients/{client_id}/uploads", "ana")["json"]["items"] == []
    if late:  # the operator redrives after the reservation's POST expiry and grace period
        monkeypatch.setattr(clock, "_offset_s", 24 * 3600)

    report = redrive(sqs, queue, streams=None)

    assert report.left == []
    assert report.uploads == [key]
    assert _bodies(queue) == []
    listed = [f["upload_id"] for f in invoke("GET", f"/clients/{client_id}/uploads", "ana")["json"]["items"]]
    quota = TableItem.get(f"CLIENT#{client_id}", "QUOTA", consistent_read=True)
    if late:
        assert listed == []
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key=key, VersionId=version)
        assert int(quota.used) == 0  # type: ignore[attr-defined]  # the slot is free again
    else:
        assert listed == [upload_id]
        assert int(quota.used) == 1  # type: ignore[attr-defined]


def test_the_local_stack_retries_an_s3_event_twice_then_puts_it_on_the_failure_queue_for_the_redrive(
    invoke: Callable[..., dict[str, Any]],  # noqa: F811 - the fixture
    aws: Template,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """devstack.async_invoke does what Lambda does with an S3 event the function fails on: two retries, then the
    on-failure destination (the template's EventInvokeConfig); the redrive then cleans the object up."""
    from devstack import async_invoke
    from devstack.emulator import S3_EVENTS_QUEUE
    from salon import clock
    from salon.settings import get_settings
    from tests.unit.conftest import InProcessAws

    monkeypatch.setattr(async_invoke, "RETRY_DELAY_S", 0.0)
    bucket = get_settings().uploads_bucket
    client_id = _seed("ana")
    body = _image("PNG", (32, 32))
    granted = invoke("POST", f"/clients/{client_id}/uploads", "ana", {"content_type": "image/png", "size": len(body)})
    key = f"clients/{client_id}/{granted['json']['upload_id']}"
    s3 = boto3.client("s3", region_name=LOCAL_REGION)
    version = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")["VersionId"]
    notification = _async_failure(bucket, key, version, len(body))["requestPayload"]
    sqs = boto3.client("sqs", region_name=LOCAL_REGION)
    events_queue = sqs.get_queue_url(QueueName=S3_EVENTS_QUEUE)["QueueUrl"]  # where the bucket notifies, locally
    sqs.purge_queue(QueueUrl=events_queue)  # moto's own notification of the PUT: ours below is the POST's
    sqs.send_message(QueueUrl=events_queue, MessageBody=json.dumps(notification))

    attempts: list[dict[str, Any]] = []

    class Throttled:  # every attempt fails, as a function whose table throttles it would
        spec = aws.functions()["UploadsFunction"]

        def invoke(self, event: dict[str, Any]) -> Any:
            attempts.append(event)
            raise RuntimeError("1 object(s) not processed; the event will be retried")

    config = aws.resources["UploadsFunction"]["Properties"]["EventInvokeConfig"]
    failures = _queue("UploadEventsFailureQueue")
    pump = async_invoke.AsyncS3Pump(
        InProcessAws(),  # type: ignore[arg-type]
        events_queue,
        Throttled(),
        threading.Event(),
        config,
        failures,
    )
    assert pump.step() is True
    assert len(attempts) == 3  # the first attempt and two retries
    (record,) = _bodies(failures)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == attempts[0]
    assert record["responsePayload"]["errorType"] == "RuntimeError"

    monkeypatch.setattr(clock, "_offset_s", 24 * 3600)  # the operator comes after the reservation lapsed
    report = redrive(sqs, failures, streams=None)
    assert report.left == []
    assert report.uploads == [key]
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=key, VersionId=version)
