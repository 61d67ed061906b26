"""Lambda's execution model for the local stack: each function runs in worker processes, each worker one
invocation at a time.

A Lambda execution environment serves one invocation at a time; concurrent invocations run in other
environments. Code may rely on it: Powertools keeps the current event on a class attribute
(``BaseRouter.current_event``) that every resolver of the process shares, so two invocations in one
process read each other's events. So the local stack never runs two in one process: a ``WorkerPool``
holds up to ``concurrency`` worker processes of one function (``python -m devstack.worker``, started with
the stack's environment, each loading the function's module once as Lambda would), and hands each
invocation to a free one, first come first served.

- Concurrency: the function's ``ReservedConcurrentExecutions`` if the template sets it, else
  ``DEVSTACK_CONCURRENCY`` (default 4), and never more than ``DEVSTACK_MAX_CONCURRENCY`` (default 4):
  the template's seven functions hold at most 28 processes on a 2-core machine, and no more than 4 job
  chunks compete with the API for the one emulator process. Workers start on first
  need and stay warm.
- Timeout: an invocation still running after the function's ``Timeout`` is killed with its worker (the
  next invocation gets a fresh one) and fails with ``Sandbox.Timedout`` "Task timed out after N seconds",
  as Lambda reports it; a worker that dies mid-invocation fails it with ``Runtime.ExitError`` and is
  replaced.
- Throttling: ``invoke(event, wait_s=0)`` raises ``Throttled`` (Lambda's ``TooManyRequestsException``)
  when no worker of the function is free, which the SQS poller counts as a receive, as Lambda's does;
  the gateway waits for a free worker instead (FCFS), within API Gateway's 30 s integration timeout.
- Every worker checks the function's IAM actions (``devstack.iam``, installed by ``load_handler``) and
  sends back the denials it recorded with each answer; they join this process's ``iam.denials()``.
- The clock: each invocation carries ``devstack.clock.offset_s()``, applied in the worker before it runs.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from devstack import clock, iam
from devstack.template import ROOT, FunctionSpec

log = logging.getLogger("devstack.workers")

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 4
INIT_TIMEOUT_S = 60.0  # Lambda allows 10 s of init; a shared 2-core machine importing boto3 needs more


class InvocationError(Exception):
    """An invocation that failed, as Lambda reports it: ``errorType``, ``errorMessage`` and the trace."""

    def __init__(self, error_type: str, message: str, trace: str = "") -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.trace = trace


class FunctionTimeout(InvocationError):
    pass


class WorkerCrashed(InvocationError):
    pass


class Throttled(InvocationError):
    """No instance was free within the function's concurrency (Lambda's TooManyRequestsException)."""


def concurrency_for(spec: FunctionSpec, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    reserved = spec.properties.get("ReservedConcurrentExecutions")
    wanted = int(reserved) if reserved is not None else int(env.get("DEVSTACK_CONCURRENCY", DEFAULT_CONCURRENCY))
    return max(1, min(wanted, int(env.get("DEVSTACK_MAX_CONCURRENCY", MAX_CONCURRENCY))))


class Worker:
    """One worker process and our end of its socket."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str]) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                [sys.executable, "-m", "devstack.worker", str(theirs.fileno())],
                cwd=ROOT,
                env=dict(env),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.spec = spec
        self.pid = self.process.pid
        self.conn.send(spec)
        if not self.conn.poll(INIT_TIMEOUT_S):
            self.kill()
            raise InvocationError("Runtime.InitError", f"{spec.logical_id}: init did not finish in {INIT_TIMEOUT_S} s")
        try:
            reply = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise WorkerCrashed("Runtime.ExitError", f"{spec.logical_id}: the worker died during init") from exc
        iam.record_denials(reply[-1])
        if reply[0] != "ready":
            self.kill()
            _, error_type, message, trace, _ = reply
            raise InvocationError(error_type, message, trace)

    def invoke(self, event: Any, timeout_s: float) -> Any:
        request_id = str(uuid.uuid4())
        deadline_ms = int(time.time() * 1000 + timeout_s * 1000)
        try:
            self.conn.send((event, clock.offset_s(), deadline_ms, request_id))
            if not self.conn.poll(timeout_s):
                self.kill()
                raise FunctionTimeout(
                    "Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
                )
            reply = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            code = self.process.poll()
            raise WorkerCrashed(
                "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
            ) from exc
        iam.record_denials(reply[-1])
        if reply[0] == "ok":
            return reply[1]
        _, error_type, message, trace, _ = reply
        raise InvocationError(error_type, message, trace)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self.conn.closed

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("worker %s of %s did not exit", self.pid, self.spec.logical_id)
        if not self.conn.closed:
            self.conn.close()

    def close(self) -> None:
        """Let the worker end by itself (it ends when its socket closes), then make sure it has."""
        if not self.conn.closed:
            self.conn.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()


class _Turn:
    """A caller waiting for a worker: handed an idle worker, or leave to start one."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.worker: Worker | None = None
        self.may_start = False


class WorkerPool:
    """Up to ``concurrency`` worker processes of one function, each running one invocation at a time."""

    def __init__(
        self,
        spec: FunctionSpec,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        base = dict(os.environ if env is None else env)
        base["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/domain"), str(ROOT)])
        self.env = base
        self.concurrency = concurrency or concurrency_for(spec, base)
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._count = 0  # workers started or starting
        self._busy = 0
        self._turns: deque[_Turn] = deque()
        self._closed = False
        self.invocations = 0
        self.throttles = 0
        self.timeouts = 0
        self.crashes = 0

    # -- what callers see
    @property
    def busy(self) -> int:
        return self._busy

    def free(self) -> int:
        """Invocations that could start now without waiting."""
        with self._lock:
            return len(self._idle) + (self.concurrency - self._count) if not self._turns else 0

    def invoke(self, event: Any, wait_s: float | None = None) -> Any:
        """Run one invocation in a free worker (waiting up to ``wait_s`` for one, forever if None) and return
        its result; raise ``InvocationError`` (or a subclass) as Lambda would report the failure."""
        worker = self._acquire(wait_s)
        healthy = False
        try:
            result = worker.invoke(event, self.timeout_s)
            healthy = True
            return result
        except InvocationError as exc:
            healthy = worker.alive
            if isinstance(exc, FunctionTimeout):
                self.timeouts += 1
            elif isinstance(exc, WorkerCrashed):
                self.crashes += 1
            raise
        finally:
            self.invocations += 1
            self._release(worker if healthy else None)

    def warm(self, count: int = 1) -> None:
        """Start up to ``count`` workers now (the stack may pre-warm; invocations start them anyway)."""
        started: list[Worker] = []
        try:
            for _ in range(min(count, self.concurrency)):
                started.append(self._acquire(0))
        except Throttled:
            pass
        finally:
            for worker in started:
                self._release(worker)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()

    # -- the workers
    def _acquire(self, wait_s: float | None) -> Worker:
        turn: _Turn | None = None
        with self._lock:
            if self._closed:
                raise InvocationError("ServiceException", "the local stack is stopping")
            if not self._turns and self._idle:
                self._busy += 1
                return self._idle.pop()
            if not self._turns and self._count < self.concurrency:
                self._count += 1
                self._busy += 1
            else:
                turn = _Turn()
                self._turns.append(turn)
        if turn is not None:
            if not turn.ready.wait(wait_s):
                with self._lock:
                    if not turn.ready.is_set():
                        self._turns.remove(turn)
                        self.throttles += 1
                        raise Throttled("TooManyRequestsException", "Rate Exceeded.")
            if turn.worker is not None:
                return turn.worker
        return self._start()

    def _start(self) -> Worker:
        try:
            return Worker(self.spec, self.env)
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: Worker | None) -> None:
        """Give the worker (None: a slot whose worker died, or never started) to the first caller waiting."""
        with self._lock:
            if worker is not None and self._closed:
                self._count -= 1
                self._busy -= 1
                closing: Worker | None = worker
            else:
                closing = None
                if self._turns:
                    turn = self._turns.popleft()
                    turn.worker = worker  # None: the turn starts a worker of its own in the freed slot
                    turn.may_start = worker is None
                    turn.ready.set()
                elif worker is not None:
                    self._idle.append(worker)
                    self._busy -= 1
                else:
                    self._count -= 1
                    self._busy -= 1
        if closing is not None:
            closing.close()
