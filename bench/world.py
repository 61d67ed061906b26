"""The functions run in this process against moto, as the local stack runs them, with every AWS call counted.

``World`` creates the template's resources in moto's in-process mock, sets the
functions' environment from the template, loads each function's module once (a
warm instance) and invokes it with the events Lambda would send: HTTP API
events for routes, stream and queue events through the local stack's own pumps
(``settle()`` runs them until nothing is left to deliver).

Counting patches ``botocore.client.BaseClient._make_api_call``, the one place
every botocore, boto3 and pynamodb call goes through, so a route's count
includes its access read, its transaction and anything a library does behind
its back. Threads count too (the Client Log reads concurrently).
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from devstack import moto_patches
from devstack.emulator import LocalResources, create_resources
from devstack.functions import FunctionPool, LambdaContext
from devstack.gateway import http_event
from devstack.pumps import SqsPump, StreamPump, matches, s3_event_from_messages
from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION, HttpRoute, Template

BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": LOCAL_REGION,
    "AWS_REGION": LOCAL_REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    started: float = 0.0
    ended: float = 0.0


@dataclass
class CallCounter:
    """Every AWS API call made while ``active``, by service and operation."""

    calls: list[Call] = field(default_factory=list)
    active: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, service: str, operation: str, started: float, ended: float) -> None:
        if self.active:
            with self._lock:
                self.calls.append(Call(service, operation, started, ended))

    def overlapped(self) -> bool:
        """Whether any two counted calls were in flight at the same time (made concurrently)."""
        spans = sorted((c.started, c.ended) for c in self.calls)
        return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))

    @contextmanager
    def counting(self) -> Iterator[list[Call]]:
        with self._lock:
            self.calls = []
        self.active = True
        try:
            yield self.calls
        finally:
            self.active = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        was, self.active = self.active, False
        try:
            yield
        finally:
            self.active = was

    def of(self, service: str) -> list[str]:
        return [c.operation for c in self.calls if c.service == service]


_counter = CallCounter()
_installed: list[Any] = []


def install_counter() -> CallCounter:
    """Count every botocore call in this process (idempotent)."""
    import botocore.client

    if not _installed:
        original = botocore.client.BaseClient._make_api_call

        def counted(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            started = time.perf_counter()
            try:
                return original(self, operation_name, api_params)
            finally:
                _counter.record(self.meta.service_model.service_name, operation_name, started, time.perf_counter())

        botocore.client.BaseClient._make_api_call = counted
        _installed.append(original)
    return _counter


class InProcessStreamPump(StreamPump):
    """The local stack's stream pump, reading moto's in-process shard directly (moto's in-process
    DynamoDB Streams API answers "not yet implemented"); batching, filters and retries are the pump's own."""

    def __init__(self, table_name: str, *args: Any) -> None:
        super().__init__(*args)
        self.table_name = table_name
        self._position = 0

    def _fetch(self) -> None:
        from moto.dynamodb.models import dynamodb_backends

        shard = dynamodb_backends[LOCAL_ACCOUNT][LOCAL_REGION].tables[self.table_name].stream_shard
        records = shard.items[self._position :]
        self._position += len(records)
        for record in records:
            event = self.lambda_record(record.to_json())
            if not self.filters or any(matches(f, event) for f in self.filters):
                self._pending.append(event)


class InProcessAws:
    """The emulator's interface (``client``), backed by moto's in-process mock."""

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=LOCAL_REGION)


def function_environment(template: Template) -> dict[str, str]:
    env: dict[str, str] = {}
    for fn in template.functions().values():
        env.update(template.function_environment(fn))
    env.update(BASE_ENV)
    return env


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    json: Any

    def __getitem__(self, key: str) -> Any:
        return self.json[key]


class World:
    """The stack in this process. Create it inside ``moto.mock_aws()``."""

    def __init__(self, template: Template | None = None) -> None:
        self.template = template or Template()
        self.aws = InProcessAws()
        moto_patches.apply()  # the local stack's fixes to moto's stream across cancelled transactions
        self.resources: LocalResources = create_resources(self.aws, self.template)  # type: ignore[arg-type]
        os.environ.pop("AWS_ENDPOINT_URL", None)
        os.environ.update(function_environment(self.template))
        from salon.settings import get_settings

        get_settings.cache_clear()  # the queue URLs above, whatever an earlier user of this process read
        self.specs = self.template.functions()
        self.pools = {name: FunctionPool(spec) for name, spec in self.specs.items()}
        self.routes: list[HttpRoute] = self.template.http_routes()
        self.counter = install_counter()
        self._pumps: list[Any] | None = None
        self.ddb = self.aws.client("dynamodb")
        self.table = self.resources.tables["RecordsTable"]

    # ------------------------------------------------------------------ HTTP
    def route_for(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]]:
        for route in self.routes:
            match = route.regex.match(path)
            if match and route.method == method:
                return route, dict(zip(route.params, match.groups(), strict=True))
        raise LookupError(f"no route for {method} {path}")

    def call(
        self,
        method: str,
        path: str,
        sub: str,
        body: Any = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        groups: list[str] | None = None,
    ) -> Response:
        route, params = self.route_for(method, path)
        raw = json.dumps(body).encode() if body is not None else b""
        hdrs = {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}}
        claims: dict[str, Any] = {"sub": sub}
        if groups:
            claims["cognito:groups"] = groups
        event = http_event(route, method, path, query, hdrs, raw, claims, params)
        result = self.pools[route.function].invoke(event)
        text = result.get("body") or ""
        return Response(
            int(result["statusCode"]), dict(result.get("headers") or {}), json.loads(text) if text else None
        )

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.pools[function].invoke(event)

    def context(self, function: str) -> LambdaContext:
        return LambdaContext(function_name=function, _deadline_ms=int(time.time() * 1000) + 600_000)

    # --------------------------------------------------------------- events
    def pumps(self) -> list[Any]:
        if self._pumps is None:
            stop = threading.Event()
            pumps: list[Any] = []
            for name, spec in self.specs.items():
                for event in spec.events.values():
                    kind, props = event["Type"], event.get("Properties", {})
                    if kind == "DynamoDB":
                        table = props["Stream"]["Fn::GetAtt"][0]
                        arn = self.resources.stream_arns[table]
                        pumps.append(
                            InProcessStreamPump(
                                self.resources.tables[table], self.aws, arn, self.pools[name], event, stop
                            )
                        )
                    elif kind == "SQS":
                        url = self.resources.queues[props["Queue"]["Fn::GetAtt"][0]]
                        size = int(props.get("BatchSize", 10))
                        pumps.append(SqsPump(self.aws, url, self.pools[name], size, stop))  # type: ignore[arg-type]
                    elif kind == "S3":
                        url = self.resources.s3_events_queue_url
                        pumps.append(
                            SqsPump(self.aws, url, self.pools[name], 10, stop, transform=s3_event_from_messages)  # type: ignore[arg-type]
                        )
            self._pumps = pumps
        return self._pumps

    def settle(self, max_rounds: int = 10_000) -> int:
        """Deliver stream records, S3 events and queued jobs until none are left; returns the deliveries."""
        delivered = 0
        idle_rounds = 0
        for _ in range(max_rounds):
            worked = [p.step() for p in self.pumps()]
            delivered += sum(worked)
            idle_rounds = 0 if any(worked) else idle_rounds + 1
            if idle_rounds >= 2:
                return delivered
        raise RuntimeError("events still flowing")

    # ---------------------------------------------------------------- table
    def count_items(self, pk: str, sk_prefix: str = "") -> int:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :sk)" if sk_prefix else ""),
            "ExpressionAttributeValues": {":pk": {"S": pk}, **({":sk": {"S": sk_prefix}} if sk_prefix else {})},
            "Select": "COUNT",
        }
        total = 0
        while True:
            resp = self.ddb.query(**kwargs)
            total += int(resp["Count"])
            if "LastEvaluatedKey" not in resp:
                return total
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


@contextmanager
def quiet_heap() -> Iterator[None]:
    """Around a timed section: what is alive (moto's tables of tens of thousands of items) is moved out of the
    collector's way and the collector rests until the section ends. The emulator's table lives in this
    process, unlike DynamoDB's, and full collections walked all of it at moments that fell on the import in
    one run and on its floor in the next (an import's floor alone varied 7.4-10.2 s). Both sides of every
    ratio are timed alike."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
