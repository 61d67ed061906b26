"""The local stack's AWS-like DynamoDB faults (devstack/ddb_faults.py: throttles, TransactionConflict,
unprocessed batch items, lagging reads), on in-process, against a pro's ordinary day: at the default rates the
retries absorb every fault (no 5xx, no 409 write_conflict); at rates far above them only the documented 503
``throttled`` (with Retry-After) or 409 ``write_conflict`` appear, never a 500, and nothing acknowledged is lost.
AWS: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.template import Template
from tests.unit.test_import_in_progress import _call

SEED = 20261204


@pytest.fixture
def use_faults(aws: Template) -> Iterator[Any]:
    from devstack import ddb_faults, faults, moto_patches

    moto_patches.apply()

    def configure(spec: str) -> None:
        faults.configure(spec, seed=SEED)
        print(f"faults: DEVSTACK_FAULTS={spec},seed={faults.seed()}")

    yield configure
    print(faults.report())
    faults.configure("off")
    ddb_faults.reset()


def _day(aws: Template) -> tuple[list[dict[str, Any]], list[str]]:
    """A pro registers clients, edits them, writes notes, reads their list and logs; every answer, and the ids
    of the clients whose registration was acknowledged."""
    answers: list[dict[str, Any]] = []
    acknowledged: list[str] = []

    def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        resp = _call(aws, method, path, "bob", body, headers)
        answers.append({"route": f"{method} {path}", **resp})
        return resp

    for i in range(12):
        resp = call("POST", "/clients", {"name": f"Client {i}", "phone": f"+1 212 555 {i:04d}"})
        if resp["statusCode"] == 201:
            acknowledged.append(json.loads(resp["body"])["client_id"])
    for cid in acknowledged[:6]:
        call("POST", f"/clients/{cid}/notes", {"body": "Patch test before colour."})
        call("PATCH", f"/clients/{cid}", {"name": "Renamed"}, {"if-match": '"1"'})
        call("GET", f"/clients/{cid}")
        call("GET", f"/clients/{cid}/log")
    call("GET", "/me/clients")
    return answers, acknowledged


def _listed(aws: Template) -> set[str]:
    resp = _call(aws, "GET", "/me/clients", "bob")
    assert resp["statusCode"] == 200, resp
    return {c["client_id"] for c in json.loads(resp["body"])["items"]}


def test_at_the_default_rates_the_retries_absorb_every_fault(aws: Template, use_faults: Any) -> None:
    use_faults("default")
    answers, acknowledged = _day(aws)
    refused = [(a["route"], a["statusCode"], a.get("body")) for a in answers if a["statusCode"] >= 409]
    assert refused == []
    assert len(acknowledged) == 12
    use_faults("off")
    assert set(acknowledged) <= _listed(aws)


def test_far_above_them_only_documented_503s_and_409s_appear_and_nothing_acknowledged_is_lost(
    aws: Template, use_faults: Any
) -> None:
    from devstack import faults

    use_faults("default,throttle=0.3,conflict=0.3,unprocessed=0.5")
    answers, acknowledged = _day(aws)
    assert faults.counts().get("throttle", 0) > 10  # the faults really happened
    for answer in answers:
        if answer["statusCode"] >= 500 or answer["statusCode"] == 409:
            code = json.loads(answer["body"])["error"]["code"]
            assert (answer["statusCode"], code) in {(503, "throttled"), (409, "write_conflict")}, answer
            assert int(answer["headers"]["Retry-After"]) >= 1
    use_faults("off")
    assert set(acknowledged) <= _listed(aws)


def test_overlapping_bookings_under_conflicts_and_throttles_give_one_appointment_and_no_500(
    aws: Template, use_faults: Any
) -> None:
    """A booking's transaction cancelled by throttled items or a concurrent transaction (no condition failed) was
    a 500 (RuntimeError); it is retried, then the documented 409 or 503."""
    import datetime as dt

    clients = []
    for i in range(3):
        created = _call(aws, "POST", "/clients", "ana", {"name": f"C{i}", "phone": f"+1 212 555 {i:04d}"})
        clients.append(json.loads(created["body"])["client_id"])
    use_faults("default,conflict=0.5,throttle=0.2")
    moment = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(second=0, microsecond=0)
    start = moment - dt.timedelta(minutes=moment.minute % 5)
    answers = []
    for i in range(12):
        service = {"name": "Cut", "minutes": 30, "price": {"amount": 4500, "currency": "EUR"}}
        body = {"provider_id": "ana", "start": (start + dt.timedelta(minutes=5 * (i % 4))).isoformat()}
        resp = _call(aws, "POST", f"/clients/{clients[i % 3]}/appointments", "ana", {**body, "services": [service]})
        code = json.loads(resp["body"])["error"]["code"] if resp["statusCode"] >= 400 else ""
        answers.append((resp["statusCode"], code))
    assert [a for a in answers if a[0] == 201] == [(201, "")], answers
    allowed = {(201, ""), (409, "slot_taken"), (409, "write_conflict"), (503, "throttled")}
    assert set(answers) <= allowed, answers
