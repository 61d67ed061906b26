"""The one resolver factory every HTTP function uses.

It fixes what all routes share: request validation and the OpenAPI document,
the JSON error shape, the caller's identity, the body-size limit and the
``Idempotency-Key`` contract of every POST.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from salon import metrics, tracing
from salon.errors import AppError, Conflict, Forbidden, field_error
from salon.http_input import normalise_body
from salon.identity import Caller, caller_from_event
from salon.ids import is_ulid
from salon.services.access import ClientAccess, begin_request, client_access
from salon.settings import get_settings

logger = Logger()

API_TITLE = "Studio client records"
API_VERSION = "1.0.0"
SECURITY: list[dict[str, list[str]]] = [{"jwt": []}]
_IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    """A JSON response with a status and headers, for routes that answer other than 200."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def error_response(error: AppError) -> Response[Any]:
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=error.body(),
        headers=error.headers() or None,
    )


def _data_error(exc: Exception) -> AppError | None:
    """A data-layer failure that outlasted its retries, as the API answers it (409 ``write_conflict``, 503
    ``throttled`` with ``Retry-After``), or ``None`` for anything else (a bug: 500)."""
    from salon.data.tx import data_error

    mapped = data_error(exc)
    if mapped is not None:
        logger.warning("data layer gave up", extra={"error": type(exc).__name__, "code": mapped.code})
    return mapped


MAX_VALIDATION_DETAILS = 20


def _validation_details(exc: RequestValidationError) -> tuple[list[dict[str, Any]], int]:
    """Field paths and messages only, never the rejected input echoed back; at most
    ``MAX_VALIDATION_DETAILS`` of them (a body of a thousand bad items is not a thousand-line answer),
    with the count of the problems left out."""
    errors = exc.errors()
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", "invalid"), "type": err.get("type", "value_error")}
        for err in errors[:MAX_VALIDATION_DETAILS]
    ]
    return details, max(0, len(errors) - MAX_VALIDATION_DETAILS)


def make_resolver(*routers: Router) -> APIGatewayHttpResolver:
    """A resolver with validation, OpenAPI metadata, error handlers and idempotent POSTs."""
    # debug=False: POWERTOOLS_EVENT_HANDLER_DEBUG / POWERTOOLS_DEV must never print events or tracebacks.
    app = APIGatewayHttpResolver(enable_validation=True, debug=False)
    app.configure_openapi(
        title=API_TITLE,
        version=API_VERSION,
        description="Client records shared between beauty studios and their pros.",
        # A plain dict: the OpenAPI models (a large pydantic import) load only when a document is generated.
        security_schemes={"jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},  # type: ignore[dict-item]
        security=SECURITY,
    )

    @app.exception_handler(AppError)
    def _app_error(exc: AppError) -> Response[Any]:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        details, more = _validation_details(exc)
        message = "The request is not valid."
        if more:
            message = f"The request is not valid: {len(details)} problems listed, {more} more not listed."
        return error_response(AppError(message, code="validation_error", details=details, status=422))

    @app.exception_handler(RequestUnsupportedContentType)
    def _media_type(exc: RequestUnsupportedContentType) -> Response[Any]:
        return error_response(
            AppError("Send the body as JSON (application/json).", code="unsupported_media_type", status=415)
        )

    @app.not_found
    def _no_route(exc: NotFoundError) -> Response[Any]:
        return error_response(AppError("No such route.", code="route_not_found", status=404))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        mapped = _data_error(exc)
        if mapped is not None:
            return error_response(mapped)
        logger.error("unhandled error", extra={"error": type(exc).__name__, "at": _where(exc)})
        return error_response(AppError("Something went wrong on our side.", code="internal_error", status=500))

    from salon.idempotency import idempotency_middleware

    app.use(middlewares=[idempotency_middleware])
    for router in routers:
        app.include_router(router)
    _complete_responses(app)
    return app


def _complete_responses(app: APIGatewayHttpResolver) -> None:
    """Every route documents what it really answers: its success (200 unless the route names another
    2xx) and the shared errors (422 and 413 in the error shape, the authorizer's 401, 503 ``throttled``
    when DynamoDB keeps throttling, and on writes 409 ``write_conflict``). Routes list their own
    403/404/409... with :func:`documented` or ``responses``."""
    shared = documented(200, 409, 503)
    for route in [*app._static_routes, *app._dynamic_routes]:
        responses = dict(route.responses or {})
        if not any(200 <= int(code) < 300 for code in responses):
            responses[200] = shared[200]
        for code in (401, 413, 415, 422, 503):
            responses.setdefault(code, shared[code])
        if route.method.upper() != "GET":  # any write can meet a concurrent transaction: 409 write_conflict
            responses.setdefault(409, shared[409])
        if 204 in responses:
            responses[204] = {**responses[204], "content": {}}  # no body, whatever the return annotation
        if 422 in responses and "content" in responses[422]:
            responses[422] = shared[422]  # our validation errors, not Powertools' default body
        # A 503 (throttled, or a route's own) always says when to try again, whoever worded it.
        responses[503] = {**responses[503], "headers": {"Retry-After": _RETRY_AFTER}}
        route.responses = responses


def _where(exc: BaseException) -> list[str]:
    """Where an error was raised, frame by frame, without its message: messages can quote personal data
    (a pydantic error quotes the rejected input)."""
    import traceback

    return [
        f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)[-8:]
    ]


def current_caller(app: APIGatewayHttpResolver | Router) -> Caller:
    return caller_from_event(app.current_event.raw_event)


@dataclass(frozen=True)
class RouteAccess:
    """How one route decides the caller's access to the client in its path, before validation.

    ``load`` replaces the default access read (a route that reads the client's items anyway seeds
    the request's access from that read: the Client Log); ``allow`` is the role rule of the route
    (``salon.services.access.ClientAccess`` properties), a 403 when false.
    """

    load: Callable[[Caller, str], ClientAccess] | None = None
    allow: Callable[[ClientAccess], bool] | None = None
    message: str = "Your role may not do this."


MAX_JSON_DEPTH = 32


def _too_deep(body: str) -> bool:
    """Whether a JSON body nests arrays and objects deeper than any request needs. Python's parser recurses
    per level and fails with RecursionError (a 500) around 1,000, well inside the size limit; the check is a
    single pass, only for bodies that hold enough brackets to be deep at all."""
    if body.count("[") + body.count("{") <= MAX_JSON_DEPTH:
        return False
    depth, in_string, escaped = 0, False, False
    for char in body:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def precheck(event: dict[str, Any], routes: Mapping[str, RouteAccess] | None = None) -> dict[str, Any] | None:
    """Checks that run before routing and validation.

    The body is decoded once (``salon.http_input.normalise_body``: its size, media type and UTF-8 are
    checked on the decoded bytes, whatever the transport encoding); an oversized body never reaches a
    parser; a malformed client id never reaches a key; and access to the client in the path is decided
    first, so a caller who may not see it gets a 404 whatever else is wrong with the request.
    """
    refused = normalise_body(event, get_settings().max_body_bytes)
    if refused is not None:
        return _raw_error(refused)
    if _too_deep(event.get("body") or ""):
        return _raw_error(
            AppError(
                f"The body nests deeper than {MAX_JSON_DEPTH} levels.",
                code="validation_error",
                details=[{"loc": ["body"], "msg": "nested too deeply", "type": "json_invalid"}],
                status=422,
            )
        )
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    key = headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY_RE.match(key):
        return _raw_error(
            AppError(
                "Idempotency-Key must be 8 to 128 letters, digits or -_.:",
                code="validation_error",
                details=[{"loc": ["header", "Idempotency-Key"], "msg": "invalid key", "type": "value_error"}],
                status=422,
            )
        )
    client_id = (event.get("pathParameters") or {}).get("client_id")
    if client_id is not None:
        if not is_ulid(client_id):
            return _raw_error(field_error("path", "client_id", "Not a client id.", "string_pattern_mismatch"))
        rule = (routes or {}).get(str(event.get("routeKey", "")), RouteAccess())
        try:
            access = (rule.load or client_access)(caller_from_event(event), client_id)
            if rule.allow is not None and not rule.allow(access):
                raise Forbidden(rule.message)
            method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")
            if method not in ("GET", "HEAD") and access.awaiting_import:
                raise Conflict(
                    "This client is being imported into your studio; try again shortly.", code="import_in_progress"
                )
        except AppError as exc:
            return _raw_error(exc)
    return None


def _raw_error(error: AppError) -> dict[str, Any]:
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **error.headers()},
        "body": json.dumps(error.body()),
        "isBase64Encoded": False,
    }


def make_handler(
    app: APIGatewayHttpResolver, routes: Mapping[str, RouteAccess] | None = None
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The Lambda entry point of an HTTP function; ``routes`` maps route keys (``"POST /clients/{client_id}/x"``)
    to their access rules."""

    # Logs are JSON with the request id, the correlation id (API Gateway's request id) and the caller; the
    # event itself is never logged (log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says): it holds the
    # token and the body. One "request" line per invocation; metrics are published when it ends.
    @metrics.published
    @tracing.traced
    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True, log_event=False
    )
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        begin_request()
        started = time.perf_counter()
        pro_id = None
        with contextlib.suppress(AppError):
            pro_id = caller_from_event(event).pro_id
            logger.append_keys(pro_id=pro_id)
        route = str(event.get("routeKey", ""))
        client_id = (event.get("pathParameters") or {}).get("client_id")
        tracing.annotate(route=route, pro_id=pro_id, client_id=client_id)
        try:
            early = precheck(event, routes)
        except Exception as exc:  # the access read outlasted its retries (a throttle): 503, never a 500
            mapped = _data_error(exc)
            if mapped is None:
                raise
            early = _raw_error(mapped)
        response = early if early is not None else app.resolve(event, context)
        status = int(response.get("statusCode", 0))
        tracing.annotate(status=status)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        logger.info("request", extra={"route": route, "client_id": client_id, "status": status, "ms": elapsed_ms})
        return response

    return handler


_STATUS_TEXT = {
    200: "OK.",
    201: "Created.",
    202: "Accepted: the work goes on in the background.",
    204: "Done; no body.",
    400: "The request is malformed.",
    401: "No valid token.",
    403: "The caller's role or plan may not do this.",
    404: "Not found, or not visible to the caller.",
    409: "Conflicts with the current state (the error code says which rule).",
    410: "Gone: the cursor is older than the change feed keeps.",
    412: "The version in If-Match is stale.",
    413: "The body is larger than the API accepts.",
    415: "The body is not JSON.",
    422: "The request is not valid: details name each field.",
    428: "If-Match is required.",
    429: "Too many attempts.",
    503: "DynamoDB is throttling: nothing was changed by this request; retry after Retry-After seconds.",
}


_RETRY_AFTER: Any = {
    "description": "Seconds to wait before retrying (sent with write_conflict and throttled).",
    "schema": {"type": "integer", "minimum": 0},
}


def documented(success: int = 200, *errors: int, body: bool = True) -> dict[int, Any]:
    """The OpenAPI responses of a route: its success (with the route's return model, or no body) and
    every error it can answer, in the error shape. Validation (422), an oversized body (413) and a
    missing token (401) are added to every route."""
    from salon.schemas.common import ErrorBody

    responses: dict[int, Any] = {success: {"description": _STATUS_TEXT.get(success, "OK.")}}
    if not body:
        responses[success]["content"] = {}
    for code in sorted({*errors, 413, 415, 422}):
        responses[code] = {
            "description": _STATUS_TEXT.get(code, "Error."),
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        }
        if code in (409, 503):  # write_conflict and throttled say when to try again
            responses[code]["headers"] = {"Retry-After": _RETRY_AFTER}
    # The API's JWT authorizer answers 401 itself, with API Gateway's own body.
    responses[401] = {
        "description": _STATUS_TEXT[401],
        "content": {content_types.APPLICATION_JSON: {"schema": {"type": "object"}}},
    }
    return responses
