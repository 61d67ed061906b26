"""Cold start: a fresh process importing a function's handler module, next to the floor.

The floor is the least any function that talks to DynamoDB pays: a fresh
process doing ``import boto3; boto3.client("dynamodb")``. Each function's
handler module is loaded as Lambda loads it (from its file, with its
module-level set-up: resolver, routes, loggers) in the environment the template
gives it (dummy names, no endpoint: nothing may call AWS at import). Rounds are
interleaved (floor, every function, floor, ...) so a busy machine slows both
alike; the figures are medians. Interpreter start-up is outside both timings.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from devstack.template import ROOT, Template

CHILD = r"""
import json, resource, sys, time
target = sys.argv[1]
wall0, cpu0 = time.perf_counter(), time.process_time()
if target == "floor":
    import boto3
    boto3.client("dynamodb")
else:
    import importlib.util
    spec = importlib.util.spec_from_file_location("app", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    getattr(module, sys.argv[2])
wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
print(json.dumps({"ms": wall * 1000, "cpu_ms": cpu * 1000,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "modules": len(sys.modules)}))
"""


def child_environment(template: Template, root: Path = ROOT) -> dict[str, str]:
    """What the template gives every function, with dummy values where a resource would be named."""
    # Byte code is written by the unmeasured first round and read after, as on a host that has run it before
    # (PYTHONDONTWRITEBYTECODE in the caller's shell would make every run compile every module).
    skip = ("AWS_", "POWERTOOLS_", "PYDANTIC_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    dummy = {
        "TABLE_NAME": "bench-records",
        "IDEMPOTENCY_TABLE_NAME": "bench-idempotency",
        "UPLOADS_BUCKET": "bench-uploads",
        "JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-jobs",
        "STREAM_FAILURE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-stream-failures",
    }
    for fn in template.functions().values():
        variables = template.globals_environment()
        variables.update(fn.properties.get("Environment", {}).get("Variables", {}) or {})
        for name, value in variables.items():
            try:
                env[name] = dummy.get(name) or str(template.resolve(value))
            except KeyError:
                env[name] = "bench"
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            # An endpoint nothing listens on: a call at import would fail loudly rather than reach AWS.
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "PYTHONPATH": f"{root / 'layers' / 'domain'}",
        }
    )
    return env


def _run(target: str, handler: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, target, handler], env=env, capture_output=True, text=True, check=False, cwd="/"
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold import of {target} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(runs: int = 10, log: Any = None, root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """``root``: another checkout to measure (``python -m bench.coldstart 10 /tmp/before`` for a before/after)."""
    template = Template(root / "template.yaml")
    env = child_environment(template, root)
    functions = dict(template.functions().items())
    targets = {
        name: (str(root / spec.module_path.relative_to(ROOT)), spec.handler_name) for name, spec in functions.items()
    }
    # One unmeasured round: byte code compiled and files in the page cache, as on a warm Lambda host.
    compiled = env
    for path, handler in [("floor", ""), *targets.values()]:
        _run(path, handler, compiled)
    floors: list[dict[str, Any]] = []
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for i in range(runs):
        for name, (path, handler) in targets.items():
            floors.append(_run("floor", "", compiled))
            samples[name].append(_run(path, handler, compiled))
        if log:
            log(f"  cold start round {i + 1}/{runs}")
    floor_ms = statistics.median(s["ms"] for s in floors)
    floor_cpu = statistics.median(s["cpu_ms"] for s in floors)
    out: dict[str, dict[str, Any]] = {}
    for name, rows in samples.items():
        init = statistics.median(r["ms"] for r in rows)
        cpu = statistics.median(r["cpu_ms"] for r in rows)
        out[name] = {
            "init_ms": round(init, 1),
            "floor_ms": round(floor_ms, 1),
            "ratio": round(init / floor_ms, 2),
            "peak_rss_mb": round(statistics.median(r["rss_mb"] for r in rows), 1),
            "cpu_ms": round(cpu, 1),
            "floor_cpu_ms": round(floor_cpu, 1),
            "cpu_ratio": round(cpu / floor_cpu, 2),
            "modules": int(statistics.median(r["modules"] for r in rows)),
            "runs": len(rows),
        }
    out["_floor"] = {
        "floor_ms": round(floor_ms, 1),
        "floor_cpu_ms": round(floor_cpu, 1),
        "peak_rss_mb": round(statistics.median(s["rss_mb"] for s in floors), 1),
        "runs": len(floors),
    }
    return out


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(json.dumps(measure(runs, print, Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT), indent=2))
