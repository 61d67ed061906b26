"""History and the Client Log: every transition, the role rules, the call budgets and the log's
ordering and bounds (moto in-process, the handlers invoked as Lambda would)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from ulid import ULID

from devstack.functions import LambdaContext, load_handler
from devstack.gateway import http_event
from devstack.template import Template
from salon.data import keys
from salon.data.models import Appointment, ClientProfile, ProProfile, Purchase, PurchaseLine, TableItem
from salon.services.history import TRANSITIONS, slot_minutes

STUDIO = "01JD00000000000000000HSTUD"
Invoke = Callable[..., dict[str, Any]]


def _pro(pro_id: str, role: str | None, studio: str | None = STUDIO) -> None:
    p = ProProfile(keys.pro_pk(pro_id), keys.PROFILE)
    if role is not None:
        p.studio_id = studio
        p.role = role
        p.membership_status = "active"
        p.studio_time_zone = "Europe/Paris"
        p.studio_country = "FR"
    p.save()


def _client(owner: str, assignees: set[str]) -> str:
    client_id = str(ULID())
    p = ClientProfile(keys.client_pk(client_id), keys.PROFILE)
    p.client_id = client_id
    p.owner = owner
    p.name = p.name_folded = "Ana"
    p.phone = "+33612345678"
    p.email = "ana@example.com"
    p.version = 1
    p.created_at = p.updated_at = "2026-01-01T00:00:00.000Z"
    p.created_by = "adm"
    p.assignees = assignees
    p.save()
    return client_id


def _studio(*members: tuple[str, str]) -> None:
    for pro_id, role in members:
        _pro(pro_id, role)


def _next_slot(minutes_ahead: int = 60) -> str:
    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes_ahead)
    now = now.replace(second=0, microsecond=0)
    now -= dt.timedelta(minutes=now.minute % 5)
    return now.isoformat()


def _booking(provider: str, start: str | None = None, minutes: int = 60, amount: int = 4500) -> dict[str, Any]:
    return {
        "provider_id": provider,
        "start": start or _next_slot(),
        "services": [{"name": "Cut", "minutes": minutes, "price": {"amount": amount, "currency": "EUR"}}],
    }


@pytest.fixture
def invoke(aws: Template) -> Invoke:
    functions = aws.functions()
    handlers = {name: load_handler(functions[name]) for name in ("HistoryFunction", "ClientsFunction")}
    routes = [r for r in aws.http_routes() if r.function in handlers]

    def call(method: str, path: str, sub: str, body: Any = None) -> dict[str, Any]:
        for route in routes:
            match = route.regex.match(path)
            if route.method == method and match:
                params = dict(zip(route.params, match.groups(), strict=True))
                raw = json.dumps(body).encode() if body is not None else b""
                headers = {"content-type": "application/json"}
                event = http_event(route, method, path, "", headers, raw, {"sub": sub}, params)
                result: dict[str, Any] = handlers[route.function](event, LambdaContext(route.function))
                result["json"] = json.loads(result["body"]) if result.get("body") else None
                return result
        raise AssertionError(f"no route for {method} {path}")

    return call


def _measured(invoke: Invoke, api_calls: list[str], *args: Any) -> tuple[dict[str, Any], list[str]]:
    api_calls.clear()
    result = invoke(*args)
    return result, list(api_calls)


# ------------------------------------------------------------------ budgets
def test_every_history_write_stays_within_three_calls(invoke: Invoke, api_calls: list[str], faults_off: None) -> None:
    """Counts calls, so with faults off (a retry adds calls): the budget is the design's."""
    _studio(("adm", "admin"), ("prov", "provider"))
    client_id = _client(f"STUDIO#{STUDIO}", {"prov"})
    base = f"/clients/{client_id}"

    booked, calls = _measured(invoke, api_calls, "POST", f"{base}/appointments", "prov", _booking("prov"))
    assert booked["statusCode"] == 201, booked
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    aid = booked["json"]["appointment_id"]

    checked, calls = _measured(invoke, api_calls, "POST", f"{base}/appointments/{aid}/check-in", "prov")
    assert checked["statusCode"] == 200, checked
    assert calls == ["BatchGetItem", "GetItem", "TransactWriteItems"]

    done, calls = _measured(invoke, api_calls, "POST", f"{base}/appointments/{aid}/complete", "prov")
    assert done["json"]["status"] == "completed"
    assert calls == ["BatchGetItem", "GetItem", "UpdateItem"]

    items = [{"sku": "SH-1", "name": "Shampoo", "quantity": 2, "unit_price": {"amount": 1250, "currency": "EUR"}}]
    sold, calls = _measured(invoke, api_calls, "POST", f"{base}/purchases", "prov", {"items": items})
    assert sold["statusCode"] == 201
    assert calls == ["BatchGetItem", "TransactWriteItems"]

    again, calls = _measured(
        invoke, api_calls, "POST", f"{base}/purchases", "prov", {"repeat_of": sold["json"]["purchase_id"]}
    )
    assert again["statusCode"] == 201
    assert calls == ["BatchGetItem", "GetItem", "TransactWriteItems"]

    pkg, calls = _measured(
        invoke,
        api_calls,
        "POST",
        f"{base}/packages",
        "adm",
        {"name": "5 blow-dries", "sessions": 5, "price": {"amount": 10000, "currency": "EUR"}},
    )
    assert pkg["statusCode"] == 201
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    redeemed, calls = _measured(
        invoke, api_calls, "POST", f"{base}/packages/{pkg['json']['package_id']}/redemptions", "adm"
    )
    assert redeemed["json"]["sessions_left"] == 4
    assert calls == ["BatchGetItem", "UpdateItem"]

    card, calls = _measured(invoke, api_calls, "POST", f"{base}/gift-cards", "adm", {"amount": 5000, "currency": "EUR"})
    assert card["statusCode"] == 201
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    spent, calls = _measured(
        invoke, api_calls, "POST", f"{base}/gift-cards/{card['json']['gift_card_id']}/redemptions", "adm", {"amount": 1}
    )
    assert spent["json"]["balance"] == {"amount": 4999, "currency": "EUR"}
    assert calls == ["BatchGetItem", "UpdateItem"]


def test_the_log_decides_access_from_the_small_items_then_reads_the_record(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, faults_off: None
) -> None:
    """Decision D36: one BatchGetItem (caller's profile and flags, the client's profile, alias, check-ins), then,
    only when allowed, one Query of the collection; a stranger's or a missing id's log is the BatchGetItem
    alone, so a refused read costs what a missing one costs however large the record (before: the Query of
    the whole collection ran alongside the access read, for everyone). Counts calls: faults off."""
    _studio(("adm", "admin"), ("prov", "provider"))
    client_id = _client(f"STUDIO#{STUDIO}", {"prov"})
    assert invoke("POST", f"/clients/{client_id}/appointments", "prov", _booking("prov"))["statusCode"] == 201
    line = {
        "sku": "SH-1",
        "name": "Shampoo",
        "quantity": 1,
        "unit_price": {"amount": 1250, "currency": "EUR"},
    }
    for _ in range(30):
        assert invoke("POST", f"/clients/{client_id}/purchases", "prov", {"items": [line] * 5})["statusCode"] == 201

    import botocore.client

    seen: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation: str, params: dict[str, Any]) -> Any:
        seen.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    log = invoke("GET", f"/clients/{client_id}/log", "prov")
    assert log["statusCode"] == 200, log
    assert seen == ["BatchGetItem", "Query"]
    assert len(log["json"]["upcoming_appointments"]) == 1
    assert len(log["json"]["purchases"]) == 30
    for caller, cid in (("stranger", client_id), ("prov", "01JD0000000000000000000099")):
        seen.clear()
        refused = invoke("GET", f"/clients/{cid}/log", caller)
        assert refused["statusCode"] == 404, refused
        assert refused["json"]["error"]["code"] == "client_not_found"
        assert seen == ["BatchGetItem"], (caller, seen)


def test_a_stranger_gets_404_from_the_log_and_from_every_write(
    invoke: Invoke, api_calls: list[str], faults_off: None
) -> None:
    """Counts calls (a refusal costs at most two): faults off."""
    _studio(("adm", "admin"), ("prov", "provider"))
    client_id = _client(f"STUDIO#{STUDIO}", {"prov"})
    for method, path, body in (
        ("GET", "log", None),
        ("POST", "appointments", {"bad": True}),
        ("POST", "purchases", {"items": []}),
        ("POST", "gift-cards", {"amount": -1, "currency": "eur"}),
    ):
        resp, calls = _measured(invoke, api_calls, method, f"/clients/{client_id}/{path}", "stranger", body)
        assert resp["statusCode"] == 404, (path, resp)
        assert resp["json"]["error"]["code"] == "client_not_found"
        assert len(calls) <= 2


# --------------------------------------------------------------- transitions
START_STATUSES = ("booked", "checked_in", "completed", "cancelled", "no_show")


@pytest.mark.parametrize("status", START_STATUSES)
@pytest.mark.parametrize("action", list(TRANSITIONS))
def test_only_valid_transitions(invoke: Invoke, status: str, action: str) -> None:
    _studio(("prov", "provider"))
    client_id = _client(f"STUDIO#{STUDIO}", {"prov"})
    booked = invoke("POST", f"/clients/{client_id}/appointments", "prov", _booking("prov"))
    aid = booked["json"]["appointment_id"]
    Appointment.get(keys.client_pk(client_id), keys.appointment_sk(aid), consistent_read=True).update(
        actions=[Appointment.status.set(status)]
    )
    resp = invoke("POST", f"/clients/{client_id}/appointments/{aid}/{action}", "prov")
    froms, to = TRANSITIONS[action]
    if status in froms:
        assert resp["statusCode"] == 200, resp
        assert resp["json"]["status"] == to
    else:
        assert resp["statusCode"] == 409, resp
        assert resp["json"]["error"]["code"] == "invalid_transition"
        assert resp["json"]["error"]["details"]["status"] == status
    stored = TableItem.get(keys.client_pk(client_id), keys.appointment_sk(aid), consistent_read=True)
    assert isinstance(stored, Appointment)
    assert stored.status == (to if status in froms else status)


def test_the_status_write_refuses_a_stale_read(aws: Template) -> None:
    """Two actions racing: the second one's conditional write sees the first one's status."""
    from salon.data.history_repo import StatusRefused, repository

    _studio(("prov", "provider"))
    client_id = _client(f"STUDIO#{STUDIO}", {"prov"})
    appt = Appointment(keys.client_pk(client_id), keys.appointment_sk("A1"))
    appt.appointment_id, appt.client_id, appt.provider_id, appt.booked_by = "A1", client_id, "prov", "prov"
    appt.start, appt.end, appt.minutes, appt.services = "2030-01-01T10:00:00Z", "2030-01-01T10:30:00Z", 30, []
    appt.total, appt.currency, appt.status = 0, "EUR", "booked"
    appt.created_at = appt.updated_at = "2029-01-01T00:00:00Z"
    appt.save()
    stale = Appointment.get(appt.pk, appt.sk, consistent_read=True)
    repository.move_appointment(appt, "no_show", ("booked",), "now", True, None, None, None)
    with pytest.raises(StatusRefused) as refused:
        repository.move_appointment(stale, "checked_in", ("booked",), "now", False, "2030-01-01", STUDIO, 1)
    assert refused.value.status == "no_show"
    # the failed check-in wrote no check-in item
    assert (
        list(TableItem.query(keys.client_pk(client_id), TableItem.sk.startswith("CHECKIN#"), consistent_read=True))
        == []
    )


def test_slots_cover_the_visit_in_utc() -> None:
    start = dt.datetime(2026, 3, 29, 3, 55, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert slot_minutes(start, 15) == ["2026-03-29T01:55", "2026-03-29T02:00", "2026-03-29T02:05"]


# ----------------------------------------------------------------- the roles
@pytest.mark.parametrize("role", ["apprentice", "assistant"])
def test_masked_roles_get_403_before_validation(invoke: Invoke, role: str) -> None:
    _studio(("prov", "provider"), ("helper", role))
    client_id = _client(f"STUDIO#{STUDIO}", {"prov", "helper"})
    for path, body in (
        ("appointments", {"nonsense": 1}),
        ("purchases", {"items": "no"}),
        ("packages", {}),
        ("gift-cards", {"amount": 1.5}),
        (f"gift-cards/{ULID()}/redemptions", {"amount": -3}),
        (f"appointments/{ULID()}/check-in", None),
    ):
        resp = invoke("POST", f"/clients/{client_id}/{path}", "helper", body)
        assert resp["statusCode"] == 403, (path, resp)
    log = invoke("GET", f"/clients/{client_id}/log", "helper")
    assert log["statusCode"] == 200
    assert log["json"]["client"]["phone"] is None
    assert log["json"]["client"]["email"] is None
    assert log["json"]["client"]["masked"] is True


def test_provider_books_only_themselves_and_admin_any_active_member(invoke: Invoke) -> None:
    _studio(("adm", "admin"), ("prov", "provider"), ("other", "provider"))
    _pro("elsewhere", "provider", studio="01JD00000000000000000OTHER")
    client_id = _client(f"STUDIO#{STUDIO}", {"prov"})
    base = f"/clients/{client_id}/appointments"
    refused = invoke("POST", base, "prov", _booking("other"))
    assert refused["statusCode"] == 403
    by_admin = invoke("POST", base, "adm", _booking("other"))
    assert by_admin["statusCode"] == 201, by_admin
    profile = ClientProfile.get(keys.client_pk(client_id), keys.PROFILE, consistent_read=True)
    assert "other" in profile.assignees
    assert "other" in profile.history_pros
    foreign = invoke("POST", base, "adm", _booking("elsewhere", _next_slot(300)))
    assert foreign["statusCode"] == 422
    assert foreign["json"]["error"]["code"] == "provider_not_member"


def test_solo_pro_books_only_themselves(invoke: Invoke) -> None:
    _pro("solo", None)
    client_id = _client("PRO#solo", {"solo"})
    assert invoke("POST", f"/clients/{client_id}/appointments", "solo", _booking("someone"))["statusCode"] == 403
    assert invoke("POST", f"/clients/{client_id}/appointments", "solo", _booking("solo"))["statusCode"] == 201


# ------------------------------------------------------------------- the log
def test_log_sections_are_ordered_and_bounded(invoke: Invoke) -> None:
    _pro("solo", None)
    client_id = _client("PRO#solo", {"solo"})
    for i in range(55):
        p = Purchase(keys.client_pk(client_id), keys.purchase_sk(str(ULID())))
        p.purchase_id, p.client_id, p.sold_by = p.sk.split("#", 1)[1], client_id, "solo"
        p.items = [PurchaseLine(sku="S", name="x", quantity=1, unit_price=i)]
        p.total, p.currency = i, "USD"
        p.created_at = f"2026-01-01T00:{i:02d}:00Z"
        p.save()
    later = invoke("POST", f"/clients/{client_id}/appointments", "solo", _booking("solo", _next_slot(600)))
    sooner = invoke("POST", f"/clients/{client_id}/appointments", "solo", _booking("solo", _next_slot(120)))
    log = invoke("GET", f"/clients/{client_id}/log", "solo")["json"]
    assert [p["total"]["amount"] for p in log["purchases"]] == list(range(54, 4, -1))
    assert log["more"] == ["purchases"]
    assert [a["appointment_id"] for a in log["upcoming_appointments"]] == [
        sooner["json"]["appointment_id"],
        later["json"]["appointment_id"],
    ]
    assert log["client"]["phone"] == "+33612345678"


# ------------------------------------------------------- AWS transaction conflicts
def _conflicting_client(monkeypatch: pytest.MonkeyPatch, conflicts: int) -> list[int]:
    """TransactWriteItems cancelled with TransactionConflict ``conflicts`` times (as AWS does when two
    transactions meet on one item), then passed through."""
    from botocore.exceptions import ClientError

    from salon.data import history_repo

    real = history_repo._client()
    seen = [0]

    class Conflicting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            seen[0] += 1
            if seen[0] <= conflicts:
                reasons = [{"Code": "None"}] + [{"Code": "TransactionConflict"}] * (len(kwargs["TransactItems"]) - 1)
                raise ClientError(
                    {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons},
                    "TransactWriteItems",
                )
            return real.transact_write_items(**kwargs)

    monkeypatch.setattr(history_repo, "_client", Conflicting)
    return seen


def test_a_sale_that_meets_another_transaction_is_tried_again(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, faults_off: None
) -> None:
    """Counts the transaction's attempts (two injected conflicts, then the write): faults off, or a drawn
    conflict or throttle adds an attempt."""
    _pro("solo", None)
    client_id = _client("PRO#solo", {"solo"})
    seen = _conflicting_client(monkeypatch, conflicts=2)
    resp = invoke("POST", f"/clients/{client_id}/gift-cards", "solo", {"amount": 100, "currency": "USD"})
    assert resp["statusCode"] == 201, resp
    assert seen[0] == 3
    assert (
        len(list(TableItem.query(keys.client_pk(client_id), TableItem.sk.startswith("GIFT#"), consistent_read=True)))
        == 1
    )


def test_a_booking_that_keeps_meeting_other_writes_is_409_and_writes_nothing(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pro("solo", None)
    client_id = _client("PRO#solo", {"solo"})
    _conflicting_client(monkeypatch, conflicts=99)
    resp = invoke("POST", f"/clients/{client_id}/appointments", "solo", _booking("solo"))
    assert resp["statusCode"] == 409
    assert resp["json"]["error"]["code"] == "write_conflict"
    assert (
        list(TableItem.query(keys.client_pk(client_id), TableItem.sk.startswith("APPT#"), consistent_read=True)) == []
    )
    assert list(TableItem.query(keys.pro_pk("solo"), TableItem.sk.startswith("SLOT#"), consistent_read=True)) == []
