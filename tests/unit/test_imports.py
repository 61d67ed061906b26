"""The import on joining, chunk by chunk as the jobs worker runs it (moto in-process)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from devstack.template import LOCAL_REGION, LOCAL_STACK_NAME, Template
from tests.unit.test_import_in_progress import _call


def _ok(template: Template, method: str, path: str, sub: str, body: Any = None) -> Any:
    resp = _call(template, method, path, sub, body)
    assert resp["statusCode"] < 300, resp
    return json.loads(resp["body"]) if resp.get("body") else None


def _run_import(url: str, studio_id: str, pro_id: str) -> int:
    """The first message as the stream consumer enqueues it, then every chunk the worker enqueues."""
    from salon.services.jobs import run_job_message

    sqs = boto3.client("sqs", region_name=LOCAL_REGION)
    messages, chunks = [json.dumps({"kind": "import", "studio_id": studio_id, "pro_id": pro_id})], 0
    while messages:
        for body in messages:
            run_job_message(body)
            chunks += 1
        messages = []
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            if json.loads(m["Body"]).get("kind") == "import":
                messages.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return chunks


def test_two_of_the_pros_clients_merge_into_the_same_studio_client_and_the_rest_move_in_packed_chunks(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.services import imports
    from salon.settings import get_settings

    monkeypatch.setattr(imports, "CHUNK", 100)  # 500 in production: here the import spans chunks

    url = boto3.client("sqs", region_name=LOCAL_REGION).get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-JobsQueue")
    monkeypatch.setenv("JOBS_QUEUE_URL", url["QueueUrl"])
    get_settings.cache_clear()
    studio = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})
    studio_id = studio["studio_id"]
    ana = _ok(aws, "POST", "/clients", "olga", {"name": "Ana", "phone": "+1 415 555 2671", "email": "ana@example.com"})
    # Bob knows Ana twice: once by her phone, once (another number) by her email. Both are her.
    by_phone = _ok(aws, "POST", "/clients", "bob", {"name": "Ana P", "phone": "+1 415 555 2671"})
    by_email = _ok(
        aws, "POST", "/clients", "bob", {"name": "Ana E", "phone": "+1 415 555 0000", "email": "ana@example.com"}
    )
    own = [
        _ok(aws, "POST", "/clients", "bob", {"name": f"Own {i:03d}", "phone": f"+1 212 555 {i:04d}"})
        for i in range(110)
    ]
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})

    chunks = _run_import(url["QueueUrl"], studio_id, "bob")

    assert chunks == 3  # 112 clients, 100 a chunk, then the chunk that finds none left
    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["import"] == {"status": "done", "imported": 110, "merged": 2, "conflicts": 0}
    # Both of Bob's records of Ana now lead to the studio's Ana, who has a version per merge.
    for old in (by_phone, by_email):
        assert _ok(aws, "GET", f"/clients/{old['client_id']}", "bob")["client_id"] == ana["client_id"]
    merged = _ok(aws, "GET", f"/clients/{ana['client_id']}", "olga")
    assert merged["version"] == 3
    moved = _ok(aws, "GET", f"/clients/{own[-1]['client_id']}", "olga")
    assert moved["book"] == "studio"
    get_settings.cache_clear()
