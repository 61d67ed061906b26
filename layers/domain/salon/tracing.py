"""X-Ray tracing through Powertools' Tracer, created on the first invocation rather than at import.

``@tracing.traced`` on a Lambda handler opens the ``## handler`` subsegment
(with ColdStart and Service annotations) and patches boto3, so every AWS call
is a subsegment; ``tracing.annotate(route=..., pro_id=...)`` adds searchable
annotations to it. Responses are never recorded (they hold contact details),
only errors.

Outside Lambda, or with ``POWERTOOLS_TRACE_DISABLED=true`` (the local stack and
the tests), no Tracer is created and the X-Ray SDK is never imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_state: dict[str, Any] = {}


def tracer() -> Any:
    """The process-wide Tracer, or None when tracing is disabled."""
    if "tracer" not in _state:
        from aws_lambda_powertools.tracing.tracer import Tracer

        _state["tracer"] = None if Tracer._is_tracer_disabled() else Tracer()
    return _state["tracer"]


def annotate(**values: str | int | bool | None) -> None:
    """Searchable annotations on the current subsegment; None values are left out."""
    current = tracer()
    if current is None:
        return
    for key, value in values.items():
        if value is not None:
            current.put_annotation(key=key, value=value)


def traced(handler: F) -> F:
    """Decorate a Lambda handler: traced as Powertools' ``capture_lambda_handler`` when tracing is on."""
    wrapped: list[Callable[..., Any]] = []

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        if not wrapped:
            current = tracer()
            wrapped.append(
                handler
                if current is None
                else current.capture_lambda_handler(handler, capture_response=False, capture_error=True)
            )
        return wrapped[0](event, context)

    return run  # type: ignore[return-value]
