"""Scale through the real local stack (moto server, HTTP API, stream and queue pumps), in its own process.

1. A pro with ``n`` clients joins a studio of ``n`` clients, half the same people: the join is an HTTP
   request, the import is started by the stream consumer and run by the jobs worker, chunk after chunk,
   and the figure is the wall time until ``GET /studios/{id}/members/{pro}`` reports it done.
2. A client assigned to 200 members is edited with ``PATCH /clients/{id}``: the figure is the time until
   all 200 members' views carry the edit.

Run by ``bench/run.py`` as ``python -m bench.stackrun N MEMBERS``; prints one JSON document.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import moto_speed
from bench.scale import OWNER, PRO, seed_books


class Http:
    def __init__(self, base: str, key_dir: Path) -> None:
        self.base = base
        self.key_dir = key_dir
        self._tokens: dict[str, str] = {}

    def __call__(
        self, method: str, path: str, sub: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        from devstack import tokens

        token = self._tokens.setdefault(sub, tokens.mint(sub, None, directory=self.key_dir))
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        with urllib.request.urlopen(request, timeout=60) as resp:  # an HTTPError (>= 400) fails the bench
            text = resp.read()
            self.last_etag = resp.headers.get("ETag")
            return json.loads(text) if text else None


def _wait(check: Any, timeout_s: float, step_s: float = 0.5) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if check():
            return time.perf_counter() - started
        time.sleep(step_s)
    raise TimeoutError("not reached in time")


def main(n: int, members: int) -> dict[str, Any]:
    from devstack.emulator import free_port
    from devstack.stack import LocalStack

    moto_speed.apply()
    key_dir = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    stack = LocalStack(free_port(), free_port(), key_dir=key_dir)
    stack.start()
    out: dict[str, Any] = {}
    try:
        http = Http(stack.api_url, key_dir)

        def put_items(items: list[Any]) -> None:
            from salon.data.batch import write_batch

            write_batch(items, [])

        started = time.perf_counter()
        studio_id = seed_books(http, put_items, n)
        stack.drain(timeout_s=900)
        seeded = time.perf_counter() - started
        code = http("POST", f"/studios/{studio_id}/invites", OWNER, {"role": "provider"})["code"]
        started = time.perf_counter()
        http("POST", "/studios/join", PRO, {"code": code})
        summary: dict[str, Any] = {}

        def done() -> bool:
            summary.update(http("GET", f"/studios/{studio_id}/members/{PRO}", OWNER)["import"])
            return summary.get("status") == "done"

        seconds = _wait(done, 1800, 1.0)
        out["import"] = {
            "clients": n,
            "same_people": n // 2,
            "seed_seconds": round(seeded, 1),
            "seconds": round(time.perf_counter() - started, 1),
            "waited_seconds": round(seconds, 1),
            **{k: summary[k] for k in ("status", "imported", "merged", "conflicts")},
        }
        stack.drain(timeout_s=900)
        out["fanout_200"] = _fanout(stack, http, members)
    finally:
        stack.stop()
    return out


def _fanout(stack: Any, http: Http, members: int) -> dict[str, Any]:
    """A client assigned to ``members`` pros of one studio, edited once; the time until every view has it."""
    owner = "fan-owner"
    studio_id = http("POST", "/studios", owner, {"name": "Fan-out Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    pros = [f"fan-pro-{i:03d}" for i in range(members - 1)]
    for pro in pros:
        code = http("POST", f"/studios/{studio_id}/invites", owner, {"role": "provider"})["code"]
        http("POST", "/studios/join", pro, {"code": code})
    stack.drain(timeout_s=300)
    client = http("POST", "/clients", owner, {"name": "Fan Out", "phone": "+1 646 555 0100"})
    client_id = client["client_id"]
    ddb = stack.emulator.client("dynamodb")
    table = stack.resources.tables["RecordsTable"]
    # Assign everyone in one write (the assign route would fan out 199 growing lists first).
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": f"CLIENT#{client_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="ADD assignees :pros SET version = version + :one",
        ExpressionAttributeValues={":pros": {"SS": pros}, ":one": {"N": "1"}},
    )
    stack.drain(timeout_s=300)
    everyone = [owner, *pros]
    http("GET", f"/clients/{client_id}", owner)
    etag = http.last_etag or ""
    started = time.perf_counter()
    http("PATCH", f"/clients/{client_id}", owner, {"name": "Fan Out Edited"}, headers={"If-Match": etag})

    def all_views() -> bool:
        keys = [{"pk": {"S": f"PRO#{p}"}, "sk": {"S": f"CLIENT#{client_id}"}} for p in everyone]
        names = []
        for start in range(0, len(keys), 100):
            resp = ddb.batch_get_item(RequestItems={table: {"Keys": keys[start : start + 100]}})
            names += [i.get("name", {}).get("S") for i in resp["Responses"][table]]
        return len(names) == len(everyone) and all(name == "Fan Out Edited" for name in names)

    _wait(all_views, 300, 0.1)
    seconds = time.perf_counter() - started
    return {"members": len(everyone), "views_updated": len(everyone), "seconds": round(seconds, 2)}


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    fan = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    print(json.dumps(main(size, fan)))
