"""Long jobs, one chunk per message. Later issues register their job kinds here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)

JobRunner = Callable[[dict[str, Any]], None]
RUNNERS: dict[str, JobRunner] = {}
# Job kinds and where their runner lives, imported on first use so the worker's cold start stays small.
KINDS = {
    "import": "salon.services.imports:run_import_chunk",
    "refan_member": "salon.services.maintenance:refan_member",
    "studio_plan": "salon.services.maintenance:copy_studio_plan",
    "delete_client": "salon.services.maintenance:delete_client",
    "departure": "salon.services.departures:run_departure_chunk",
}


class UnknownJob(Exception):
    pass


def register(kind: str) -> Callable[[JobRunner], JobRunner]:
    def wrap(fn: JobRunner) -> JobRunner:
        RUNNERS[kind] = fn
        return fn

    return wrap


_sqs: Any = None


def enqueue(kind: str, **payload: Any) -> None:
    """Put one chunk of long work on the jobs queue."""
    global _sqs
    import boto3

    from salon.settings import get_settings

    if _sqs is None:
        _sqs = boto3.client("sqs")
    _sqs.send_message(QueueUrl=get_settings().jobs_queue_url, MessageBody=json.dumps({"kind": kind, **payload}))


def enqueue_message(message: dict[str, Any]) -> None:
    kind = message.pop("kind")
    enqueue(kind, **message)


def run_job_message(body: str) -> None:
    message = json.loads(body)
    kind = message.get("kind", "")
    runner = RUNNERS.get(kind)
    if runner is None and kind in KINDS:
        import importlib

        module, name = KINDS[kind].split(":")
        runner = RUNNERS[kind] = getattr(importlib.import_module(module), name)
    if runner is None:
        # Left to the queue's redrive policy: it lands in the dead-letter queue for an operator.
        raise UnknownJob(f"no runner for job kind {message.get('kind')!r}")
    runner(message)
