"""The HTTP API in front of the handlers: JWT checked as the authorizer would, then a
Lambda HTTP API 2.0 event handed to the function the template routes it to."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt

from devstack import clock, faults, iam, tokens
from devstack.functions import Invoker
from devstack.template import LOCAL_ACCOUNT, HttpRoute
from devstack.workers import InvocationError, Throttled

log = logging.getLogger("devstack.api")
CORS_HEADERS = "authorization,content-type,if-match,idempotency-key"
CORS_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS"
# HTTP API's integration timeout: a request waiting longer for its function is answered 503.
INTEGRATION_TIMEOUT_S = 30.0


def claims_for_lambda(claims: dict[str, Any]) -> dict[str, str]:
    """HTTP API hands claims to Lambda as strings: an array becomes its items joined by single spaces inside
    brackets (``["ops,operators", "admins"]`` -> ``[ops,operators admins]``), a boolean ``true``/``false``."""
    out = {}
    for key, value in claims.items():
        if isinstance(value, list):
            out[key] = "[" + " ".join(_claim_text(v) for v in value) + "]"
        else:
            out[key] = _claim_text(value)
    return out


def _claim_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# The media types HTTP API hands to Lambda as text; every other body (no Content-Type included) arrives
# base64-encoded with isBase64Encoded true (checked against AWS: ministackorg/ministack#766).
_TEXT_MEDIA_TYPES = ("application/json", "application/xml", "application/javascript")


def is_text_media_type(content_type: str | None) -> bool:
    """Whether HTTP API passes a body of this Content-Type as text (MIME types compare case-insensitively)."""
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind in _TEXT_MEDIA_TYPES


def encode_body(body: bytes, content_type: str | None) -> tuple[str | None, bool]:
    """``(body, isBase64Encoded)`` as HTTP API payload format 2.0 passes a request body: text for text media
    types, base64 for everything else. A text-typed body that is not UTF-8 (AWS does not document that
    case) is base64-encoded too, so the function sees the exact bytes and must refuse them itself."""
    if not body:
        return None, False
    if is_text_media_type(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), True


def lambda_headers(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], list[str] | None]:
    """``(headers, cookies)`` as payload format 2.0 has them: names lower-cased, repeated headers joined with
    commas, and every ``Cookie`` header's cookies in ``cookies`` instead of the headers."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers, cookies or None


def http_event(
    route: HttpRoute,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    claims: dict[str, Any],
    path_params: dict[str, str],
    cookies: list[str] | None = None,
) -> dict[str, Any]:
    """The event HTTP API (payload format 2.0) hands a Lambda integration:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html"""
    text, b64 = encode_body(body, headers.get("content-type"))
    qs: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        qs[key] = f"{qs[key]},{value}" if key in qs else value
    now = dt.datetime.now(dt.UTC)
    return {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": query,
        **({"cookies": cookies} if cookies else {}),
        "headers": headers,
        "queryStringParameters": qs or None,
        "pathParameters": path_params or None,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "authorizer": {"jwt": {"claims": claims_for_lambda(claims), "scopes": None}},
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "127",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": b64,
        "stageVariables": None,
    }


class Gateway:
    def __init__(
        self,
        routes: list[HttpRoute],
        pools: Mapping[str, Invoker],
        openapi: Any,
        public_key: bytes,
        swagger_html: str,
    ) -> None:
        self.routes = routes
        self.pools = pools
        self.openapi = openapi  # a callable returning the document, built on first request
        self.public_key = public_key
        self.swagger_html = swagger_html
        self.drain: Any = None  # local-only: wait for the event pumps, for tests

    def match(self, method: str, path: str) -> tuple[HttpRoute | None, dict[str, str], bool]:
        path_matched = False
        for route in self.routes:
            m = route.regex.match(path)
            if not m:
                continue
            path_matched = True
            if route.method in (method, "ANY"):
                return route, {k: unquote(v) for k, v in zip(route.params, m.groups(), strict=True)}, True
        return None, {}, path_matched

    def authorize(self, headers: dict[str, str]) -> dict[str, Any] | None:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else auth
        if not token:
            return None
        try:
            return tokens.verify(token.strip(), self.public_key)
        except jwt.PyJWTError:
            return None


def make_server(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "studio-records-local"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, body: bytes, headers: dict[str, Any] | None = None) -> None:
            self.send_response(status)
            sent = {k.lower() for k in (headers or {})}
            for key, value in (headers or {}).items():
                for v in value if isinstance(value, list) else [value]:
                    self.send_header(key, str(v))
            if "content-length" not in sent:
                self.send_header("Content-Length", str(len(body)))
            if "access-control-allow-origin" not in sent and self.headers.get("Origin"):
                self.send_header("Access-Control-Allow-Origin", self.headers["Origin"])
                self.send_header("Access-Control-Expose-Headers", "etag")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, doc: Any) -> None:
            self._send(status, json.dumps(doc).encode(), {"Content-Type": "application/json"})

        def _handle(self) -> None:
            started = time.perf_counter()
            parts = urlsplit(self.path)
            method = self.command.upper()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if parts.path == "/openapi.json" and method == "GET":
                return self._json(200, gateway.openapi())
            if parts.path == "/__devstack/ready" and method == "GET":
                return self._send(204, b"")
            if parts.path == "/__devstack/denied" and method == "GET":  # calls a function's policy did not allow
                return self._json(200, [dataclasses.asdict(d) for d in iam.denials()])
            if parts.path == "/__devstack/drain" and method == "POST" and gateway.drain is not None:
                timeout = float(dict(parse_qsl(parts.query)).get("timeout", "15"))
                try:
                    gateway.drain(timeout)
                except TimeoutError:
                    return self._json(504, {"message": "events still flowing"})
                return self._send(204, b"")
            if parts.path == "/__devstack/faults":  # local only: faults in force and injected; POST sets them
                if method == "POST":
                    try:
                        faults.configure(str(json.loads(body or b"{}")["faults"]))
                    except (ValueError, TypeError, KeyError) as err:
                        return self._json(400, {"message": f'send {{"faults": "kind=value,..."}}: {err}'})
                return self._json(200, faults.report())
            if parts.path == "/__devstack/clock":  # local only: move the stack's time forward
                if method == "POST":
                    try:
                        advance = float(json.loads(body or b"{}").get("advance_s", 0))
                        clock.advance(advance)
                    except (ValueError, TypeError, AttributeError):
                        return self._json(400, {"message": 'send {"advance_s": N} with N >= 0'})
                return self._json(200, {"offset_s": clock.offset_s(), "now": clock.now()})
            if parts.path in ("/docs", "/docs/") and method == "GET":
                return self._send(200, gateway.swagger_html.encode(), {"Content-Type": "text/html"})
            if method == "OPTIONS" and self.headers.get("Access-Control-Request-Method"):
                return self._send(
                    204,
                    b"",
                    {
                        "Access-Control-Allow-Origin": self.headers.get("Origin", "*"),
                        "Access-Control-Allow-Methods": CORS_METHODS,
                        "Access-Control-Allow-Headers": CORS_HEADERS,
                        "Access-Control-Max-Age": "600",
                    },
                )
            route, params, _ = gateway.match(method, parts.path)
            if route is None:
                return self._json(404, {"message": "Not Found"})
            headers, cookies = lambda_headers(list(self.headers.items()))
            claims = gateway.authorize(headers)
            if claims is None:
                return self._send(
                    401,
                    b'{"message":"Unauthorized"}',
                    {"Content-Type": "application/json", "www-authenticate": 'Bearer error="invalid_token"'},
                )
            event = http_event(route, method, parts.path, parts.query, headers, body, claims, params, cookies)
            try:
                result = gateway.pools[route.function].invoke(event, wait_s=INTEGRATION_TIMEOUT_S)
            except Throttled:  # no instance free within the integration timeout
                log.error("function %s: no instance free in %.0f s", route.function, INTEGRATION_TIMEOUT_S)
                return self._json(503, {"message": "Service Unavailable"})
            except InvocationError as exc:  # a function error, timeout or crash: HTTP API answers 500
                log.error("function %s failed: %s\n%s", route.function, exc, exc.trace)
                return self._json(500, {"message": "Internal Server Error"})
            except Exception:
                log.exception("function %s failed", route.function)
                return self._json(500, {"message": "Internal Server Error"})
            if not isinstance(result, dict) or "statusCode" not in result:
                result = {
                    "statusCode": 200,
                    "body": json.dumps(result),
                    "headers": {"Content-Type": "application/json"},
                }
            out = result.get("body") or ""
            data = base64.b64decode(out) if result.get("isBase64Encoded") else str(out).encode()
            resp_headers = dict(result.get("headers") or {})
            resp_headers.setdefault("apigw-requestid", event["requestContext"]["requestId"])  # as API Gateway
            for k, v in (result.get("multiValueHeaders") or {}).items():
                resp_headers[k] = v
            if result.get("cookies"):
                resp_headers["Set-Cookie"] = result["cookies"]
            self._send(int(result["statusCode"]), data, resp_headers)
            log.debug(
                "%s %s -> %s in %.1f ms",
                method,
                parts.path,
                result["statusCode"],
                (time.perf_counter() - started) * 1000,
            )

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle  # noqa: N815

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, CONNECT, PROPFIND, ...) no route names: HTTP API's own 404, not
            # http.server's 501.
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

    server = _Server((host, port), Handler)
    server.daemon_threads = True
    return server


class _Server(ThreadingHTTPServer):
    # Bursts of concurrent requests (an app's retries, the limit tests) must queue, not be reset:
    # the default listen backlog is 5.
    request_queue_size = 128
