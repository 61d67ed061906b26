"""``make load``: a bounded load on a local stack (loopback only), then proof that nothing acknowledged was lost.

LOAD_USERS (50) app users, in studios of LOAD_STUDIO_SIZE (5), each loop over a realistic mix for
LOAD_SECONDS (60): list their clients, read a Client Log, add notes, edit profiles (read, then PATCH with
If-Match; a 412 is the app's normal retry, not an error), register clients and request uploads.
Reported: requests, throughput, p50/p99 per action, unexpected answers. Then, once the stream drains:
every acknowledged note is there, every client shows the last acknowledged edit, and every member's view
equals the studio record. Exit status 1 when anything was lost or answered 5xx.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devstack import tokens
from devstack.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]
USERS = int(os.environ.get("LOAD_USERS", "50"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
STUDIO_SIZE = int(os.environ.get("LOAD_STUDIO_SIZE", "5"))
MIX = [("list", 35), ("log", 20), ("note", 20), ("edit", 12), ("create", 5), ("upload", 8)]


@dataclass
class Ledger:
    """What the server acknowledged, to check afterwards."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    notes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # client -> note ids
    edits: dict[str, tuple[int, str]] = field(default_factory=dict)  # client -> (version, name)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    unexpected: list[str] = field(default_factory=list)
    conflicts: int = 0


class Stack:
    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="load-devstack-"))
        self.api_port, emulator_port = free_port(), free_port()
        env = {**os.environ, "DEVSTACK_HOME": str(self.home), "PYTHONPATH": f"{ROOT / 'layers/domain'}:{ROOT}"}
        for name in ("TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "UPLOADS_BUCKET", "AWS_ENDPOINT_URL"):
            env.pop(name, None)
        self.log = (self.home / "stack.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack",
                "serve",
                "--port",
                str(self.api_port),
                "--emulator-port",
                str(emulator_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.api_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/__devstack/ready", timeout=5).status_code == 204:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the local stack did not start: see {self.home / 'stack.log'}")
            time.sleep(0.2)

    def session(self, sub: str, groups: list[str] | None = None) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {tokens.mint(sub, groups, directory=self.home, ttl_s=3 * 3600)}"
        return s

    def drain(self, timeout_s: float = 120) -> None:
        resp = requests.post(f"{self.url}/__devstack/drain", params={"timeout": timeout_s}, timeout=timeout_s + 10)
        assert resp.status_code == 204, resp.text

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _ok(resp: requests.Response, *status: int) -> Any:
    if resp.status_code not in (status or (200,)):
        raise SystemExit(f"set-up failed: {resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}")
    return resp.json() if resp.content else None


@dataclass
class User:
    sub: str
    session: requests.Session
    studio_id: str
    clients: list[str]
    owner: bool = False


def set_up(stack: Stack) -> list[User]:
    ops = stack.session(f"ops-{uuid.uuid4().hex[:6]}", ["operators"])
    users: list[User] = []
    n = 0
    for start in range(0, USERS, STUDIO_SIZE):
        owner_sub = f"load-{start}-{uuid.uuid4().hex[:6]}"
        owner = stack.session(owner_sub)
        sid = _ok(
            owner.post(f"{stack.url}/studios", json={"name": f"Load {start}", "country": "US", "time_zone": "UTC"}), 201
        )["studio_id"]
        _ok(ops.put(f"{stack.url}/studios/{sid}/plan", json={"plan": "premium"}))
        members = [User(owner_sub, owner, sid, [], owner=True)]
        for i in range(1, min(STUDIO_SIZE, USERS - start)):
            sub = f"load-{start + i}-{uuid.uuid4().hex[:6]}"
            code = _ok(owner.post(f"{stack.url}/studios/{sid}/invites", json={"role": "provider"}), 201)["code"]
            session = stack.session(sub)
            _ok(session.post(f"{stack.url}/studios/join", json={"code": code}), 202)
            members.append(User(sub, session, sid, []))
        stack.drain()
        shared = []
        for k in range(10):  # ten studio clients, every member assigned
            n += 1
            cid = _ok(owner.post(f"{stack.url}/clients", json={"name": f"Client {n}", "phone": _phone()}), 201)[
                "client_id"
            ]
            for m in members[1:]:
                _ok(owner.put(f"{stack.url}/studios/{sid}/clients/{cid}/assignees/{m.sub}"), 204)
            shared.append(cid)
            del k
        for m in members:
            m.clients = list(shared)
        users += members
    stack.drain()
    return users


_phones = iter(range(10**6))
_phone_lock = threading.Lock()


def _phone() -> str:
    with _phone_lock:
        n = next(_phones)
    return f"+1 415 {300 + n // 10000 % 600:03d} {n % 10000:04d}"


def user_loop(stack: Stack, user: User, ledger: Ledger, until: float, seed: int) -> None:
    rnd = random.Random(seed)
    actions, weights = zip(*MIX, strict=True)
    url = stack.url
    while time.monotonic() < until:
        action = rnd.choices(actions, weights)[0]
        cid = rnd.choice(user.clients)
        started = time.perf_counter()
        expected: tuple[int, ...] = (200,)
        try:
            if action == "list":
                resp = user.session.get(f"{url}/me/clients", params={"limit": 100}, timeout=60)
            elif action == "log":
                resp = user.session.get(f"{url}/clients/{cid}/log", timeout=60)
            elif action == "note":
                resp = user.session.post(
                    f"{url}/clients/{cid}/notes", json={"body": f"note {uuid.uuid4().hex}"}, timeout=60
                )
                expected = (201,)
                if resp.status_code == 201:
                    with ledger.lock:
                        ledger.notes[cid].add(resp.json()["note_id"])
            elif action == "edit":
                read = user.session.get(f"{url}/clients/{cid}", timeout=60)
                name = f"Edited {uuid.uuid4().hex[:8]}"
                resp = user.session.patch(
                    f"{url}/clients/{cid}",
                    json={"name": name},
                    headers={"If-Match": read.headers.get("etag", '"0"')},
                    timeout=60,
                )
                expected = (200, 412)
                if resp.status_code == 200:
                    version = resp.json()["version"]
                    with ledger.lock:
                        if version > ledger.edits.get(cid, (0, ""))[0]:
                            ledger.edits[cid] = (version, name)
                elif resp.status_code == 412:
                    with ledger.lock:
                        ledger.conflicts += 1
            elif action == "create":
                resp = user.session.post(f"{url}/clients", json={"name": "Walk-in", "phone": _phone()}, timeout=60)
                expected = (201,)
            else:
                resp = user.session.post(
                    f"{url}/clients/{cid}/uploads", json={"content_type": "image/jpeg", "size": 200_000}, timeout=60
                )
                expected = (201, 409)  # 409 file_limit_reached once a client holds 20 pending or confirmed files
        except requests.RequestException as exc:
            with ledger.lock:
                ledger.unexpected.append(f"{action}: {type(exc).__name__}")
            continue
        elapsed = (time.perf_counter() - started) * 1000
        with ledger.lock:
            ledger.latencies[action].append(elapsed)
            if resp.status_code not in expected:
                ledger.unexpected.append(f"{action}: {resp.status_code} {resp.text[:120]}")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def verify(stack: Stack, users: list[User], ledger: Ledger) -> list[str]:
    """After the drain: acknowledged notes and edits are there; every view equals the studio record."""
    problems: list[str] = []
    owners = {u.studio_id: u for u in users if u.owner}
    by_client = {cid: owners[u.studio_id] for u in users for cid in u.clients}
    records: dict[str, dict[str, Any]] = {}
    for cid, owner in by_client.items():
        record = owner.session.get(f"{stack.url}/clients/{cid}", timeout=60).json()
        records[cid] = record
        notes: set[str] = set()
        cursor = None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = owner.session.get(f"{stack.url}/clients/{cid}/notes", params=params, timeout=60).json()
            notes |= {n["note_id"] for n in page["items"]}
            cursor = page.get("next_cursor")
            if not cursor:
                break
        lost = ledger.notes.get(cid, set()) - notes
        if lost:
            problems.append(f"client {cid}: {len(lost)} acknowledged notes missing")
        if cid in ledger.edits:
            version, name = ledger.edits[cid]
            if (record["version"], record["name"]) != (version, name):
                problems.append(
                    f"client {cid}: last acknowledged edit v{version} {name!r}, record {record['version']} "
                    f"{record['name']!r}"
                )
    for user in users:
        views = {
            c["client_id"]: c
            for c in user.session.get(f"{stack.url}/me/clients", params={"limit": 100}, timeout=60).json()["items"]
        }
        for cid in user.clients:
            view, record = views.get(cid), records[cid]
            if view is None or (view["version"], view["name"]) != (record["version"], record["name"]):
                problems.append(
                    f"{user.sub}'s view of {cid}: {view and (view['version'], view['name'])} != record "
                    f"{(record['version'], record['name'])}"
                )
    return problems


def main() -> int:
    print(f"load: {USERS} users in studios of {STUDIO_SIZE}, {SECONDS:.0f} s, mix {dict(MIX)}", flush=True)
    stack = Stack()
    try:
        users = set_up(stack)
        ledger = Ledger()
        until = time.monotonic() + SECONDS
        threads = [
            threading.Thread(target=user_loop, args=(stack, u, ledger, until, i), daemon=True)
            for i, u in enumerate(users)
        ]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - began
        stack.drain()
        problems = verify(stack, users, ledger)
    finally:
        stack.stop()
    total = sum(len(v) for v in ledger.latencies.values())
    every = [x for v in ledger.latencies.values() for x in v]
    report = {
        "users": len(users),
        "seconds": round(wall, 1),
        "requests": total,
        "per_second": round(total / wall, 1) if wall else 0,
        "p50_ms": round(statistics.median(every), 1) if every else 0,
        "p99_ms": round(_pct(every, 0.99), 1),
        "by_action": {
            a: {"n": len(v), "p50_ms": round(_pct(v, 0.5), 1), "p99_ms": round(_pct(v, 0.99), 1)}
            for a, v in sorted(ledger.latencies.items())
        },
        "unexpected": len(ledger.unexpected),
        "edit_conflicts_412": ledger.conflicts,
        "notes_acknowledged": sum(len(v) for v in ledger.notes.values()),
        "edits_acknowledged": len(ledger.edits),
        "lost_or_divergent": len(problems),
    }
    print(json.dumps(report, indent=2))
    for line in ledger.unexpected[:20] + problems[:20]:
        print("  " + line)
    return 1 if ledger.unexpected or problems else 0


if __name__ == "__main__":
    sys.exit(main())
