"""Long jobs, one chunk per message. Later issues register their job kinds here.

Every job is also written down while it runs (``salon.data.jobs_repo``): ``enqueue`` records the message of the
job's next chunk and the time, before it sends it; a chunk that enqueues no next one ends the job. A chunk that
is lost (a message parked in the dead-letter queue after throttled receives, a send that never happened) leaves
its job's record behind, and ``sweep`` (every five minutes, from the schedule) sends that chunk again. Chunks are
idempotent, so a resent chunk that was only slow does its work twice, harmlessly (D44).
"""

from __future__ import annotations

import contextvars
import json
import secrets
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


# The ids that name one job of each kind: a replayed start, or the next chunk, is the same job.
JOB_KEYS = {
    "import": ("studio_id", "pro_id"),
    "departure": ("studio_id", "pro_id"),
    "refan_member": ("pro_id",),
    "studio_plan": ("studio_id",),
    "delete_client": ("client_id",),
}
# Jobs whose progress the member item shows (GET /studios/{sid}/members/{pro}).
MEMBER_JOBS = ("import", "departure")
STALE_S = 15 * 60  # no progress for this long: the sweeper resends the job's chunk
MAX_WAIT_S = 6 * 3600  # the wait doubles with each resend, up to this
_running: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("running_job", default=None)
_continued: contextvars.ContextVar[bool] = contextvars.ContextVar("job_continued", default=False)


def job_key(kind: str, payload: dict[str, Any]) -> str | None:
    names = JOB_KEYS.get(kind)
    if names is None or any(not isinstance(payload.get(name), str) for name in names):
        return None
    return "#".join(str(payload[name]) for name in names)


def _send(body: str) -> None:
    global _sqs
    import boto3

    from salon.settings import get_settings

    if _sqs is None:
        _sqs = boto3.client("sqs")
    _sqs.send_message(QueueUrl=get_settings().jobs_queue_url, MessageBody=body)


def enqueue(kind: str, **payload: Any) -> None:
    """Put one chunk of long work on the jobs queue, and record it as the job's next chunk first."""
    from salon import clock
    from salon.data import jobs_repo

    payload.pop("job_token", None)
    key = job_key(kind, payload)
    message = {"kind": kind, **payload}
    if key is not None:
        message["job_token"] = secrets.token_hex(8)
        body = json.dumps(message)
        old = jobs_repo.register(kind, key, body, message["job_token"], int(clock.epoch_s()))
        if _running.get() == (kind, key):
            _continued.set(True)
        if old.get("state", {}).get("S") == "stalled" and kind in MEMBER_JOBS:
            jobs_repo.mark_member(payload["studio_id"], payload["pro_id"], None, None)  # moving again
    else:
        body = json.dumps(message)
    _send(body)


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
    key = job_key(kind, message)
    running, continued = _running.set((kind, key) if key else None), _continued.set(False)
    try:
        runner(message)
        if key is not None and not _continued.get() and isinstance(message.get("job_token"), str):
            from salon.data import jobs_repo

            jobs_repo.finish(kind, key, message["job_token"])  # the last chunk: the job is over
    finally:
        _running.reset(running)
        _continued.reset(continued)


def _iso(epoch_s: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sweep() -> dict[str, int]:
    """Resend the next chunk of every job that made no progress for ``STALE_S`` (doubling with each resend).

    The registry is read with consistent Queries of the base table, and each resend is conditional on the job
    not having moved since, so two sweeps, or a sweep racing the chunk itself, never resend a chunk that moved.
    """
    from salon import clock
    from salon.data import jobs_repo
    from salon.data.keys import JOB_SHARDS

    now = int(clock.epoch_s())
    counts = {"running": 0, "resent": 0}
    for shard in range(JOB_SHARDS):
        for job in jobs_repo.running(shard):
            counts["running"] += 1
            since = max(job.progress_s, job.swept_s or 0)
            if now - since < min(STALE_S * 2**job.retries, MAX_WAIT_S):
                continue
            if not jobs_repo.mark_swept(job, now):
                continue
            logger.warning(
                "resending a stalled job", extra={"kind": job.kind, "job_key": job.job_key, "retries": job.retries + 1}
            )
            if job.kind in MEMBER_JOBS:
                studio_id, pro_id = job.job_key.split("#", 1)
                jobs_repo.mark_member(studio_id, pro_id, job.retries + 1, _iso(job.progress_s))
            _send(job.message)
            counts["resent"] += 1
    logger.info("jobs swept", extra=counts)
    return counts
