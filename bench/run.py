"""``make bench``: cold starts, DynamoDB round trips per route, fan-out and import at scale.

Prints a table and writes ``bench/results.json``. Every figure is measured in
this run next to its floor (measured in the same run); targets are reported,
never asserted on time. Sections: ``cold_start``, ``round_trips``, ``fanout``,
``import`` (in-process, moto) and ``local_stack`` (the import and a 200-member
fan-out through ``devstack.stack.LocalStack``, in a child process).

    python -m bench.run                       # everything (~10 minutes on 2 cores)
    python -m bench.run --only cold_start round_trips --runs 10 --clients 5000
    python -m bench.run --only local_stack --stack-clients 5000    # issue 3's full-size run through the stack
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results.json")
SECTIONS = ("cold_start", "round_trips", "fanout", "import", "local_stack")
TARGETS = {
    "cold_start_ratio": 1.5,
    "cold_start_ratio_aim": 1.25,
    "read_calls": 2,
    "write_calls": 3,
    "one_call_routes": ["GET /me/clients", "GET /clients/{client_id}"],
    "fanout_ratio": 1.5,
    "import_ratio": 2.0,
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_in_process(only: set[str], clients: int, fan_sizes: tuple[int, ...]) -> dict[str, Any]:
    """Round trips, fan-out and import: moto in this process, the functions loaded as the local stack loads them."""
    from moto import mock_aws

    from bench import moto_speed

    moto_speed.apply()
    out: dict[str, Any] = {}
    from bench.world import World

    if "round_trips" in only:
        from bench.scenario import check_targets, load_budgets, measure_routes

        with mock_aws():
            started = time.perf_counter()
            measured = measure_routes(World())
            budgets = load_budgets()
            out["round_trips"] = {k: {**m.as_dict(), "budget": budgets.get(k)} for k, m in sorted(measured.items())}
            out["round_trips_misses"] = check_targets(measured, budgets)
            log(f"round trips: {len(measured)} routes in {time.perf_counter() - started:.0f} s")
    if "fanout" in only:
        from bench import fanout

        with mock_aws():
            started = time.perf_counter()
            out["fanout"] = fanout.measure(World(), fan_sizes)
            log(f"fan-out: {time.perf_counter() - started:.0f} s")
    if "import" in only:
        from bench import scale

        with mock_aws():
            started = time.perf_counter()
            out["import"] = scale.measure_import(World(), clients, log)
            log(f"import: {time.perf_counter() - started:.0f} s")
    return out


def run_local_stack(clients: int, members: int) -> dict[str, Any]:
    env = dict(os.environ, DEVSTACK_FUNCTION_ENV=json.dumps({"POWERTOOLS_LOG_LEVEL": "ERROR"}))
    cmd = [sys.executable, "-m", "bench.stackrun", str(clients), str(members)]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"local stack: {time.perf_counter() - started:.0f} s")
    return result


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    cold = results.get("cold_start")
    if cold:
        lines.append("cold start (median of fresh processes; floor = import boto3 + boto3.client('dynamodb'))")
        lines.append(f"  {'function':18} {'init ms':>8} {'floor ms':>9} {'ratio':>6} {'cpu ratio':>10} {'rss MB':>7}")
        for name, row in cold.items():
            if name.startswith("_"):
                continue
            flag = "" if row["ratio"] <= TARGETS["cold_start_ratio"] else "  > 1.5"
            lines.append(
                f"  {name:18} {row['init_ms']:8.1f} {row['floor_ms']:9.1f} {row['ratio']:6.2f} "
                f"{row['cpu_ratio']:10.2f} {row['peak_rss_mb']:7.1f}{flag}"
            )
    trips = results.get("round_trips")
    if trips:
        lines.append("round trips (one warm request; DynamoDB + S3 calls)")
        lines.append(f"  {'route':66} {'calls':>5} {'ddb':>4} {'s3':>3} {'scans':>5} {'budget':>6}")
        for key, row in trips.items():
            lines.append(
                f"  {key:66} {row['calls']:5} {row['dynamodb']:4} {row['s3']:3} {row['scans']:5} "
                f"{row['budget'] if row['budget'] is not None else '-':>6}{'  concurrent' if row['concurrent'] else ''}"
            )
        for miss in results.get("round_trips_misses", []):
            lines.append(f"  MISS {miss}")
    fan = results.get("fanout")
    if fan:
        lines.append("fan-out (one edit of a client assigned to N members)")
        lines.append(f"  {'N':>5} {'calls':>5} {'writes':>6} {'target':>6} {'ms':>9} {'floor ms':>9} {'ratio':>6}")
        for row in fan.values():
            lines.append(
                f"  {row['members']:5} {row['calls']:5} {row['write_calls']:6} {row['target_calls']:6} "
                f"{row['ms']:9.1f} {row['floor_ms']:9.1f} {row['ratio']:6.2f}"
            )
    imp = results.get("import")
    if imp:
        lines.append(
            f"import: {imp['clients']} + {imp['clients']} clients: status {imp['status']}, imported {imp['imported']}, "
            f"merged {imp['merged']}, conflicts {imp['conflicts']}; {imp['calls']} calls "
            f"({imp['calls_per_client']} per client), {imp['seconds']} s vs floor {imp['floor_seconds']} s "
            f"(its {imp.get('items_written', '?')} item writes, raw; ratio {imp['ratio']})"
        )
        if "profile_floor_seconds" in imp:
            lines.append(
                f"        next to one profile a client written raw ({imp['profile_floor_seconds']} s): "
                f"ratio {imp['ratio_to_profiles']}"
            )
    stack = results.get("local_stack")
    if stack:
        if "error" in stack:
            lines.append(f"local stack: FAILED {stack['error'][-400:]}")
        else:
            i, f = stack["import"], stack["fanout_200"]
            lines.append(
                f"local stack: import {i['clients']} + {i['clients']}: {i['status']}, imported {i['imported']}, "
                f"merged {i['merged']} in {i['seconds']} s; "
                f"an edit reached {f['views_updated']} views in {f['seconds']} s"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per function (at least 10)")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument(
        "--stack-clients",
        type=int,
        default=1000,
        help="import size through the local stack (HTTP moto server: 5000 takes ~30 minutes on 2 cores)",
    )
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--fanout", type=int, nargs="*", default=[1, 10, 100, 1000])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    only = set(args.only)
    started = time.perf_counter()
    previous: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results: dict[str, Any] = {k: v for k, v in previous.items() if k in SECTIONS or k == "round_trips_misses"}
    if "cold_start" in only:
        from bench import coldstart

        results["cold_start"] = coldstart.measure(args.runs, log)
    results.update(run_in_process(only, args.clients, tuple(args.fanout)))
    if "local_stack" in only:
        results["local_stack"] = run_local_stack(args.stack_clients, args.members)
    for row in (results.get("fanout") or {}).values():
        row["target_calls"] = math.ceil(row["members"] / 25) + math.ceil(row["members"] / 100) + 2
    results["meta"] = {
        "ran_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "sections": sorted(only),
        "seconds": round(time.perf_counter() - started, 1),
        "targets": TARGETS,
        "note": "DynamoDB is moto (in-process); times compare like with like in the same run, not with AWS.",
    }
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(table(results))
    print(f"\nwrote {args.out} in {results['meta']['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
