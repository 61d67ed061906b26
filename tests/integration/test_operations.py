"""Operations over HTTP on a local stack of its own: log hygiene, structured logs, EMF metrics and redrive.

The stack runs with the switches an engineer flips while debugging production
(``POWERTOOLS_LOG_LEVEL=DEBUG``, ``POWERTOOLS_LOGGER_LOG_EVENT=true``,
``POWERTOOLS_EVENT_HANDLER_DEBUG=true``) and with metrics on, and everything the
functions print is captured, as CloudWatch Logs would capture it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack.process import ROOT, stack_process
from tests.integration.conftest import Api, Stack, unique_phone

TABLE = "studio-local-RecordsTable"
FUNCTION_ENV = {
    "POWERTOOLS_LOG_LEVEL": "DEBUG",
    "POWERTOOLS_LOGGER_LOG_EVENT": "true",
    "POWERTOOLS_EVENT_HANDLER_DEBUG": "true",
    "POWERTOOLS_METRICS_DISABLED": "false",
}


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    key_dir = tmp_path_factory.mktemp("ops-stack")
    with stack_process(key_dir, {"DEVSTACK_FUNCTION_ENV": json.dumps(FUNCTION_ENV)}) as running:
        yield Stack(running.url, running.emulator, key_dir, running.process)


def _log_text(stack: Stack) -> str:
    return (stack.key_dir / "stack.log").read_text(errors="replace")


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _put_profile(stack: Stack, client_id: str, owner_sub: str, assignees: list[str], email: str, **extra: Any) -> None:
    """A client profile written straight to the table, as a job or an import would write it."""
    item = {
        "pk": {"S": f"CLIENT#{client_id}"},
        "sk": {"S": "PROFILE"},
        "kind": {"S": "client"},
        "client_id": {"S": client_id},
        "owner": {"S": f"PRO#{owner_sub}"},
        "name": {"S": "Ops Test"},
        "name_folded": {"S": "ops test"},
        "email": {"S": email},
        "marketing_consent": {"BOOL": False},
        "version": {"N": "1"},
        "created_at": {"S": "2026-11-24T00:00:00.000Z"},
        "updated_at": {"S": "2026-11-24T00:00:00.000Z"},
        "created_by": {"S": owner_sub},
        "assignees": {"SS": assignees},
        **extra,
    }
    stack.client("dynamodb").put_item(TableName=TABLE, Item=item)


def _new_client_id() -> str:
    from salon.ids import new_id

    return new_id()


def _eventually(check: Any, timeout_s: float = 10.0) -> bool:
    """Views follow the stream: wait for them a little past the drain."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _view_ids(api: Api) -> list[str]:
    resp = api.get("/me/clients")
    assert resp.status_code == 200, resp.text
    return [c["client_id"] for c in resp.json()["items"]]


# --------------------------------------------------------------------------------------------- logs
def test_logs_never_hold_contact_details_note_bodies_or_tokens(ops: Stack) -> None:
    ana = Api(ops, f"ana-{uuid.uuid4().hex[:8]}")
    token = ana.session.headers["Authorization"].split(" ", 1)[1]
    phone = unique_phone()  # "+1 415 2xx xxxx"
    digits = "".join(ch for ch in phone if ch.isdigit())
    email = f"ana.{uuid.uuid4().hex[:10]}@example.com"
    note = f"colour secret {uuid.uuid4().hex}"
    rejected = f"rejected.{uuid.uuid4().hex[:10]}@example"

    created = ana.post("/clients", json={"name": "Ana López", "phone": phone, "email": email})
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    assert ana.get(f"/clients/{client_id}").json()["email"] == email
    assert client_id in _view_ids(ana)
    duplicate = ana.post("/clients", json={"name": "Ana again", "phone": phone})
    assert duplicate.status_code == 409
    invalid = ana.post("/clients", json={"name": "Bad", "email": rejected, "phone": "not a phone"})
    assert invalid.status_code == 422
    paths = requests.get(f"{ops.url}/openapi.json", timeout=10).json()["paths"]
    if "/clients/{client_id}/notes" in paths:
        added = ana.post(f"/clients/{client_id}/notes", json={"body": note}, headers={"Idempotency-Key": "note-0001"})
        assert added.status_code == 201, added.text
        replay = ana.post(f"/clients/{client_id}/notes", json={"body": note}, headers={"Idempotency-Key": "note-0001"})
        assert replay.status_code == 201
        assert note in ana.get(f"/clients/{client_id}/notes").text
    ops.drain()

    text = _log_text(ops)
    assert '"level":"DEBUG"' in text, "the functions did not log at DEBUG: the check below would prove little"
    secrets = {
        "phone (E.164)": "+" + digits,
        "phone (national)": digits[1:],
        "phone (as typed)": phone,
        "email": email,
        "email's local part": email.split("@", maxsplit=1)[0],
        "rejected email": rejected,
        "note body": note,
        "token": token,
        "token signature": token.rsplit(".", 1)[1],
    }
    leaked = [what for what, value in secrets.items() if value in text]
    assert not leaked, f"logs hold the {', '.join(leaked)}"


def test_each_request_logs_one_json_line_with_request_correlation_and_caller(ops: Stack) -> None:
    ben = Api(ops, f"ben-{uuid.uuid4().hex[:8]}")
    # The local stack runs every function in one process, where Powertools' log keys are shared; with the
    # stream consumer idle, nothing else writes them while these requests run (on Lambda, one per process).
    ops.drain()
    resp = ben.post("/clients", json={"name": "Ben", "email": f"ben.{uuid.uuid4().hex[:8]}@example.com"})
    assert resp.status_code == 201
    request_id = resp.headers["apigw-requestid"]
    ops.drain()
    missing = ben.get(f"/clients/{_new_client_id()}")
    assert missing.status_code == 404

    lines = _json_lines(_log_text(ops))
    (line,) = [entry for entry in lines if entry.get("correlation_id") == request_id and entry["message"] == "request"]
    assert line["level"] == "INFO"
    assert line["service"] == "studio-records"
    assert line["pro_id"] == ben.sub
    assert line["route"] == "POST /clients"
    assert line["status"] == 201
    assert line["function_name"] == "ClientsFunction"
    assert line["function_request_id"]
    assert isinstance(line["ms"], float)
    # A request answered before routing (404 for a client the caller may not see) is logged the same way.
    (denied,) = [
        e
        for e in lines
        if e.get("correlation_id") == missing.headers["apigw-requestid"] and e.get("message") == "request"
    ]
    assert denied["status"] == 404
    assert denied["pro_id"] == ben.sub
    assert denied["route"] == "GET /clients/{client_id}"


# ------------------------------------------------------------------------------------------ metrics
def _emf(text: str) -> list[dict[str, Any]]:
    return [e for e in _json_lines(text) if "_aws" in e]


def test_business_metrics_are_published_as_emf(ops: Stack) -> None:
    cleo = Api(ops, f"cleo-{uuid.uuid4().hex[:8]}")
    dan = Api(ops, f"dan-{uuid.uuid4().hex[:8]}")
    created_resp = cleo.post("/clients", json={"name": "Cleo", "email": f"c.{uuid.uuid4().hex[:8]}@example.com"})
    assert created_resp.status_code == 201
    note = cleo.post(f"/clients/{created_resp.json()['client_id']}/notes", json={"body": "short note"})
    assert note.status_code == 201, note.text
    # A profile assigned to two pros, written straight to the table: the consumer writes both views.
    client_id = _new_client_id()
    _put_profile(ops, client_id, cleo.sub, [cleo.sub, dan.sub], f"x.{uuid.uuid4().hex[:8]}@example.com")
    ops.drain()
    assert _eventually(lambda: client_id in _view_ids(dan))

    docs = _emf(_log_text(ops))
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "StudioRecords"
        assert ["service"] in directive["Dimensions"]
        assert doc["service"] == "studio-records"
    created = [d for d in docs if "ClientsCreated" in d]
    assert created, "no ClientsCreated metric"
    assert all(d["ClientsCreated"] in (1.0, [1.0]) for d in created), "one creation per request"
    assert [d for d in docs if "NotesAdded" in d], "no NotesAdded metric"
    fanned = [
        v
        for d in docs
        if "FanoutWrites" in d
        for v in (d["FanoutWrites"] if isinstance(d["FanoutWrites"], list) else [d["FanoutWrites"]])
    ]
    # Two views written (and the tombstones they replace deleted) for the profile assigned to two pros.
    assert any(v >= 2.0 for v in fanned), fanned


# ------------------------------------------------------------------------------------------ redrive
def _failure_queue(stack: Stack) -> str:
    return str(stack.client("sqs").get_queue_url(QueueName="studio-local-StreamFailureQueue")["QueueUrl"])


def _redrive(stack: Stack, *args: str) -> tuple[int, dict[str, Any]]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": f"{ROOT / 'layers/domain'}{os.pathsep}{ROOT}",
    }
    env.pop("TABLE_NAME", None)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "tools.redrive"),
            *("--queue-url", _failure_queue(stack), "--table", TABLE, "--endpoint-url", stack.emulator),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.startswith("{"), result.stderr
    return result.returncode, json.loads(result.stdout)


def _delete_view(stack: Stack, pro_id: str, client_id: str) -> None:
    stack.client("dynamodb").delete_item(
        TableName=TABLE, Key={"pk": {"S": f"PRO#{pro_id}"}, "sk": {"S": f"CLIENT#{client_id}"}}
    )


def _stream_record_of(stack: Stack, client_id: str) -> tuple[str, str, str]:
    """(stream arn, shard id, sequence number) of the newest stream record of the client's profile."""
    streams = stack.client("dynamodbstreams")
    arn = stack.client("dynamodb").describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    found = None
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in page["Records"]:
                if record["dynamodb"]["Keys"]["pk"]["S"] == f"CLIENT#{client_id}":
                    found = (arn, shard["ShardId"], record["dynamodb"]["SequenceNumber"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    assert found, "no stream record for the client"
    return found


def test_redrive_refans_parked_records_and_lambda_batch_failures(ops: Stack) -> None:
    eve = Api(ops, f"eve-{uuid.uuid4().hex[:8]}")
    sqs = ops.client("sqs")
    queue = _failure_queue(ops)

    # 1. A record the consumer cannot read is parked with its keys and image.
    parked_id = _new_client_id()
    _put_profile(ops, parked_id, eve.sub, [eve.sub], f"p.{uuid.uuid4().hex[:8]}@example.com", kind={"S": "bogus"})
    ops.drain()
    assert parked_id not in _view_ids(eve)
    # ... the item is then repaired in place, without a stream record the consumer would act on (as an
    # operator's fix of a field would be, before redriving).
    _put_profile(ops, parked_id, eve.sub, [eve.sub], f"p.{uuid.uuid4().hex[:8]}@example.com")
    ops.drain()
    _delete_view(ops, eve.sub, parked_id)
    assert parked_id not in _view_ids(eve)

    # 2. Lambda's on-failure destination: only the shard and the sequence range of a batch.
    batch_id = _new_client_id()
    _put_profile(ops, batch_id, eve.sub, [eve.sub], f"b.{uuid.uuid4().hex[:8]}@example.com")
    ops.drain()
    _delete_view(ops, eve.sub, batch_id)
    arn, shard, seq = _stream_record_of(ops, batch_id)
    info = {"shardId": shard, "startSequenceNumber": seq, "endSequenceNumber": seq, "batchSize": 1, "streamArn": arn}
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=json.dumps({"requestContext": {"condition": "RetryAttemptsExhausted"}, "DDBStreamBatchInfo": info}),
    )
    # 3. Something the tool cannot act on stays for a person.
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"unexpected": True}))

    code, dry = _redrive(ops, "--dry-run")
    assert code == 1
    assert {parked_id, batch_id} <= set(dry["clients"])
    assert parked_id not in _view_ids(eve), "a dry run changes nothing"

    code, report = _redrive(ops)
    assert code == 1, report
    assert {parked_id, batch_id} <= set(report["clients"])
    assert len(report["left"]) == 1
    assert "not a parked record" in report["left"][0]["why"]
    views = _view_ids(eve)
    assert parked_id in views
    assert batch_id in views
    assert eve.get(f"/clients/{parked_id}").status_code == 200

    # Handled messages are gone; the one left is back on the queue at once.
    bodies = [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    ]
    assert bodies == [{"unexpected": True}]
