"""The local stack itself: tokens checked as the authorizer would, docs served, events delivered."""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from devstack.process import ROOT
from tests.integration.conftest import Api, Stack


def test_openapi_and_swagger_ui_are_served_without_a_token(stack: Stack) -> None:
    doc = requests.get(f"{stack.url}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    assert "/clients" in doc["paths"]
    assert doc["components"]["securitySchemes"]["jwt"]["scheme"] == "bearer"
    page = requests.get(f"{stack.url}/docs", timeout=10)
    assert page.status_code == 200
    assert "swagger-ui" in page.text


def test_no_token_is_401(stack: Stack) -> None:
    resp = requests.get(f"{stack.url}/me", timeout=10)
    assert resp.status_code == 401


def test_expired_wrong_audience_and_foreign_key_tokens_are_401(stack: Stack, tmp_path: object) -> None:
    expired = stack.token("alice", ttl_s=-60)
    wrong_aud = stack.token("alice", audience="someone-else")
    wrong_iss = stack.token("alice", issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other")
    from devstack import tokens

    foreign = tokens.mint("alice", directory=__import__("pathlib").Path(str(tmp_path)))
    for token in (expired, wrong_aud, wrong_iss, foreign, "not-a-jwt"):
        resp = requests.get(f"{stack.url}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert resp.status_code == 401, token


def test_unknown_route_is_404(stack: Stack) -> None:
    resp = requests.get(f"{stack.url}/nowhere", headers={"Authorization": f"Bearer {stack.token('a')}"}, timeout=10)
    assert resp.status_code == 404


def test_stream_records_reach_the_consumer_and_fan_out(stack: Stack, pro: object) -> None:
    """A profile written straight to the table (as a job would) reaches its assignee's view via the stream."""
    bob: Api = pro("bob")  # type: ignore[operator]
    ddb = stack.client("dynamodb")
    client_id = "01JD" + "0" * 20 + f"{int(time.time()) % 100:02d}"
    ddb.put_item(
        TableName="studio-local-RecordsTable",
        Item={
            "pk": {"S": f"CLIENT#{client_id}"},
            "sk": {"S": "PROFILE"},
            "kind": {"S": "client"},
            "client_id": {"S": client_id},
            "owner": {"S": f"PRO#{bob.sub}"},
            "name": {"S": "Stream Test"},
            "name_folded": {"S": "stream test"},
            "email": {"S": "stream@example.com"},
            "marketing_consent": {"BOOL": False},
            "version": {"N": "1"},
            "created_at": {"S": "2026-11-24T00:00:00.000Z"},
            "updated_at": {"S": "2026-11-24T00:00:00.000Z"},
            "created_by": {"S": bob.sub},
            "assignees": {"SS": [bob.sub]},
        },
    )
    stack.drain()
    items = bob.get("/me/clients").json()["items"]
    assert [c["client_id"] for c in items] == [client_id]


def test_make_token_prints_only_a_token(stack: Stack) -> None:
    out = subprocess.run(
        ["make", "-s", "token", "SUB=alice", "GROUPS=operators"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "DEVSTACK_HOME": str(stack.key_dir)},
    ).stdout
    token = out.strip()
    assert out.count("\n") == 1
    assert token.count(".") == 2
    me = requests.get(f"{stack.url}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["pro_id"] == "alice"


def test_a_taken_port_gets_a_clear_message(stack: Stack) -> None:
    port = stack.url.rsplit(":", 1)[1]
    result = subprocess.run(  # noqa: PLW1510 - the exit code is the point
        [sys.executable, "-m", "devstack", "serve", "--port", port, "--emulator-port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": f"{ROOT / 'layers/domain'}:{ROOT}"},
    )
    assert result.returncode == 2
    assert f"port {port}" in result.stderr
    assert "taken" in result.stderr
