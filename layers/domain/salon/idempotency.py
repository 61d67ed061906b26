"""``Idempotency-Key`` on every POST, with Powertools idempotency.

A retried POST with the same key and body returns the first response and does
nothing twice; the same key with another body or route is a 422. Records live
in a table of their own, without a stream, so they never reach the stream
consumer. Failed requests (any exception) leave no record, so they can be retried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver

from salon.errors import Conflict, Unprocessable
from salon.http_input import decoded_body
from salon.identity import caller_from_event
from salon.settings import get_settings

_replay: Callable[..., dict[str, Any]] | None = None


def _build() -> Callable[..., dict[str, Any]]:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from botocore.config import Config

    from salon.data.retry import install as install_retries

    settings = get_settings()
    # boto3's default (legacy) retries try a throttled call 10 times over up to ~25 s, past the function's timeout:
    # the records' client retries as the table's does (salon.data.retry, D39), then a 503 throttled.
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table_name,
        boto_config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )
    install_retries(persistence.client)
    config = IdempotencyConfig(
        event_key_jmespath="[caller, key]",
        payload_validation_jmespath="[method, path, body_sha256]",
        expires_after_seconds=settings.idempotency_ttl_seconds,
        raise_on_no_idempotency_key=True,
    )

    def first_response(request: dict[str, Any], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return run()

    replay = idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)(
        first_response
    )
    replay.__wrapped_config__ = config
    return cast(Callable[..., dict[str, Any]], replay)


def _to_record(response: Any) -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.encoders import jsonable_encoder

    if not isinstance(response, Response):
        return {"status": 200, "headers": {}, "body": jsonable_encoder(response)}
    headers = {k: v for k, v in response.headers.items() if isinstance(v, str)}
    return {"status": response.status_code, "headers": headers, "body": jsonable_encoder(response.body)}


def idempotency_middleware(app: APIGatewayHttpResolver, next_middleware: Callable[..., Any]) -> Any:
    event = app.current_event
    key = (event.headers or {}).get("idempotency-key") or (event.headers or {}).get("Idempotency-Key")
    if event.http_method != "POST" or not key:
        return next_middleware(app)

    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    global _replay
    if _replay is None:
        _replay = _build()
    config = getattr(_replay, "__wrapped_config__", None)
    if config is not None and app.lambda_context is not None:
        config.register_lambda_context(app.lambda_context)
    request = {
        "caller": caller_from_event(event.raw_event).pro_id,
        "key": key,
        "method": event.http_method,
        "path": event.path,
        # The decoded bytes, whatever the transport encoding (the handler's precheck has already decoded a
        # base64 body; decoding here again keeps the hash right for any caller of the resolver).
        "body_sha256": hashlib.sha256(decoded_body(event.raw_event)).hexdigest(),
    }
    try:
        record = _replay(request=request, run=lambda: _to_record(next_middleware(app)))
    except IdempotencyValidationError:
        raise Unprocessable(
            "This Idempotency-Key was used with another request.", code="idempotency_key_reused"
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict("A request with this Idempotency-Key is still running.", code="request_in_progress") from None
    headers = dict(record["headers"])
    headers.setdefault("Content-Type", "application/json")
    return Response(status_code=record["status"], body=record["body"], headers=headers)
