"""The local gateway hands functions the event API Gateway's HTTP API builds (payload format 2.0), and answers
what HTTP API answers itself. Each test follows
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
("Payload format differences", "Payload format structure"); which bodies arrive base64-encoded is not listed
there and follows what AWS was seen doing (ministackorg/ministack#766: text/*, application/json,
application/xml and application/javascript as text, everything else and no Content-Type as base64).
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import tokens
from devstack.gateway import Gateway, make_server
from devstack.template import Template


class Recorder:
    """A function that records the event it was handed and answers 200."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any], wait_s: float | None = None) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Recorder, str]]:
    key_dir: Path = tmp_path_factory.mktemp("keys")
    routes = Template().http_routes()
    recorder = Recorder()
    pools: dict[str, Any] = {route.function: recorder for route in routes}
    gw = Gateway(routes, pools, lambda: {}, tokens.public_key_pem(key_dir), "")
    server = make_server(gw, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = tokens.mint("ana", ["ops,operators", "admins"], directory=key_dir, extra={"email_verified": True})
    yield "127.0.0.1", server.server_address[1], recorder, token
    server.shutdown()
    server.server_close()


def _send(
    gateway: tuple[str, int, Recorder, str],
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    auth: bool = True,
) -> tuple[int, bytes, dict[str, Any] | None]:
    host, port, recorder, token = gateway
    before = len(recorder.events)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    if auth:
        conn.putheader("Authorization", f"Bearer {token}")
    for name, value in headers:
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data, recorder.events[-1] if len(recorder.events) > before else None


@pytest.mark.parametrize(
    ("content_type", "as_text"),
    [
        ("application/json", True),
        ("Application/JSON; Charset=UTF-8", True),
        ("text/plain", True),
        ("text/csv; charset=utf-8", True),
        ("application/xml", True),
        ("application/javascript", True),
        (None, False),
        ("application/octet-stream", False),
        ("application/x-www-form-urlencoded", False),
        ("image/png", False),
        ("multipart/form-data; boundary=x", False),
    ],
)
def test_a_body_is_base64_unless_its_media_type_is_text(
    gateway: tuple[str, int, Recorder, str], content_type: str | None, as_text: bool
) -> None:
    body = b'{"name":"Ana"}'  # valid UTF-8 in every case: the media type decides, not the bytes
    headers = [("Content-Type", content_type)] if content_type else []
    status, _, event = _send(gateway, "POST", "/clients", headers, body)
    assert status == 200
    assert event is not None
    assert event["isBase64Encoded"] is not as_text
    assert (event["body"] if as_text else base64.b64decode(event["body"])) == (body.decode() if as_text else body)


def test_a_text_body_that_is_not_utf8_reaches_the_function_as_its_bytes(
    gateway: tuple[str, int, Recorder, str],
) -> None:
    _, _, event = _send(gateway, "POST", "/clients", [("Content-Type", "application/json")], b'{"name":"\xff"}')
    assert event is not None
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b'{"name":"\xff"}'


def test_repeated_headers_are_joined_with_commas_and_cookies_leave_the_headers(
    gateway: tuple[str, int, Recorder, str],
) -> None:
    """ "Duplicate headers are combined with commas and included in the headers field"; "All cookie headers
    in the request are combined with commas and added to the cookies field"."""
    headers = [
        ("X-Trace", "a"),
        ("x-trace", "b"),
        ("Accept", "application/json"),
        ("Cookie", "session=1; theme=dark"),
        ("Cookie", "lang=pt"),
    ]
    status, _, event = _send(gateway, "GET", "/me", headers)
    assert status == 200
    assert event is not None
    assert event["headers"]["x-trace"] == "a,b"
    assert event["cookies"] == ["session=1", "theme=dark", "lang=pt"]
    assert "cookie" not in event["headers"]
    assert all(name == name.lower() for name in event["headers"])


def test_no_cookie_header_means_no_cookies_field(gateway: tuple[str, int, Recorder, str]) -> None:
    _, _, event = _send(gateway, "GET", "/me", [])
    assert event is not None
    assert "cookies" not in event


def test_array_claims_arrive_as_http_api_serialises_them(gateway: tuple[str, int, Recorder, str]) -> None:
    """HTTP API's JWT authorizer passes every claim as a string: an array as its items joined by spaces in
    brackets (a comma inside a Cognito group name stays in it), a boolean as true/false."""
    _, _, event = _send(gateway, "GET", "/me", [])
    assert event is not None
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["cognito:groups"] == "[ops,operators admins]"
    assert claims["email_verified"] == "true"
    assert all(isinstance(v, str) for v in claims.values())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/route"),
        ("PUT", "/clients"),  # a known path, a method no route has
        ("DELETE", "/me"),
        ("HEAD", "/me"),  # HTTP API routes HEAD only where a route names it
        ("PATCH", "/studios"),
        ("TRACE", "/clients"),  # methods no route can name are the same 404, not a 501
        ("PROPFIND", "/me"),
    ],
)
@pytest.mark.parametrize("auth", [True, False])
def test_unknown_routes_and_methods_are_the_gateways_own_404(
    gateway: tuple[str, int, Recorder, str], method: str, path: str, auth: bool
) -> None:
    """No route matches: HTTP API answers 404 {"message":"Not Found"} itself, before any authorizer runs."""
    status, body, event = _send(gateway, method, path, [], auth=auth)
    assert status == 404
    assert event is None
    if method != "HEAD":
        assert json.loads(body) == {"message": "Not Found"}
