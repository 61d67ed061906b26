"""The local stack as a separate process, exactly as `make dev` runs it: for tests, benchmarks and load runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from devstack.emulator import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StackProcess:
    process: subprocess.Popen[bytes]
    url: str
    emulator: str
    log_path: Path


@contextmanager
def stack_process(
    home: Path, extra_env: dict[str, str] | None = None, start_timeout_s: float = 60.0
) -> Iterator[StackProcess]:
    """Start ``python -m devstack serve`` on free ports with its keys and log in ``home``; stop it after."""
    api_port, emulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "DEVSTACK_HOME": str(home),
        "PYTHONPATH": f"{ROOT / 'layers/domain'}{os.pathsep}{ROOT}",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",  # every line reaches the log as it is written
        **(extra_env or {}),
    }
    for name in ("TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "UPLOADS_BUCKET", "AWS_ENDPOINT_URL"):
        env.pop(name, None)  # the stack sets its own, from the template
    log_path = home / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "devstack", "serve", "--port", str(api_port), "--emulator-port", str(emulator_port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{api_port}"
            _wait_ready(process, url, log_path, start_timeout_s)
            yield StackProcess(process, url, f"http://127.0.0.1:{emulator_port}", log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited: {log_path.read_text()}")
        try:
            if requests.get(f"{url}/__devstack/ready", timeout=10).status_code == 204:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"local stack did not start in {timeout_s:.0f} s")
        time.sleep(0.1)
