"""Hostile input over HTTP on the local stack: every path parameter of every published route with ids made
of ``#``, ``/``, unicode and control characters; huge and negative pages; forged cursors; oversized,
deeply nested, malformed and mistyped bodies; emoji and control characters in names. Each answer is a
4xx (never a 5xx) with the error shape, and the table holds exactly the items it held before.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.integration.conftest import Api, Stack, unique_phone

pytestmark = pytest.mark.integration

TABLE = "studio-local-RecordsTable"
HOSTILE_IDS = [
    "CLIENT#01JD0000000000000000000001",
    "01JD000000000000000000000#",
    "..%2F..%2Fetc",
    "a/b",
    "01JD00000000000000000000Ü1",
    "💅" * 13,
    "\x00" * 26,
    "01JD0000000000000000000001\n",
    "x" * 5000,
    "' OR '1'='1",
    "PRO#admin",
    " ",
]
CURSORS = [
    "x" * 600,
    "%%%",
    # {"id":"CLIENT#01JD...","sk":"PROFILE"}: a well-formed cursor naming another client's key
    "eyJpZCI6IkNMSUVOVCMwMUpEMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDEiLCJzayI6IlBST0ZJTEUifQ",
    "e30",  # {}
    "bnVsbA",  # null
]
LIMITS = ["0", "-1", "101", "100000000000000000000", "abc", "1e3", "", "\x00"]


def _count(stack: Stack) -> int:
    ddb = stack.client("dynamodb")
    total, start = 0, None
    while True:
        kwargs: dict[str, Any] = {"TableName": TABLE, "Select": "COUNT", "ConsistentRead": True}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.scan(**kwargs)
        total += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


@pytest.fixture(scope="module")
def target(stack: Stack) -> tuple[Api, dict[str, str]]:
    api = Api(stack, f"hostile-{uuid.uuid4().hex[:10]}")
    studio = api.post("/studios", json={"name": "Target", "country": "US", "time_zone": "UTC"})
    assert studio.status_code == 201, studio.text
    client = api.post("/clients", json={"name": "Target Client", "phone": unique_phone()})
    assert client.status_code == 201, client.text
    cid = client.json()["client_id"]
    note = api.post(f"/clients/{cid}/notes", json={"body": "n"})
    assert note.status_code == 201, note.text
    stack.drain()
    return api, {
        "studio_id": studio.json()["studio_id"],
        "client_id": cid,
        "note_id": note.json()["note_id"],
        "pro_id": api.sub,
    }


def _operations(stack: Stack) -> list[tuple[str, str, set[str]]]:
    """(method, path template, query parameter names; "body" when it takes one) of every published operation."""
    doc = requests.get(f"{stack.url}/openapi.json", timeout=60).json()
    return sorted(
        (
            m.upper(),
            p,
            {q["name"] for q in op.get("parameters", []) if q["in"] == "query"}
            | ({"body"} if "requestBody" in op else set()),
        )
        for p, ops in doc["paths"].items()
        for m, op in ops.items()
        if m in {"get", "post", "put", "patch", "delete"}
    )


def _path(template: str, ids: dict[str, str], hostile: str | None = None, param: str | None = None) -> str:
    values = {
        "appointment_id": ids["note_id"],
        "formula_id": ids["note_id"],
        "upload_id": ids["note_id"],
        "package_id": ids["note_id"],
        "gift_card_id": ids["note_id"],
        "action": "check-in",
        **ids,
    }
    for name in [n.strip("{}") for n in template.split("/") if n.startswith("{")]:
        value = hostile if name == param else values[name]
        template = template.replace("{" + name + "}", quote(str(value), safe="") if name == param else str(value))
    return template


class Sweep:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.sent = 0
        self.bad: list[str] = []

    def send(self, method: str, path: str, *, lenient: bool = False, **kwargs: Any) -> requests.Response:
        """``lenient``: a 2xx is fine too (a forged cursor may fall back to the first page of one's own data)."""
        resp = self.api.request(method, path, **kwargs)
        self.sent += 1
        label = f"{method} {path[:120]!r} {str(kwargs.get('params') or '')[:60]}"
        if lenient and resp.status_code < 300:
            return resp
        if not 400 <= resp.status_code < 500:
            self.bad.append(f"{label}: {resp.status_code} {resp.text[:200]}")
        elif resp.headers.get("content-type", "").startswith("application/json"):
            body = resp.json()
            if "error" not in body and "message" not in body:
                self.bad.append(f"{label}: {resp.status_code} without an error body: {resp.text[:200]}")
        return resp


def test_hostile_input_is_a_4xx_and_writes_nothing(stack: Stack, target: tuple[Api, dict[str, str]]) -> None:
    api, ids = target
    sweep = Sweep(api)
    stack.drain()
    before = _count(stack)
    operations = _operations(stack)
    bodies = {"POST", "PUT", "PATCH"}

    # 1. every path parameter of every route, hostile, the others real
    for method, template, _ in operations:
        params = [n.strip("{}") for n in template.split("/") if n.startswith("{")]
        for param in params:
            if param == "action":
                continue
            for hostile in HOSTILE_IDS:
                path = _path(template, ids, hostile, param)
                sweep.send(method, path, json={"name": "x"} if method in bodies else None)
        # the raw '/' and '#' forms (not encoded): another route or a fragment, never a 5xx
        if params:
            sweep.send(method, template.replace("{" + params[0] + "}", "a/../b"), json={} if method in bodies else None)

    # 2. pages and cursors on every list
    for method, template, query in operations:
        path = _path(template, ids)
        if "limit" in query:
            for limit in LIMITS:
                sweep.send(method, path, params={"limit": limit})
        for name in query & {"cursor", "since"}:
            for cursor in CURSORS:
                sweep.send(method, path, params={name: cursor}, lenient=True)
    sweep.send("GET", "/me/clients", params={"q": "x" * 10_000})
    sweep.send("GET", "/me/clients", params={"q": ""})

    # 3. bodies on every write
    deep_json = '{"a":' * 5000 + '"x"' + "}" * 5000  # ~30 KB, deeper than any parser's recursion limit
    deep_list = "[" * 20_000 + "]" * 20_000
    for method, template, query in operations:
        if "body" not in query or template in ("/studios/join",):
            continue
        path = _path(template, ids)
        for raw, content_type in (
            ("x" * (65 * 1024), "application/json"),
            (json.dumps({"name": "a" * (2 * 1024 * 1024)}), "application/json"),
            (deep_json, "application/json"),
            (deep_list, "application/json"),
            ("{not json", "application/json"),
            ("[]", "application/json"),
            ("null", "application/json"),
            ('"\\ud800"', "application/json"),
            ("\xff\xfe\x00garbage", "application/octet-stream"),
            ("name=x", "application/x-www-form-urlencoded"),
        ):
            sweep.send(method, path, data=raw.encode("utf-8", "surrogatepass"), headers={"Content-Type": content_type})
        sweep.send(method, path, json={"name": "x", "extra": {"owner": "STUDIO#x", "pk": "CLIENT#y"}})
        sweep.send(method, path, json={"name": "x"}, headers={"Idempotency-Key": "k#" + "\u0000" * 4})

    # 4. names and text fields that break limits or carry control characters
    for body in (
        {"name": "💅" * 10_000, "phone": unique_phone()},
        {"name": "Ana\u0000", "phone": unique_phone()},
        {"name": "", "phone": unique_phone()},
        {"name": "   ", "phone": unique_phone()},
        {"name": "Ana", "phone": "+1 415 555 0000 ext. 💅"},
        {"name": "Ana", "email": "not-an-email"},
        {"name": "Ana", "phone": "#" * 30},
        {"name": "Ana", "email": "a@b.c" + "\n" + "Bcc: x@y.z"},
        {"name": "Ana", "tags": ["t"] * 1000, "phone": unique_phone()},
        {"name": "Ana", "birthday": "9999-99-99", "phone": unique_phone()},
        {"name": ["Ana"], "phone": unique_phone()},
        {"name": 7, "phone": unique_phone()},
    ):
        sweep.send("POST", "/clients", json=body)
    sweep.send("PATCH", f"/clients/{ids['client_id']}", json={"name": "x"}, headers={"If-Match": '"1" OR 1=1'})
    sweep.send("PATCH", f"/clients/{ids['client_id']}", json={"name": "x"}, headers={"If-Match": "9" * 400})
    sweep.send("POST", f"/clients/{ids['client_id']}/notes", json={"body": "n" * 10_001})
    sweep.send("POST", f"/clients/{ids['client_id']}/notes", json={"body": " \t\n "})

    stack.drain()
    after = _count(stack)
    print(f"hostile: {sweep.sent} requests")
    assert not sweep.bad, "\n".join(sweep.bad[:40])
    assert after == before, f"the table went from {before} to {after} items"
    assert sweep.sent > 800


def test_emoji_and_unicode_names_are_kept_exactly(stack: Stack, target: tuple[Api, dict[str, str]]) -> None:
    """A valid name in any script round-trips byte for byte (and a folded search finds it)."""
    api, _ = target
    for name in ("💅🏽 Zoë", "李娜", "Ана-Мария", 'O\'Neil "Jr"'):
        created = api.post("/clients", json={"name": name, "phone": unique_phone()})
        assert created.status_code == 201, created.text
        cid = created.json()["client_id"]
        assert api.get(f"/clients/{cid}").json()["name"] == name
        found = api.get("/me/clients", params={"q": name[:2]}).json()["items"]
        assert cid in {c["client_id"] for c in found}, name
