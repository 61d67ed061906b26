"""Long jobs, one chunk per message. Later issues register their job kinds here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)

JobRunner = Callable[[dict[str, Any]], None]
RUNNERS: dict[str, JobRunner] = {}


class UnknownJob(Exception):
    pass


def register(kind: str) -> Callable[[JobRunner], JobRunner]:
    def wrap(fn: JobRunner) -> JobRunner:
        RUNNERS[kind] = fn
        return fn

    return wrap


def run_job_message(body: str) -> None:
    message = json.loads(body)
    runner = RUNNERS.get(message.get("kind", ""))
    if runner is None:
        # Left to the queue's redrive policy: it lands in the dead-letter queue for an operator.
        raise UnknownJob(f"no runner for job kind {message.get('kind')!r}")
    runner(message)
