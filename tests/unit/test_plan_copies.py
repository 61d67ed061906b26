"""A studio's plan decision reaches every member's profile, and a late copy of an older decision changes
nothing: SQS standard queues deliver at least once and in no guaranteed order
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from devstack.functions import LambdaContext, load_handler
from devstack.gateway import http_event
from devstack.template import LOCAL_REGION, LOCAL_STACK_NAME, Template
from tests.unit.test_import_in_progress import _call


def _operator_sets_plan(template: Template, studio_id: str, plan: str) -> None:
    path = f"/studios/{studio_id}/plan"
    for route in template.http_routes():
        match = route.regex.match(path)
        if route.method == "PUT" and match:
            handler = load_handler(template.functions()[route.function])
            claims = {"sub": "ops", "cognito:groups": "[operators]"}
            params = dict(zip(route.params, match.groups(), strict=True))
            body = json.dumps({"plan": plan}).encode()
            event = http_event(route, "PUT", path, "", {"content-type": "application/json"}, body, claims, params)
            resp = handler(event, LambdaContext(route.function))
            assert resp["statusCode"] == 200, resp
            return
    raise AssertionError(path)


def _ok(template: Template, method: str, path: str, sub: str, body: Any = None) -> Any:
    resp = _call(template, method, path, sub, body)
    assert resp["statusCode"] < 300, resp
    return json.loads(resp["body"]) if resp.get("body") else None


def _take(url: str) -> list[str]:
    sqs = boto3.client("sqs", region_name=LOCAL_REGION)
    bodies = []
    for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies.append(m["Body"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def _plan_of(pro_id: str) -> str | None:
    from salon.data.models import TableItem

    return getattr(TableItem.get(f"PRO#{pro_id}", "PROFILE", consistent_read=True), "studio_plan", None)


def test_an_older_plan_message_delivered_after_a_newer_one_changes_nothing(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.services.jobs import run_job_message
    from salon.settings import get_settings

    url = boto3.client("sqs", region_name=LOCAL_REGION).get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-JobsQueue")
    monkeypatch.setenv("JOBS_QUEUE_URL", url["QueueUrl"])
    get_settings.cache_clear()
    studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})
    _take(url["QueueUrl"])

    _operator_sets_plan(aws, studio_id, "premium")
    (to_premium,) = _take(url["QueueUrl"])
    _operator_sets_plan(aws, studio_id, "basic")  # the operator changes their mind: basic again is the decision
    (to_basic,) = _take(url["QueueUrl"])

    run_job_message(to_basic)
    assert _plan_of("bob") == "basic"
    assert _plan_of("olga") == "basic"
    run_job_message(to_premium)  # the first decision's message, late (or delivered again)
    assert _plan_of("bob") == "basic"
    assert _plan_of("olga") == "basic"
    get_settings.cache_clear()
