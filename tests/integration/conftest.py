"""Integration tests: the local stack runs as `make dev` runs it (a separate process, free ports),
and tests talk HTTP to it as the mobile app would."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from devstack import tokens
from devstack.process import stack_process


@dataclass
class Stack:
    url: str
    emulator: str
    key_dir: Path
    process: subprocess.Popen[bytes]

    def token(self, sub: str, groups: list[str] | None = None, **kwargs: Any) -> str:
        return tokens.mint(sub, groups, directory=self.key_dir, **kwargs)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.emulator,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def denied(self) -> list[dict[str, str]]:
        """Every call a function made that its template policy does not allow (devstack/iam.py), so far."""
        resp = requests.get(f"{self.url}/__devstack/denied", timeout=10)
        assert resp.status_code == 200, resp.text
        return list(resp.json())

    def drain(self, timeout_s: float = 60.0) -> None:
        """Wait until the stream and the queues have delivered everything (a local-only endpoint)."""
        resp = requests.post(f"{self.url}/__devstack/drain", params={"timeout": timeout_s}, timeout=timeout_s + 5)
        assert resp.status_code == 204, resp.text


_replay: dict[str, str] = {}  # what a failing test's report prints so the run can be replayed


def _faults_line(url: str) -> str:
    try:
        answer = requests.get(f"{url}/__devstack/faults", timeout=10).json()
    except (requests.RequestException, ValueError) as exc:
        return f"(GET /__devstack/faults failed: {exc})"
    settings = ",".join(f"{k}={v}" for k, v in sorted(answer.get("settings", {}).items()))
    return f"DEVSTACK_FAULTS={settings or 'off'},seed={answer.get('seed')}  injected={answer.get('injected')}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    key_dir = tmp_path_factory.mktemp("devstack")
    with stack_process(key_dir) as running:
        _replay["url"] = running.url
        _replay["log"] = str(running.log_path)
        _replay["faults"] = _faults_line(running.url)
        print(f"\nlocal stack {running.url}: {_replay['faults']}; log {running.log_path}")
        yield Stack(running.url, running.emulator, key_dir, running.process)
        _replay["faults"] = _faults_line(running.url)
        _replay.pop("url")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test on the stack says which faults were in force (the seed replays them:
    ``DEVSTACK_FAULTS=<settings>,seed=N``) and where the stack's log, with the functions' tracebacks, is."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "stack" in getattr(item, "fixturenames", ()) and "log" in _replay:
        faults = _faults_line(_replay["url"]) if "url" in _replay else _replay.get("faults", "")
        report.sections.append(("local stack", f"{faults}\nstack log: {_replay['log']}"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if "log" in _replay:
        terminalreporter.write_line(f"local stack: {_replay['faults']}; log {_replay['log']}")


@pytest.fixture(autouse=True)
def _no_access_denied(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test on the stack is a policy check too: a call a function made that its template policy does not
    allow fails the test, even where the function caught the AccessDenied or the event was retried and parked.
    (A denial in an event still in flight when a test ends is reported by the next test.)"""
    if "stack" not in request.fixturenames:
        yield
        return
    stack: Stack = request.getfixturevalue("stack")
    before = len(stack.denied())
    yield
    denied = stack.denied()[before:]
    assert not denied, f"calls the template policy does not allow (add the action to template.yaml): {denied}"


class Api:
    """A pro's app: a session with their token."""

    def __init__(self, stack: Stack, sub: str, groups: list[str] | None = None) -> None:
        self.stack = stack
        self.sub = sub
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {stack.token(sub, groups)}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, f"{self.stack.url}{path}", **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


_names = iter(range(10**9))


@pytest.fixture
def pro(stack: Stack) -> Callable[..., Api]:
    """A new pro with a unique id for each call, so tests never share a book."""

    def make(name: str = "pro", groups: list[str] | None = None) -> Api:
        return Api(stack, f"{name}-{os.getpid()}-{next(_names)}", groups)

    return make


def unique_phone() -> str:
    """A valid US number no other test uses (555-01xx numbers are reserved for fiction)."""
    n = next(_names)
    return f"+1 415 {200 + n // 10000 % 800:03d} {n % 10000:04d}"
