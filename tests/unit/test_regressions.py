"""Bugs found by the proof harness (issue 8), each pinned by the smallest test that showed it."""

from __future__ import annotations

import base64
import json

from salon.api import MAX_JSON_DEPTH, precheck


def _event(body: str, *, b64: bool = False) -> dict[str, object]:
    return {
        "routeKey": "POST /clients",
        "headers": {"content-type": "application/json"},
        "body": base64.b64encode(body.encode()).decode() if b64 else body,
        "isBase64Encoded": b64,
        "requestContext": {"http": {"method": "POST"}, "authorizer": {"jwt": {"claims": {"sub": "ana"}}}},
    }


def test_regression_deeply_nested_json_is_a_422_not_a_500() -> None:
    """Found by tests/integration/test_hostile_input.py: a 30 KB body of 5,000 nested objects (under the 64 KiB
    limit) made the JSON parser raise RecursionError, answered 500 on every route with a body."""
    for deep in ('{"a":' * 5000 + "1" + "}" * 5000, "[" * 20_000 + "]" * 20_000):
        for b64 in (False, True):
            early = precheck(_event(deep, b64=b64))
            assert early is not None
            assert early["statusCode"] == 422
            assert json.loads(early["body"])["error"]["details"][0]["loc"] == ["body"]


def test_ordinary_bodies_and_brackets_inside_strings_pass_the_depth_check() -> None:
    shallow = json.dumps({"items": [{"sku": "A", "unit_price": {"amount": 1, "currency": "USD"}}]})
    assert precheck(_event(shallow)) is None
    text = json.dumps({"name": "[{" * 500, "body": '\\"[[[[' * 100})
    assert precheck(_event(text)) is None
    just_deep_enough = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert precheck(_event(just_deep_enough)) is None
    assert precheck(_event("[" + just_deep_enough + "]")) is not None


def test_regression_a_body_that_is_not_json_is_a_415_not_a_500() -> None:
    """Found by tests/integration/test_hostile_input.py: a body sent as text/plain or octet-stream made the
    resolver raise RequestUnsupportedContentType, answered 500 on every route with a body."""
    from devstack.functions import LambdaContext, load_handler
    from devstack.template import Template

    handler = load_handler(Template().functions()["ClientsFunction"])
    event = {
        "version": "2.0",
        "routeKey": "POST /clients",
        "rawPath": "/clients",
        "rawQueryString": "",
        "headers": {"content-type": "text/plain"},
        "requestContext": {
            "http": {"method": "POST", "path": "/clients"},
            "authorizer": {"jwt": {"claims": {"sub": "ana"}}},
            "requestId": "r",
            "stage": "$default",
        },
        "body": "name=Ana&phone=%2B14155552671",
        "isBase64Encoded": False,
    }
    resp = handler(event, LambdaContext(function_name="ClientsFunction"))
    assert resp["statusCode"] == 415
    assert json.loads(resp["body"])["error"]["code"] == "unsupported_media_type"


def test_regression_control_characters_in_a_name_are_a_422() -> None:
    """Found by tests/integration/test_hostile_input.py: a client named "Ana\\x00" was stored (201). Names and
    tags now refuse control characters; any script and emoji stay welcome."""
    import pytest
    from pydantic import ValidationError

    from salon.schemas.clients import ClientCreate, ClientUpdate

    for bad in ("Ana\x00", "Ana\nBcc: x", "\x1b[31mAna", "Ana\x7f"):
        with pytest.raises(ValidationError):
            ClientCreate(name=bad, phone="+14155552671")
        with pytest.raises(ValidationError):
            ClientUpdate(name=bad)
        with pytest.raises(ValidationError):
            ClientCreate(name="Ana", phone="+14155552671", tags=[bad])
    for good in ("Zoë Brun", "李娜", "Ана-Мария", "Ana 💅🏽", 'O\'Neil "Jr"'):
        assert ClientCreate(name=good, phone="+14155552671").name == good
