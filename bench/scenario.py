"""Every route of the template, each called once, warm, on realistic data, with its AWS calls counted.

The data is made through the routes themselves (a studio with an owner, a
second admin, a provider, an apprentice and an assistant; clients assigned to
them with views fanned out by the stream consumer; a note, a formula, an
upload confirmed by its S3 event, an appointment, a sale, a package and a gift
card), so what is counted is what the app would cause. ``measure_routes``
returns, per route key, the status of the measured request and its DynamoDB
and S3 calls; ``bench/budgets.json`` holds the budget of each route and
``tests/unit/test_call_budgets.py`` holds the code to it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.world import Response, World

BUDGETS_FILE = Path(__file__).with_name("budgets.json")
OWNER, ADMIN2, PROV, PROV2, APPR, ASST, SOLO, OPS = "own", "adm2", "prov", "prov2", "appr", "asst", "solo", "ops"
_phones = itertools.count(1)


def phone() -> str:
    n = next(_phones)
    return f"+1 415 {300 + n // 10000 % 600:03d} {n % 10000:04d}"


def load_budgets() -> dict[str, int]:
    doc: dict[str, Any] = json.loads(BUDGETS_FILE.read_text())
    return {k: int(v) for k, v in doc["routes"].items()}


def slot(minutes_ahead: int) -> str:
    moment = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes_ahead)).replace(second=0, microsecond=0)
    return (moment - dt.timedelta(minutes=moment.minute % 5)).isoformat()


def booking(provider: str, minutes_ahead: int) -> dict[str, Any]:
    return {
        "provider_id": provider,
        "start": slot(minutes_ahead),
        "services": [{"name": "Cut", "minutes": 60, "price": {"amount": 4500, "currency": "USD"}}],
    }


@dataclass
class Measured:
    route: str
    status: int
    ddb: list[str]
    s3: list[str]
    other: list[str]
    concurrent: bool = False

    @property
    def calls(self) -> int:
        return len(self.ddb) + len(self.s3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "scans": self.ddb.count("Scan"),
            "dynamodb": len(self.ddb),
            "s3": len(self.s3),
            "operations": self.ddb + [f"s3:{op}" for op in self.s3],
            "other": self.other,
            "concurrent": self.concurrent,
            "status": self.status,
        }


@dataclass
class Run:
    world: World
    results: dict[str, Measured] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, sub: str, body: Any = None, **kw: Any) -> Response:
        resp = self.world.call(method, path, sub, body, **kw)
        if resp.status >= 300:
            raise AssertionError(f"set-up {method} {path} as {sub}: {resp.status} {resp.json}")
        return resp

    def measure(self, method: str, path: str, sub: str, body: Any = None, **kw: Any) -> Response:
        """Call once and keep the count under the route's key (the first measurement of a route wins)."""
        route, _ = self.world.route_for(method, path)
        counter = self.world.counter
        with counter.counting():
            resp = self.world.call(method, path, sub, body, **kw)
        ddb, s3 = counter.of("dynamodb"), counter.of("s3")
        other = [f"{c.service}:{c.operation}" for c in counter.calls if c.service not in ("dynamodb", "s3")]
        measured = Measured(route.route_key, resp.status, ddb, s3, other, counter.overlapped())
        self.results.setdefault(route.route_key, measured)
        if resp.status >= 300:
            raise AssertionError(f"measured {method} {path} as {sub}: {resp.status} {resp.json}")
        return resp


def _join(run: Run, studio_id: str, pro: str, role: str, measure: bool = False) -> None:
    code = (run.measure if measure else run.call)("POST", f"/studios/{studio_id}/invites", OWNER, {"role": role})
    (run.measure if measure else run.call)("POST", "/studios/join", pro, {"code": code["code"]})


def measure_routes(world: World) -> dict[str, Measured]:
    """Seed a studio through the routes and measure each route once; every route of the template is covered."""
    run = Run(world)
    warm(world)
    # --- a studio and its members
    studio = run.measure(
        "POST", "/studios", OWNER, {"name": "Bench Studio", "country": "US", "time_zone": "America/New_York"}
    )
    sid = studio["studio_id"]
    run.measure("PUT", f"/studios/{sid}/plan", OPS, {"plan": "premium"}, groups=["operators"])
    _join(run, sid, PROV, "provider", measure=True)
    for pro, role in ((ADMIN2, "admin"), (PROV2, "provider"), (APPR, "apprentice"), (ASST, "assistant")):
        _join(run, sid, pro, role)
    world.settle()

    # --- clients, assigned; their views fan out
    def new_client(name: str, measure: bool = False) -> str:
        body = {"name": name, "phone": phone(), "email": f"{name.lower().replace(' ', '.')}@example.com"}
        return str((run.measure if measure else run.call)("POST", "/clients", OWNER, body)["client_id"])

    c1 = new_client("Ana Lopez", measure=True)
    c2, c3 = new_client("Bea Silva"), new_client("Cleo Park")
    for i in range(20):
        new_client(f"Filler {i:02d}")
    run.measure("PUT", f"/studios/{sid}/clients/{c1}/assignees/{PROV}", OWNER)
    for cid, pro in ((c1, APPR), (c1, ASST), (c2, PROV), (c3, PROV)):
        run.call("PUT", f"/studios/{sid}/clients/{cid}/assignees/{pro}", OWNER)
    world.settle()

    # --- history of c1
    base = f"/clients/{c1}"
    note = run.measure("POST", f"{base}/notes", PROV, {"body": "Prefers mornings."})
    run.call("POST", f"{base}/notes", OWNER, {"body": "Sensitive scalp."})
    formula = run.measure("POST", f"{base}/formulas", PROV, {"name": "Base", "body": "6N + 20 vol"})
    run.measure("PUT", f"{base}/formulas/{formula['formula_id']}", PROV, {"name": "Base", "body": "6N + 30 vol"})
    appt = run.measure("POST", f"{base}/appointments", PROV, booking(PROV, 60))
    run.call("POST", f"{base}/appointments", PROV, booking(PROV, 24 * 60))
    run.measure("POST", f"{base}/appointments/{appt['appointment_id']}/check-in", PROV)
    money = {"amount": 1250, "currency": "USD"}
    run.measure(
        "POST",
        f"{base}/purchases",
        PROV,
        {"items": [{"sku": "SH-1", "name": "Shampoo", "quantity": 1, "unit_price": money}]},
    )
    package = run.measure("POST", f"{base}/packages", PROV, {"name": "5 blow-dries", "sessions": 5, "price": money})
    run.measure("POST", f"{base}/packages/{package['package_id']}/redemptions", PROV, {})
    card = run.measure("POST", f"{base}/gift-cards", PROV, {"amount": 5000, "currency": "USD"})
    run.measure("POST", f"{base}/gift-cards/{card['gift_card_id']}/redemptions", PROV, {"amount": 1000})
    upload_id = _upload(run, base)
    world.settle()

    # --- reads, warm, as the app makes them
    run.measure("GET", "/me", PROV)
    run.measure("GET", "/me/clients", PROV)
    run.measure("GET", "/me/changes", PROV)
    got = run.measure("GET", base, PROV)
    run.measure("GET", f"{base}/log", PROV)
    run.measure("GET", f"{base}/notes", PROV)
    run.measure("GET", f"{base}/formulas", PROV)
    run.measure("GET", f"{base}/uploads", PROV)
    run.measure("GET", f"/studios/{sid}", OWNER)
    run.measure("GET", f"/studios/{sid}/members", OWNER)
    run.measure("GET", f"/studios/{sid}/members/{PROV}", OWNER)
    run.measure("GET", f"/studios/{sid}/clients", OWNER)
    run.measure("GET", f"/studios/{sid}/members/{PROV2}/departure", OWNER)

    # --- writes on existing things
    etag = got.headers.get("ETag") or got.headers.get("etag") or ""
    run.measure("PATCH", base, PROV, {"allergies": ["ammonia"]}, headers={"If-Match": etag})
    run.measure("PATCH", f"{base}/notes/{note['note_id']}", PROV, {"body": "Prefers early mornings."})
    run.measure("PUT", f"{base}/block", PROV)
    run.measure("DELETE", f"{base}/block", PROV)
    run.measure("PATCH", f"/studios/{sid}/members/{APPR}", OWNER, {"role": "assistant"})
    run.measure("DELETE", f"/studios/{sid}/clients/{c2}/assignees/{PROV}", OWNER)
    run.measure("DELETE", f"{base}/uploads/{upload_id}", PROV)
    run.measure("DELETE", f"{base}/notes/{note['note_id']}", PROV)
    run.measure("DELETE", f"/studios/{sid}/clients/{c3}", OWNER)
    run.measure("DELETE", f"/studios/{sid}/members/{PROV2}", OWNER)
    run.measure("POST", f"/studios/{sid}/owner", OWNER, {"pro_id": ADMIN2})
    # a solo pro's book
    run.call("GET", "/me", SOLO)
    solo_client = run.call("POST", "/clients", SOLO, {"name": "Dora Solo", "phone": phone()})["client_id"]
    run.measure("PUT", f"/pros/{SOLO}/plan", OPS, {"plan": "premium"}, groups=["operators"])
    run.measure("DELETE", f"/clients/{solo_client}", SOLO)
    world.settle()
    missing = {r.route_key for r in world.routes} - set(run.results)
    if missing:
        raise AssertionError(f"routes not measured: {sorted(missing)}")
    return run.results


def _upload(run: Run, base: str) -> str:
    """Ask for an upload, put the file where the grant says (as the app's POST would), and let S3's event confirm it."""
    data = b"%PDF-1.4\n" + b"0" * 2039 + b"\n%%EOF\n"
    grant = run.measure("POST", f"{base}/uploads", PROV, {"content_type": "application/pdf", "size": len(data)})
    fields = grant["fields"]
    s3 = run.world.aws.client("s3")
    bucket = run.world.resources.buckets["UploadsBucket"]
    s3.put_object(
        Bucket=bucket, Key=fields["key"], Body=data, ContentType=fields.get("Content-Type", "application/pdf")
    )
    return str(grant["upload_id"])


def warm(world: World) -> None:
    """One request to every HTTP function first (an unknown id: a 404), so the counts are of warm instances."""
    seen: set[str] = set()
    for route in world.routes:
        if route.function in seen:
            continue
        seen.add(route.function)
        path = route.path
        for param in route.params:
            path = path.replace("{" + param + "}", "01JD0000000000000000000000")
        world.call(route.method, path, "warmup")


Check = Callable[[Measured], str | None]


def check_targets(measured: dict[str, Measured], budgets: dict[str, int]) -> list[str]:
    """What misses DATA-MODEL.md's targets or the recorded budgets."""
    misses = []
    for key, m in sorted(measured.items()):
        limit = budgets.get(key)
        if m.ddb.count("Scan"):
            misses.append(f"{key}: {m.ddb.count('Scan')} Scan")
        if limit is not None and len(m.ddb) > limit:
            misses.append(f"{key}: {len(m.ddb)} DynamoDB calls > budget {limit}")
        target = 2 if key.startswith("GET ") else 3
        if len(m.ddb) > target:
            misses.append(f"{key}: {len(m.ddb)} DynamoDB calls > target {target}")
    return misses
