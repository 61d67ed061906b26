"""The whole stack in this process, driven by hand: the local stack's moto server holding the template's
resources, the real function handlers (one loaded copy each, as the local stack loads them) reached through
the local gateway's routing and Lambda HTTP API events, and the local stack's event pumps (stream, jobs
queue, S3 notifications) stepped until nothing is left instead of running in threads.

moto's in-process mock (``mock_aws``) costs ~40 ms a call (it matches every request against every
service's URL patterns); its server answers in a few ms, so the server is used. Because the domain layer
caches its clients, the emulator's endpoint must be in the environment before the first one is made:
use this from its own pytest process (``make model``), never next to tests that use ``mock_aws``.

No threads of our own and no sleeping: a step of a model-based test is a few handler calls and a drain,
so hundreds of random sequences fit in CI. ``reset()`` empties the emulator (moto's reset API) and creates
the resources anew for the next sequence, while the loaded handlers are kept.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from devstack.emulator import Emulator, apply_environment, create_resources, free_port
from devstack.functions import FunctionPool
from devstack.gateway import Gateway, http_event
from devstack.pumps import Pump, SqsPump, StreamPump, s3_event_from_messages
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
        self.reset()

    # -- lifecycle
    def reset(self) -> None:
        """An empty account: every resource created anew from the template; the handlers stay loaded."""
        from salon.settings import get_settings

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
                self._wire(event, self.pools[name])

    def _wire(self, event: dict[str, Any], pool: FunctionPool) -> None:
        kind, props = event["Type"], event.get("Properties", {})
        if kind == "DynamoDB":
            table = props["Stream"]["Fn::GetAtt"][0]
            pump = StreamPump(self.emulator, self.resources.stream_arns[table], pool, event, self.stop)
            destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            if destination:
                pump.failure_queue_url = self.resources.queues[destination["Fn::GetAtt"][0]]
            self.pumps.append(pump)
        elif kind == "SQS":
            queue = self.resources.queues[props["Queue"]["Fn::GetAtt"][0]]
            self.pumps.append(SqsPump(self.emulator, queue, pool, int(props.get("BatchSize", 10)), self.stop))
        elif kind == "S3":
            self.pumps.append(
                SqsPump(
                    self.emulator,
                    self.resources.s3_events_queue_url,
                    pool,
                    10,
                    self.stop,
                    transform=s3_event_from_messages,
                )
            )

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
    def drain(self, max_rounds: int = 500) -> int:
        """Step every pump until a whole round finds nothing: the stream's records, then the jobs they
        enqueued, then the records those jobs wrote... Returns the number of deliveries."""
        delivered = 0
        for _ in range(max_rounds):
            worked = [pump.step() for pump in self.pumps]
            if not any(worked):
                return delivered
            delivered += sum(worked)
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
