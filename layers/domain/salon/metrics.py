"""Business metrics, published as CloudWatch embedded metric format (EMF) log lines.

Services count what happened with ``metrics.count(metrics.CLIENTS_CREATED)``;
the handler publishes everything counted during the invocation in one EMF
line when it ends (``salon.api.make_handler`` does it for every HTTP function;
event handlers wrap themselves with ``@metrics.published``). Namespace and
service dimension come from ``POWERTOOLS_METRICS_NAMESPACE`` and
``POWERTOOLS_SERVICE_NAME`` (set in the template). Locally and in tests
``POWERTOOLS_METRICS_DISABLED=true`` makes every call a no-op.

Powertools' Metrics is imported on first use, so a function that counts
nothing never pays for it, and a metric can never fail a request: errors are
logged and dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger

logger = Logger(child=True)

# The metric names, one place. Every name counts occurrences (unit Count).
CLIENTS_CREATED = "ClientsCreated"
CLIENTS_MERGED = "ClientsMerged"
NOTES_ADDED = "NotesAdded"
FORMULAS_ADDED = "FormulasAdded"
UPLOADS_CONFIRMED = "UploadsConfirmed"
UPLOADS_REJECTED = "UploadsRejected"
FANOUT_WRITES = "FanoutWrites"
"""Views and tombstones written (or deleted) by the stream consumer."""
STREAM_RECORDS_PARKED = "StreamRecordsParked"
"""Stream records the consumer could not apply and parked on the failure queue."""
STREAM_RECORDS_REDRIVEN = "StreamRecordsRedriven"

_state: dict[str, Any] = {}
F = TypeVar("F", bound=Callable[..., Any])


def _metrics() -> Any:
    """The process-wide Powertools Metrics, or None when metrics are disabled."""
    if "metrics" not in _state:
        from aws_lambda_powertools.metrics import Metrics
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        _state["metrics"] = None if is_metrics_disabled() else Metrics()
    return _state["metrics"]


def count(name: str, value: int = 1) -> None:
    """Count ``value`` occurrences of ``name`` in this invocation."""
    if value <= 0:
        return
    try:
        metrics = _metrics()
        if metrics is not None:
            metrics.add_metric(name=name, unit="Count", value=value)
    except Exception:  # a metric never fails the work it describes
        logger.warning("metric dropped", extra={"metric": name})


def flush() -> None:
    """Publish what this invocation counted, as one EMF line; nothing when nothing was counted."""
    metrics = _state.get("metrics")
    if metrics is None or not metrics.metric_set:
        return
    try:
        metrics.flush_metrics()
    except Exception:
        logger.warning("metrics dropped", extra={"metrics": sorted(metrics.metric_set)})
        metrics.clear_metrics()


def published(handler: F) -> F:
    """Decorate a Lambda handler so the metrics it counted are published when it returns or raises."""

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            flush()

    return run  # type: ignore[return-value]
