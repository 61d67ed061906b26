"""Loading the template's handler modules, as Lambda would, and invoking them.

Each loaded copy of a module is one "instance": its module-level state (the
resolver, clients) is its own, as in a Lambda execution environment. The local
stack runs each instance in a process of its own (``devstack.workers``): no
process ever runs two invocations at once, as in Lambda, where Powertools keeps
the current event on a class every resolver of the process shares.
``FunctionPool`` here runs them in the calling process instead, for tests and
benchmarks that invoke handlers one after the other; it too runs one invocation
at a time in this process.

Every AWS call a loaded function makes (at import, in its handler, and in work
it hands to a thread pool) is checked against the actions its template policy
allows, and denied as AWS would deny it: see ``devstack.iam``.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from devstack import clock, iam
from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION, FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


class Invoker(Protocol):
    """What the gateway and the event pumps invoke: ``FunctionPool`` here, ``devstack.workers.WorkerPool``
    in the local stack."""

    spec: FunctionSpec

    def invoke(self, event: dict[str, Any], wait_s: float | None = None) -> Any: ...


_counter = itertools.count()


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _deadline_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def function_arn(spec: FunctionSpec) -> str:
    return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{spec.logical_id}"


def setting(spec: FunctionSpec, name: str, globals_: dict[str, Any] | None, default: Any) -> Any:
    """A function property as CloudFormation sees it: the function's own, else the template's Globals, else
    Lambda's default (``globals_`` is the template's ``Globals.Function``)."""
    return spec.properties.get(name, (globals_ or {}).get(name, default))


def lambda_context(spec: FunctionSpec, request_id: str, deadline_ms: int) -> LambdaContext:
    return LambdaContext(
        function_name=spec.logical_id,
        memory_limit_in_mb=int(spec.properties.get("MemorySize", 512)),
        aws_request_id=request_id,
        invoked_function_arn=function_arn(spec),
        log_group_name=f"/aws/lambda/{spec.logical_id}",
        _deadline_ms=deadline_ms,
    )


def load_handler(spec: FunctionSpec) -> Handler:
    """Import a fresh copy of the function's module and return its handler, both held to the function's
    policy actions (``devstack.iam``): a call the policy does not allow fails with AccessDenied."""
    iam.install()
    policy = iam.policy_for(spec)
    name = f"devstack_fn_{spec.logical_id}_{next(_counter)}"
    module_spec = importlib.util.spec_from_file_location(name, spec.module_path)
    assert module_spec
    assert module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    with iam.running(policy):
        module_spec.loader.exec_module(module)
    return iam.wrap_handler(getattr(module, spec.handler_name), policy)


# An in-process pool runs one invocation at a time in this process, whoever calls it.
_in_process = threading.Lock()


class FunctionPool:
    """Instances of one function in this process: a free one serves each invocation, a new one is loaded when
    all are busy; invocations are serialized (one at a time in the process, as a Lambda instance runs them)."""

    def __init__(self, spec: FunctionSpec, max_instances: int = 16) -> None:
        self.spec = spec
        self.timeout_s = float(spec.properties.get("Timeout", 10))
        self._free: list[Handler] = []
        self._count = 0
        self._max = max_instances
        self._lock = threading.Condition()

    def _acquire(self) -> Handler:
        with self._lock:
            while not self._free and self._count >= self._max:
                self._lock.wait()
            if self._free:
                return self._free.pop()
            self._count += 1
        try:
            return load_handler(self.spec)
        except BaseException:
            with self._lock:
                self._count -= 1
                self._lock.notify()
            raise

    def _release(self, handler: Handler) -> None:
        with self._lock:
            self._free.append(handler)
            self._lock.notify()

    def invoke(self, event: dict[str, Any], wait_s: float | None = None) -> Any:
        handler = self._acquire()
        try:
            context = lambda_context(self.spec, str(uuid.uuid4()), int(time.time() * 1000) + int(self.timeout_s * 1000))
            with _in_process:
                clock.apply()
                return handler(event, context)
        finally:
            self._release(handler)
