"""The sample events in events/ (the ones `sam local invoke -e` takes) drive the real handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devstack.functions import LambdaContext, load_handler
from devstack.template import Template

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _function_for(template: Template, event: dict[str, Any]) -> str:
    if "routeKey" in event:
        return next(r.function for r in template.http_routes() if r.route_key == event["routeKey"])
    if event["Records"][0]["eventSource"] == "aws:dynamodb":
        return "StreamFunction"
    raise AssertionError("unknown event source")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("http-get-me.json", 200),
        ("http-create-client.json", 201),
        ("http-list-my-clients.json", 200),
        ("http-get-client.json", 404),  # no such client in a fresh table, and no leak of why
    ],
)
def test_http_samples(aws: Template, name: str, status: int) -> None:
    event = json.loads((EVENTS / name).read_text())
    function = _function_for(aws, event)
    handler = load_handler(aws.functions()[function])
    result = handler(event, LambdaContext(function))
    assert result["statusCode"] == status, result["body"]
    body = json.loads(result["body"])
    if status >= 400:
        assert set(body["error"]) == {"code", "message", "details"}


def test_the_stream_sample_fans_out_to_the_new_assignee(aws: Template) -> None:
    import boto3

    event = json.loads((EVENTS / "stream-profile-modify.json").read_text())
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    # The client's studio, whose members the views go to (a pro without a role there gets none, D31).
    studio_id = event["Records"][0]["dynamodb"]["NewImage"]["owner"]["S"].split("#", 1)[1]
    roles = {pro: {"S": "provider"} for pro in ("alice", "bob", "carol")}
    ddb.put_item(
        TableName="studio-local-RecordsTable",
        Item={
            "pk": {"S": f"STUDIO#{studio_id}"},
            "sk": {"S": "STUDIO"},
            "kind": {"S": "studio"},
            "member_roles": {"M": roles},
        },
    )
    handler = load_handler(aws.functions()["StreamFunction"])
    assert handler(event, LambdaContext("StreamFunction")) == {"batchItemFailures": []}
    cid = event["Records"][0]["dynamodb"]["Keys"]["pk"]["S"].split("#", 1)[1]
    carol = ddb.get_item(
        TableName="studio-local-RecordsTable",
        Key={"pk": {"S": "PRO#carol"}, "sk": {"S": f"CLIENT#{cid}"}},
        ConsistentRead=True,  # the test's own read of what the handler just wrote
    )
    assert carol["Item"]["kind"]["S"] == "view"
    bob = ddb.get_item(
        TableName="studio-local-RecordsTable",
        Key={"pk": {"S": "PRO#bob"}, "sk": {"S": f"CLIENT#{cid}"}},
        ConsistentRead=True,  # the test's own read of what the handler just wrote
    )
    assert bob["Item"]["kind"]["S"] == "gone"
