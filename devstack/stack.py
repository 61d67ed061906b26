"""The whole local stack in one object: emulator, resources, API and event pumps."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from devstack import faults, tokens
from devstack.async_invoke import AsyncS3Pump
from devstack.emulator import Emulator, LocalResources, apply_environment, create_resources
from devstack.functions import setting
from devstack.gateway import Gateway, make_server
from devstack.openapi import SWAGGER_HTML, build_openapi
from devstack.pumps import Pump, SqsPump, StreamPump, time_scale
from devstack.schedules import Scheduler
from devstack.template import FunctionSpec, Template
from devstack.ttl import TtlSweeper
from devstack.workers import WorkerPool

log = logging.getLogger("devstack")


class LocalStack:
    def __init__(self, api_port: int, emulator_port: int, host: str = "127.0.0.1", key_dir: Path | None = None) -> None:
        self.host = host
        self.api_port = api_port
        self.emulator = Emulator(emulator_port)
        self.template = Template()
        self.key_dir = key_dir
        self.stop_event = threading.Event()
        self.pumps: list[Pump] = []
        self.ttl = TtlSweeper(self.stop_event)  # moto never deletes expired items; AWS does
        self.schedules = Scheduler(self.stop_event)  # EventBridge schedules (the jobs sweep) on the stack's clock
        self.resources: LocalResources | None = None
        self._server: Any = None
        self._openapi: dict[str, Any] | None = None
        self._openapi_lock = threading.Lock()
        self.pools: dict[str, WorkerPool] = {}

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def start(self) -> None:
        self.emulator.start()
        self.resources = create_resources(self.emulator, self.template)
        apply_environment(self.template, self.emulator.endpoint)
        functions = self.template.functions()
        globals_ = self.template.doc.get("Globals", {}).get("Function", {})
        # Each function in worker processes of its own, one invocation at a time each (devstack.workers),
        # started with this process's environment as apply_environment just set it.
        # Timeouts are the template's times DEVSTACK_TIMEOUT_SCALE (2): one 2-core machine runs the emulator and
        # every function, where Lambda gives each instance its own share of a core.
        scale = float(os.environ.get("DEVSTACK_TIMEOUT_SCALE", "2"))
        self.pools = pools = {
            name: WorkerPool(spec, float(setting(spec, "Timeout", globals_, 3)) * scale)
            for name, spec in functions.items()
        }
        for name, spec in functions.items():
            for event in spec.events.values():
                self._wire(spec, event, pools[name])
        gateway = Gateway(
            self.template.http_routes(), pools, self._openapi_doc, tokens.public_key_pem(self.key_dir), SWAGGER_HTML
        )
        gateway.drain = self.drain
        self._server = make_server(gateway, self.host, self.api_port)
        threading.Thread(target=self._server.serve_forever, name="api", daemon=True).start()
        for pump in self.pumps:
            pump.start()
        self.ttl.start()
        self.schedules.start()
        # One warm worker per function, two starting at a time, in the background: the API answers at once, and
        # a function's first request does not pay its import.
        # The OpenAPI document first (GET /openapi.json, /docs), then the workers.
        threading.Thread(target=self._prewarm, name="prewarm", daemon=True).start()

    def _prewarm(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        try:
            self._openapi_doc()
        except Exception:  # GET /openapi.json reports it
            log.exception("could not build the OpenAPI document")
        count = int(os.environ.get("DEVSTACK_PREWARM", "1"))
        if count <= 0:
            return

        def warm(pool: WorkerPool) -> None:
            if self.stop_event.is_set():
                return
            try:
                pool.warm(count)
            except Exception:  # the function's first invocation reports it
                if not self.stop_event.is_set():
                    log.exception("could not pre-warm %s", pool.spec.logical_id)

        with ThreadPoolExecutor(2, thread_name_prefix="prewarm") as starters:
            list(starters.map(warm, self.pools.values()))

    def _wire(self, spec: FunctionSpec, event: dict[str, Any], pool: WorkerPool) -> None:
        assert self.resources is not None
        pump = wire(
            self.emulator, self.template, self.resources, spec, event, pool, self.stop_event, schedules=self.schedules
        )
        if pump is not None:
            self.pumps.append(pump)

    def _openapi_doc(self) -> dict[str, Any]:
        # Built once, by the first caller (the start-up thread, usually): the main process imports the functions'
        # modules only for it, their invocations run in the workers.
        with self._openapi_lock:
            if self._openapi is None:
                self._openapi = build_openapi(self.template)
            return self._openapi

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every pump is idle: the stream and the queues have nothing left to deliver, no batch is in
        flight in a worker and no message waits to be retried."""
        deadline = time.monotonic() + timeout_s
        started = {pump: pump.polls for pump in self.pumps}
        while time.monotonic() < deadline:
            # Two finished polls since we began means one began after us and saw everything written before.
            if all(p.polls >= started[p] + 2 and p.idle_streak >= 2 for p in self.pumps) and all(
                p.settled() for p in self.pumps
            ):
                # Settled also means the indexes caught up: the last write an event made shows in a
                # lagging index read (GSI, or a base-table read without ConsistentRead) only after the lag.
                time.sleep(max(faults.rate("gsi_lag_ms"), faults.rate("read_lag_ms")) / 1000)
                return
            time.sleep(0.02)
        raise TimeoutError("events still flowing")

    def stop(self) -> None:
        self.stop_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for pump in self.pumps:
            pump.join(timeout=2)
        for pool in self.pools.values():
            pool.close()
        if self.ttl.is_alive():
            self.ttl.join(timeout=2)
        if self.schedules.is_alive():
            self.schedules.join(timeout=2)
        self.emulator.stop()


def wire(
    emulator: Emulator,
    template: Template,
    resources: LocalResources,
    spec: FunctionSpec,
    event: dict[str, Any],
    pool: Any,
    stop: threading.Event,
    *,
    schedules: Scheduler | None = None,
    pollers: int | None = None,
) -> Pump | None:
    """The event source of one of a function's template events, as Lambda runs it (the local stack's and the
    model-based test's harness's wiring). ``pollers`` overrides the SQS pollers (1: one that ``step()`` drives by
    hand); a Schedule is added to ``schedules`` (none: not wired)."""
    kind, props = event["Type"], event.get("Properties", {})
    if kind == "DynamoDB":
        table = props["Stream"]["Fn::GetAtt"][0]
        stream = StreamPump(emulator, resources.stream_arns[table], pool, event, stop)
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if destination:
            stream.failure_queue_url = resources.queues[destination["Fn::GetAtt"][0]]
        return stream
    if kind == "SQS":
        queue = props["Queue"]["Fn::GetAtt"][0]
        queue_props = template.resources[queue].get("Properties") or {}
        visibility = int(queue_props.get("VisibilityTimeout", 30))  # SQS's default
        return SqsPump(
            emulator,
            resources.queues[queue],
            pool,
            int(props.get("BatchSize", 10)),
            stop,
            # More pollers than instances: a batch received with none free is throttled, as on AWS.
            pollers=pool.concurrency + 1 if pollers is None else pollers,
            visibility_timeout_s=max(1, round(visibility * time_scale())),
            partial="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        )
    if kind == "Schedule":
        if schedules is not None:
            name = next(k for k, v in spec.events.items() if v is event)
            schedules.add(spec.logical_id, name, props, pool)
        return None
    if kind == "S3":  # asynchronous: retries, then the on-failure destination (devstack.async_invoke)
        config = pool.spec.properties.get("EventInvokeConfig") or {}
        target = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        destination = resources.queues[target["Fn::GetAtt"][0]] if target else None
        return AsyncS3Pump(emulator, resources.s3_events_queue_url, pool, stop, config, destination)
    return None
