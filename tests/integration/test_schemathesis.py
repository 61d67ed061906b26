"""The latest schemathesis (its coverage, fuzzing and stateful phases) against the local stack's own OpenAPI
document, with a real token, through its CLI as a developer would run it.

Every answer must be no 5xx, carry a documented status (``status_code_conformance``) and content type, and
match the documented schema for its status. The document's links (salon.openapi_links) take the stateful
phase from ``POST /clients`` into the client's routes. ``SCHEMATHESIS_EXAMPLES`` sets the examples per
operation (5 in CI; ``make soak`` raises it), ``SCHEMATHESIS_SEED`` replays a run (the seed is printed);
``schemathesis.toml`` next to this file sizes the stateful phase, ``schemathesis_hooks.py`` gives the positive
registrations a fresh valid phone so they create clients.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Api, Stack, unique_phone

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "5"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def owner(stack: Stack) -> Api:
    """A pro with a studio and a client: what most routes need to answer more than 404."""
    api = Api(stack, f"st-{uuid.uuid4().hex[:10]}")
    studio = api.post("/studios", json={"name": "Fuzzed", "country": "US", "time_zone": "UTC"})
    assert studio.status_code == 201, studio.text
    client = api.post("/clients", json={"name": "Fuzz Target", "phone": unique_phone()})
    assert client.status_code == 201, client.text
    stack.drain()
    return api


# Two CLI runs at once, each with one worker (several workers in one run share hypothesis' lambda-source
# cache across threads: a runtime error in 4.32), split so each run's links stay inside it.
PARTS = {"clients": ["--include-path-regex", "^/clients"], "rest": ["--exclude-path-regex", "^/clients"]}


def _command(stack: Stack, owner: Api, seed: int, part: list[str]) -> list[str]:
    return [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{stack.url}/openapi.json",
        *part,
        "--header",
        f"Authorization: {owner.session.headers['Authorization']}",
        "--phases",
        "coverage,fuzzing,stateful",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--output-sanitize",
        "true",
    ]


def test_schemathesis_finds_no_5xx_and_no_undocumented_status(stack: Stack, owner: Api) -> None:
    seed = int(os.environ.get("SCHEMATHESIS_SEED", str(random.randrange(2**32))))
    runs = {}
    for block, (name, part) in enumerate(PARTS.items()):
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
            "SCHEMATHESIS_PHONE_BLOCK": str((os.getpid() + 350 * block) % 700),
            "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        }
        runs[name] = subprocess.Popen(
            _command(stack, owner, seed, part),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    failed = []
    for name, run in runs.items():
        output, _ = run.communicate(timeout=900)
        summary = output[output.rfind("=== SUMMARY ===") - 40 :] if "=== SUMMARY ===" in output else output[-3000:]
        links = [line.strip() for line in output.splitlines() if "API Links:" in line or "Scenarios:" in line]
        summary = "\n".join(links) + "\n" + summary
        print(f"schemathesis {name}, seed {seed}:\n{summary}")
        if run.returncode != 0 or "Stateful" not in output:
            failed.append(f"--- {name} (exit {run.returncode}):\n{output[-10000:]}")
    assert not failed, f"schemathesis failed (replay with SCHEMATHESIS_SEED={seed}):\n" + "\n".join(failed)


def test_no_204_is_documented_with_a_body(stack: Stack) -> None:
    doc = requests.get(f"{stack.url}/openapi.json", timeout=60).json()
    bodies_on_204 = sorted(
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and op.get("responses", {}).get("204", {}).get("content")
    )
    assert not bodies_on_204, f"204s documented with a body: {bodies_on_204}"
