"""Lambda's execution model in the local stack (devstack.workers): an execution environment serves one
invocation at a time, concurrency is capped, a timed-out invocation is killed, a crashed environment is
replaced, and the IAM checks and the clock hold inside every worker.

https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html ("Each execution environment
processes one request at a time"), https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html.
"""

from __future__ import annotations

import itertools
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack import clock, iam
from devstack.template import FunctionSpec
from devstack.workers import FunctionTimeout, InvocationError, Throttled, WorkerCrashed, WorkerPool

PROBE = """
import os, time
import boto3

LOADED_AT = time.time()
COUNT = [0]


def handler(event, context):
    COUNT[0] += 1
    started = time.time()
    what = event.get("do")
    if what == "sleep":
        time.sleep(event["s"])
    elif what == "exit":
        os._exit(3)
    elif what == "raise":
        raise ValueError("bad input " + event.get("why", ""))
    elif what == "put":
        boto3.client("dynamodb", region_name="us-east-1").put_item(TableName="t", Item={"pk": {"S": "x"}})
    elif what == "clock":
        from salon import clock
        return {"offset": clock._offset_s}
    return {"pid": os.getpid(), "start": started, "end": time.time(), "count": COUNT[0], "id": event.get("id"),
            "remaining_ms": context.get_remaining_time_in_millis(), "env": os.environ.get("PROBE_ENV")}
"""


@pytest.fixture
def probe(tmp_path: Path) -> FunctionSpec:
    (tmp_path / "app.py").write_text(textwrap.dedent(PROBE))
    allow = {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"}]}
    return FunctionSpec("ProbeFunction", tmp_path, "app.handler", {"Policies": [allow]}, {})


@pytest.fixture
def pool(probe: FunctionSpec) -> Iterator[WorkerPool]:
    env = {**os.environ, "PROBE_ENV": "from-the-stack", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    env.pop("AWS_ENDPOINT_URL", None)
    pool = WorkerPool(probe, timeout_s=2.0, env=env, concurrency=3)
    yield pool
    pool.close()


def test_no_worker_ever_runs_two_invocations_at_once(pool: WorkerPool) -> None:
    """18 concurrent invocations, concurrency 3: at most 3 processes, and in each one the invocations
    never overlap (each starts after the previous one ended); every caller gets its own answer."""
    with ThreadPoolExecutor(9) as threads:
        results = list(threads.map(lambda i: pool.invoke({"do": "sleep", "s": 0.15, "id": i}), range(18)))
    assert [r["id"] for r in results] == list(range(18))
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_pid.setdefault(r["pid"], []).append(r)
    assert 1 < len(by_pid) <= 3
    assert os.getpid() not in by_pid
    for runs in by_pid.values():
        runs.sort(key=lambda r: r["start"])
        for before, after in itertools.pairwise(runs):
            assert after["start"] >= before["end"], (before, after)
        assert [r["count"] for r in runs] == list(range(1, len(runs) + 1))  # one module copy, kept warm


def test_workers_get_the_stack_environment_and_a_lambda_context(pool: WorkerPool) -> None:
    result = pool.invoke({})
    assert result["env"] == "from-the-stack"
    assert 0 < result["remaining_ms"] <= 2000


def test_callers_are_served_first_come_first_served_and_throttled_when_they_will_not_wait(
    probe: FunctionSpec,
) -> None:
    pool = WorkerPool(probe, timeout_s=5.0, concurrency=1)
    try:
        pool.warm(1)
        order: list[int] = []
        lock = threading.Lock()

        def call(i: int) -> None:
            pool.invoke({"do": "sleep", "s": 0.2})
            with lock:
                order.append(i)

        with ThreadPoolExecutor(6) as threads:
            calls = []
            for i in range(5):
                calls.append(threads.submit(call, i))
                time.sleep(0.05)  # each caller arrives after the one before
            with pytest.raises(Throttled) as throttled:
                pool.invoke({}, wait_s=0)
            assert throttled.value.error_type == "TooManyRequestsException"
            for f in calls:
                f.result()
        assert order == [0, 1, 2, 3, 4]
        assert pool.throttles == 1
    finally:
        pool.close()


def test_an_invocation_past_the_timeout_is_killed_and_its_worker_replaced(pool: WorkerPool) -> None:
    first = pool.invoke({})["pid"]
    started = time.monotonic()
    with pytest.raises(FunctionTimeout) as timed_out:
        pool.invoke({"do": "sleep", "s": 30})
    assert time.monotonic() - started < 5
    assert timed_out.value.error_type == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in timed_out.value.message
    later = {pool.invoke({})["pid"] for _ in range(3)}
    assert first not in later or len(later) == 1  # the killed worker is gone; a fresh one answers


def test_a_crashed_worker_is_replaced(pool: WorkerPool) -> None:
    with pytest.raises(WorkerCrashed) as crashed:
        pool.invoke({"do": "exit"})
    assert crashed.value.error_type == "Runtime.ExitError"
    assert pool.invoke({})["count"] >= 1
    assert pool.crashes == 1


def test_a_function_error_carries_its_type_message_and_trace_and_the_worker_stays(pool: WorkerPool) -> None:
    pid = pool.invoke({})["pid"]
    with pytest.raises(InvocationError) as failed:
        pool.invoke({"do": "raise", "why": "here"})
    assert failed.value.error_type == "ValueError"
    assert failed.value.message == "bad input here"
    assert "app.py" in failed.value.trace
    assert pool.invoke({})["pid"] == pid


def test_iam_denials_in_a_worker_reach_this_process(pool: WorkerPool) -> None:
    iam.take_denials()
    with pytest.raises(InvocationError) as denied:
        pool.invoke({"do": "put"})
    assert denied.value.error_type == "ClientError"
    assert "dynamodb:PutItem" in denied.value.message
    assert iam.take_denials() == [iam.Denial("ProbeFunction", "dynamodb:PutItem", "PutItem")]


def test_the_stack_clock_offset_reaches_the_worker(pool: WorkerPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_offset_s", 86400.0 * 3)
    assert pool.invoke({"do": "clock"}) == {"offset": 86400.0 * 3}
