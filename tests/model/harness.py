"""The whole stack in this process, driven by hand: the local stack's moto server holding the template's
resources, the real function handlers (one loaded copy each, as the local stack loads them) reached through
the local gateway's routing and Lambda HTTP API events, and the local stack's event pumps (stream, jobs
queue, S3 notifications) stepped until nothing is left instead of running in threads.

moto's in-process mock (``mock_aws``) costs ~40 ms a call (it matches every request against every
service's URL patterns); its server answers in a few ms, so the server is used. Because the domain layer
caches its clients, the emulator's endpoint must be in the environment before the first one is made:
use this from its own pytest process (``make model``), never next to tests that use ``mock_aws``.

No threads of our own and no sleeping but the faults' (a failed message's scaled visibility timeout, the
read lags, which drain() waits out as the local stack's does): a step of a model-based test is a few handler
calls and a drain, so hundreds of random sequences fit in CI. ``reset()`` empties the emulator (moto's reset
API) and creates the resources anew for the next sequence, while the loaded handlers are kept.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from devstack import ddb_faults, faults
from devstack.emulator import Emulator, apply_environment, create_resources, free_port
from devstack.functions import FunctionPool
from devstack.gateway import Gateway, http_event
from devstack.pumps import Pump, StreamPump
from devstack.stack import wire
from devstack.template import Template


class CachedEmulator(Emulator):
    """The local stack's moto server, with one boto3 client per service (making one costs ~0.4 s)."""

    def __init__(self, port: int) -> None:
        from werkzeug.serving import WSGIRequestHandler

        # Keep-alive: werkzeug answers HTTP/1.0 by default, so every AWS call paid a new connection.
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        super().__init__(port)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = super().client(service)
        return self._clients[service]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


class InProcessStack:
    def __init__(self) -> None:
        self._env_before = dict(os.environ)
        self.template = Template()
        self.emulator = CachedEmulator(free_port())
        self.emulator.start()
        self.stop = threading.Event()
        self.pumps: list[Pump] = []
        self.pools: dict[str, FunctionPool] = {}
        self.gateway: Gateway | None = None
        self.real_wait = os.environ.get("MODEL_REAL_WAIT") == "1"
        self.reset()

    # -- lifecycle
    def reset(self, fault_spec: str | None = None, seed: int | None = None) -> None:
        """An empty account: every resource created anew from the template; the handlers stay loaded. The faults
        are configured anew (``fault_spec``, else ``DEVSTACK_FAULTS``, else the defaults; ``seed`` replays)."""
        from salon.settings import get_settings

        faults.configure(fault_spec, seed=seed)
        ddb_faults.reset()  # the write log's images are of the tables about to be emptied
        requests.post(f"{self.emulator.endpoint}/moto-api/reset", timeout=30).raise_for_status()
        self.resources = create_resources(self.emulator, self.template)
        apply_environment(self.template, self.emulator.endpoint)
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("MODEL_LOG_LEVEL", "WARNING")
        get_settings.cache_clear()
        functions = self.template.functions()
        if not self.pools:
            self.pools = {name: FunctionPool(spec, max_instances=1) for name, spec in functions.items()}
            self.gateway = Gateway(self.template.http_routes(), self.pools, None, b"", "")
        self.pumps = []
        for name, spec in functions.items():
            for event in spec.events.values():
                # The local stack's wiring; one SQS poller each, which drain() steps by hand. No schedules: the
                # jobs sweep is the stack's (tests/integration), a sequence's steps are seconds apart at most.
                pump = wire(
                    self.emulator, self.template, self.resources, spec, event, self.pools[name], self.stop, pollers=1
                )
                if pump is not None:
                    self.pumps.append(pump)

    def close(self) -> None:
        from salon.settings import get_settings

        self.emulator.stop()
        os.environ.clear()
        os.environ.update(self._env_before)
        get_settings.cache_clear()

    def client(self, service: str) -> Any:
        """A client of the emulator (for checks straight on the table)."""
        return self.emulator.client(service)

    # -- events
    def drain(self, max_rounds: int = 500, drain_timeout_s: float = 60.0) -> int:
        """Step every pump until a whole round finds nothing: the stream's records, then the jobs they
        enqueued, then the records those jobs wrote... Returns the number of deliveries."""
        delivered = 0
        deadline = time.monotonic() + drain_timeout_s
        rounds = 0
        while rounds < max_rounds:
            worked = [pump.step() for pump in self.pumps]
            delivered += sum(worked)
            if any(worked):
                rounds += 1
                continue
            if not all(pump.settled() for pump in self.pumps):
                # A failed message waits out its (scaled) visibility timeout, a reordered batch is held back.
                if time.monotonic() > deadline:
                    pending = [pump.name for pump in self.pumps if not pump.settled()]
                    raise AssertionError(f"events still pending after {drain_timeout_s} s: {pending}")
                time.sleep(0.02)
                continue
            # As the local stack's drain: settled also means every lagging read (GSI, or a base-table read
            # without ConsistentRead) sees the last write, which takes up to max(gsi_lag_ms, read_lag_ms); the
            # write log knows when exactly. The harness steps that wait by hand as it steps the pumps: what the
            # wait would do (every logged write visible, every transaction's conflict window over) is done at
            # once, so hundreds of sequences still fit in CI (MODEL_REAL_WAIT=1 sleeps instead). Within a step,
            # between a drain and the next, every lag and window applies as on the stack.
            if self.real_wait:
                wait = ddb_faults.caught_up_at() - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            else:
                ddb_faults.reset()
            return delivered
        raise AssertionError(f"events still flowing after {max_rounds} rounds")

    def failed_stream_batches(self) -> int:
        return sum(p.failed_batches for p in self.pumps if isinstance(p, StreamPump))

    # -- HTTP
    def request(
        self,
        sub: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        groups: list[str] | None = None,
    ) -> Reply:
        """What the gateway hands the function for a request with a valid token for ``sub``."""
        assert self.gateway is not None
        method = method.upper()
        route, path_params, _ = self.gateway.match(method, path)
        if route is None:
            return Reply(404, {}, '{"message":"Not Found"}')
        body = b"" if json_body is None else json.dumps(json_body).encode()
        hdrs = {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}}
        claims: dict[str, Any] = {"sub": sub, "token_use": "id"}
        if groups:
            claims["cognito:groups"] = groups
        query = urlencode(params or {})
        event = http_event(route, method, path, query, hdrs, body, claims, path_params)
        result = self.pools[route.function].invoke(event)
        return Reply(
            int(result["statusCode"]),
            {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()},
            str(result.get("body") or ""),
        )
