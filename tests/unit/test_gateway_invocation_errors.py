"""How the local HTTP API answers when the function does not: as API Gateway HTTP APIs do with a Lambda
integration (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html):
a function error, timeout or crash is ``500 {"message":"Internal Server Error"}``; no answer within the 30 s
integration timeout (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html) is
``503 {"message":"Service Unavailable"}``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import gateway as gw
from devstack import tokens
from devstack.emulator import free_port
from devstack.template import FunctionSpec, Template
from devstack.workers import FunctionTimeout, Throttled, WorkerCrashed


class Failing:
    def __init__(self, error: Exception) -> None:
        self.spec = FunctionSpec("ClientsFunction", Path("."), "app.handler", {}, {})
        self.error = error
        self.waits: list[float | None] = []

    def invoke(self, event: dict[str, Any], wait_s: float | None = None) -> Any:
        self.waits.append(wait_s)
        raise self.error


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers = []

    def start(pool: Failing) -> str:
        routes = [r for r in Template().http_routes() if r.route_key == "GET /me"]
        gateway = gw.Gateway(routes, {"ClientsFunction": pool}, lambda: {}, tokens.public_key_pem(tmp_path), "")
        port = free_port()
        server = gw.make_server(gateway, "127.0.0.1", port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (FunctionTimeout("Sandbox.Timedout", "Task timed out after 10.00 seconds"), 500, "Internal Server Error"),
        (WorkerCrashed("Runtime.ExitError", "Runtime exited with error"), 500, "Internal Server Error"),
        (Throttled("TooManyRequestsException", "Rate Exceeded."), 503, "Service Unavailable"),
    ],
)
def test_a_function_that_does_not_answer_gets_api_gateways_answer(
    serve: Any, tmp_path: Path, error: Exception, status: int, message: str
) -> None:
    pool = Failing(error)
    url = serve(pool)
    token = tokens.mint("ana", directory=tmp_path)
    resp = requests.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == status
    assert resp.json() == {"message": message}
    assert pool.waits == [gw.INTEGRATION_TIMEOUT_S]  # the gateway waits for a free worker at most this long
