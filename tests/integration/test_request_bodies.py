"""Request bodies and headers over HTTP, as HTTP API delivers them: a body arrives base64-encoded unless its
Content-Type is text (so JSON sent without one is encoded), and every rule on it (the 64 KiB limit, the
idempotency hash, the parser) reads the decoded bytes; media types compare case-insensitively; bytes that
are not UTF-8 and malformed Content-Types are 4xx in the error shape; If-Match takes RFC 9110 lists;
validation errors list at most 20 problems; group claims are read exactly as the authorizer passes them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.conftest import Api, Stack, unique_phone

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024


def _error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, f"{resp.status_code} {resp.text[:300]}"
    error: dict[str, Any] = resp.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if code is not None:
        assert error["code"] == code, error
    return error


def _padded(doc: dict[str, Any], size: int) -> bytes:
    """``doc`` as JSON padded with trailing whitespace (still valid JSON) to exactly ``size`` bytes."""
    raw = json.dumps(doc).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


@pytest.fixture
def ana(stack: Stack) -> Api:
    return Api(stack, f"bodies-{uuid.uuid4().hex[:10]}")


def test_a_body_of_exactly_the_limit_is_accepted_whatever_its_transport_encoding(ana: Api) -> None:
    """Sent without a Content-Type, HTTP API base64-encodes the body; 64 KiB of JSON is 87,384 characters of
    base64, which the old check (encoded length > 4/3 of the limit) refused as too large."""
    for headers in ({"Content-Type": "application/json"}, {}):
        body = _padded({"name": "At The Limit", "phone": unique_phone()}, LIMIT)
        created = ana.post("/clients", data=body, headers=headers)
        assert created.status_code == 201, (headers, created.status_code, created.text[:200])
        _error(ana.post("/clients", data=body + b" ", headers=headers), 413, "payload_too_large")


def test_the_limit_counts_bytes_not_characters(ana: Api) -> None:
    """40,000 'é' are 40,000 characters but 80,000 bytes: past the 64 KiB limit."""
    body = json.dumps({"name": "é" * 40_000}, ensure_ascii=False).encode()
    error = _error(ana.post("/clients", data=body, headers={"Content-Type": "application/json"}), 413)
    assert error["details"] == {"max_bytes": LIMIT}


def test_the_idempotency_hash_reads_the_decoded_body(ana: Api) -> None:
    """The same bytes under the same key are the same request, sent as text or (no Content-Type) base64."""
    key = f"same-{uuid.uuid4().hex}"
    body = json.dumps({"name": "Once Only", "phone": unique_phone()}).encode()
    first = ana.post("/clients", data=body, headers={"Content-Type": "application/json", "Idempotency-Key": key})
    assert first.status_code == 201, first.text
    again = ana.post("/clients", data=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201, again.text
    assert again.json()["client_id"] == first.json()["client_id"]
    other = json.dumps({"name": "Someone Else", "phone": unique_phone()}).encode()
    _error(ana.post("/clients", data=other, headers={"Idempotency-Key": key}), 422, "idempotency_key_reused")


@pytest.mark.parametrize(
    "content_type", ["Application/JSON; Charset=UTF-8", "APPLICATION/JSON", 'application/json;charset="utf-8"']
)
def test_media_types_match_case_insensitively(ana: Api, content_type: str) -> None:
    body = json.dumps({"name": "Case Blind", "phone": unique_phone()}).encode()
    created = ana.post("/clients", data=body, headers={"Content-Type": content_type})
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("content_type", ["application/json", None, "text/plain"])
def test_a_body_that_is_not_utf8_is_a_4xx(ana: Api, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = ana.post("/clients", data=b'{"name": "Ana \xff\xfe", "phone": "+14155550100"}', headers=headers)
    if content_type == "text/plain":
        _error(resp, 415, "unsupported_media_type")
    else:
        error = _error(resp, 422, "validation_error")
        assert error["details"][0]["loc"] == ["body"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset",  # a parameter without a value
        "application/",
        "/json",
        ";;",
        "application/json, text/plain",  # two Content-Type headers, joined by the gateway
        "application/json; charset=latin-1",
        "multipart/form-data",  # no boundary
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        'application/json; charset="utf-8',  # an unclosed quote
    ],
)
def test_a_malformed_or_foreign_content_type_is_415(ana: Api, content_type: str) -> None:
    body = json.dumps({"name": "Typed Badly", "phone": unique_phone()}).encode()
    _error(ana.post("/clients", data=body, headers={"Content-Type": content_type}), 415, "unsupported_media_type")


def test_if_match_takes_rfc_9110_lists(ana: Api) -> None:
    """A list matches when any tag names the current version; a weak tag names the version too (decision
    D35); ``*`` is not a version (428); a list that names none is 412 with the current version."""
    created = ana.post("/clients", json={"name": "Versioned", "phone": unique_phone()})
    assert created.status_code == 201, created.text
    path = f"/clients/{created.json()['client_id']}"
    assert created.json()["version"] == 1
    edited = ana.patch(path, json={"name": "V2"}, headers={"If-Match": '"7", "1"'})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2
    assert edited.headers["ETag"] == '"2"'
    edited = ana.patch(path, json={"name": "V3"}, headers={"If-Match": 'W/"2"'})
    assert edited.status_code == 200, edited.text
    edited = ana.patch(path, json={"name": "V4"}, headers={"If-Match": 'W/"1",  "3" ,'})
    assert edited.status_code == 200, edited.text
    _error(ana.patch(path, json={"name": "Blind"}, headers={"If-Match": "*"}), 428, "precondition_required")
    stale = _error(ana.patch(path, json={"name": "Stale"}, headers={"If-Match": '"1", "2", W/"3"'}), 412)
    assert stale["details"] == {"current_version": 4}
    _error(ana.patch(path, json={"name": "Bad"}, headers={"If-Match": '"4", *'}), 412)
    assert ana.get(path).json()["name"] == "V4"


def test_validation_errors_list_at_most_20_problems(ana: Api) -> None:
    body = {"name": "Many Problems", "phone": unique_phone(), **{f"unknown_{i}": i for i in range(57)}}
    error = _error(ana.post("/clients", json=body), 422, "validation_error")
    assert len(error["details"]) == 20
    assert "37 more" in error["message"]
    assert all(set(d) == {"loc", "msg", "type"} for d in error["details"])


def test_a_group_named_ops_comma_operators_is_not_operators(stack: Stack, ana: Api) -> None:
    """Cognito group names may hold commas (CreateGroup: [\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+) and HTTP API passes
    ["ops,operators"] as "[ops,operators]": that is one group, not `operators`."""
    studio = ana.post("/studios", json={"name": "Plans", "country": "US", "time_zone": "UTC"})
    assert studio.status_code == 201, studio.text
    path = f"/studios/{studio.json()['studio_id']}/plan"
    for groups in (["ops,operators"], ["ops,operators", "admins"], ["[operators]"]):
        impostor = Api(stack, f"impostor-{uuid.uuid4().hex[:8]}", groups)
        _error(impostor.put(path, json={"plan": "premium"}), 403, "operators_only")
    stack.drain()
    assert ana.get("/me").json()["plan"] == "basic"
    operator = Api(stack, f"ops-{uuid.uuid4().hex[:8]}", ["admins", "operators"])
    assert operator.put(path, json={"plan": "premium"}).status_code == 200
    stack.drain()
    assert ana.get("/me").json()["plan"] == "premium"
