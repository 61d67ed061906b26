"""Appointments, purchases, packages and gift cards over HTTP on the local stack: every transition,
limit and role rule of SPEC.md "Client Log" and "Who may do what"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.studio_helpers import (
    TABLE,
    get_item,
    make_studio,
    put_studio_client,
    set_blocked,
    studio_today,
)

Pro = Callable[..., Api]


def slot(minutes_ahead: int = 60) -> dt.datetime:
    """A start on the 5-minute grid, ``minutes_ahead`` from now (UTC)."""
    moment = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes_ahead)).replace(second=0, microsecond=0)
    return moment - dt.timedelta(minutes=moment.minute % 5)


def booking(provider: str, start: dt.datetime, minutes: int = 60, amount: int = 4500, currency: str = "EUR") -> dict:
    return {
        "provider_id": provider,
        "start": start.isoformat(),
        "services": [{"name": "Cut and colour", "minutes": minutes, "price": {"amount": amount, "currency": currency}}],
    }


def solo_client(api: Api) -> str:
    resp = api.post("/clients", json={"name": "Hist Client", "phone": unique_phone()})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["client_id"])


def book(api: Api, client_id: str, body: dict[str, Any]) -> Any:
    return api.post(f"/clients/{client_id}/appointments", json=body)


def act(api: Api, client_id: str, appointment_id: str, action: str) -> Any:
    return api.post(f"/clients/{client_id}/appointments/{appointment_id}/{action}")


def error_code(resp: Any) -> str:
    return str(resp.json()["error"]["code"])


# ------------------------------------------------------------------ appointments
def test_book_then_check_in_then_complete_and_every_refused_transition(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    start = slot(30)
    booked = book(ana, cid, booking(ana.sub, start, minutes=45, amount=6000))
    assert booked.status_code == 201, booked.text
    appt = booked.json()
    assert appt["status"] == "booked"
    assert dt.datetime.fromisoformat(appt["end"]) - dt.datetime.fromisoformat(appt["start"]) == dt.timedelta(minutes=45)
    assert appt["total"] == {"amount": 6000, "currency": "EUR"}
    aid = appt["appointment_id"]

    refused = act(ana, cid, aid, "complete")  # not checked in yet
    assert refused.status_code == 409
    assert error_code(refused) == "invalid_transition"
    assert act(ana, cid, aid, "check-in").json()["status"] == "checked_in"
    for action in ("check-in", "no-show"):
        again = act(ana, cid, aid, action)
        assert again.status_code == 409, action
        assert error_code(again) == "invalid_transition"
    assert act(ana, cid, aid, "complete").json()["status"] == "completed"
    for action in ("check-in", "complete", "cancel", "no-show"):
        final = act(ana, cid, aid, action)
        assert final.status_code == 409, action
        assert final.json()["error"]["details"]["status"] == "completed"


def test_cancel_and_no_show_are_final_and_free_the_providers_time(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    start = slot(24 * 60)
    first = book(ana, cid, booking(ana.sub, start)).json()["appointment_id"]
    overlapping = book(ana, cid, booking(ana.sub, start + dt.timedelta(minutes=30)))
    assert overlapping.status_code == 409
    assert error_code(overlapping) == "slot_taken"
    right_after = book(ana, cid, booking(ana.sub, start + dt.timedelta(minutes=60), minutes=30))
    assert right_after.status_code == 201, right_after.text

    assert act(ana, cid, first, "cancel").json()["status"] == "cancelled"
    assert act(ana, cid, first, "check-in").status_code == 409
    assert act(ana, cid, first, "cancel").status_code == 409
    rebooked = book(ana, cid, booking(ana.sub, start + dt.timedelta(minutes=30), minutes=30))
    assert rebooked.status_code == 201, rebooked.text

    missed = right_after.json()["appointment_id"]
    assert act(ana, cid, missed, "no-show").json()["status"] == "no_show"
    assert act(ana, cid, missed, "complete").status_code == 409
    assert book(ana, cid, booking(ana.sub, start + dt.timedelta(minutes=60), minutes=30)).status_code == 201


def test_a_checked_in_visit_can_be_cancelled_but_not_marked_missed(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    aid = book(ana, cid, booking(ana.sub, slot(10))).json()["appointment_id"]
    assert act(ana, cid, aid, "check-in").status_code == 200
    assert act(ana, cid, aid, "no-show").status_code == 409
    assert act(ana, cid, aid, "cancel").json()["status"] == "cancelled"


def test_concurrent_overlapping_bookings_give_exactly_one_appointment(pro: Pro) -> None:
    ana = pro("ana")
    clients = [solo_client(ana) for _ in range(3)]
    start = slot(3 * 24 * 60)
    bodies = [booking(ana.sub, start + dt.timedelta(minutes=5 * (i % 4)), minutes=30) for i in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda ib: book(ana, clients[ib[0] % 3], ib[1]), enumerate(bodies)))
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 1, codes
    assert all(error_code(r) == "slot_taken" for r in results if r.status_code == 409)
    assert set(codes) == {201, 409}


def test_unknown_appointment_and_unknown_action(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    missing = act(ana, cid, "01JD0000000000000000000000", "check-in")
    assert missing.status_code == 404
    assert error_code(missing) == "appointment_not_found"
    aid = book(ana, cid, booking(ana.sub, slot(90))).json()["appointment_id"]
    assert act(ana, cid, aid, "delete").status_code == 422


def test_check_in_opens_on_the_day_not_weeks_ahead(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    aid = book(ana, cid, booking(ana.sub, slot(3 * 24 * 60))).json()["appointment_id"]
    early = act(ana, cid, aid, "check-in")
    assert early.status_code == 409
    assert error_code(early) == "check_in_window"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "2031-01-01T10:03:00+00:00"}, "start"),  # off the 5-minute grid
        ({"start": "2031-01-01T10:00:00"}, "start"),  # no offset
        ({"start": "yesterday"}, "start"),
        ({"start": "2020-01-01T10:00:00+00:00"}, "start"),  # over already
        ({"start": "2099-01-01T10:00:00+00:00"}, "start"),  # too far ahead
        ({"services": []}, "services"),
        ({"services": [{"name": "x", "minutes": 7, "price": {"amount": 1, "currency": "EUR"}}]}, "minutes"),
        ({"services": [{"name": "x", "minutes": 485, "price": {"amount": 1, "currency": "EUR"}}]}, "minutes"),
        ({"services": [{"name": "x", "minutes": 30, "price": {"amount": 10.5, "currency": "EUR"}}]}, "amount"),
        ({"services": [{"name": "x", "minutes": 30, "price": {"amount": -1, "currency": "EUR"}}]}, "amount"),
        ({"services": [{"name": "x", "minutes": 30, "price": {"amount": "10", "currency": "EUR"}}]}, "amount"),
        ({"services": [{"name": "x", "minutes": 30, "price": {"amount": 10, "currency": "eur"}}]}, "currency"),
        ({"services": [{"name": "x", "minutes": 30, "price": 10}]}, "price"),
        (
            {
                "services": [
                    {"name": "x", "minutes": 30, "price": {"amount": 10, "currency": "EUR"}},
                    {"name": "y", "minutes": 30, "price": {"amount": 10, "currency": "USD"}},
                ]
            },
            "",
        ),
        ({"provider_id": "a#b"}, "provider_id"),
        ({"extra": True}, "extra"),
    ],
)
def test_bad_dates_money_and_services_are_422(pro: Pro, change: dict[str, Any], field: str) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    body = {**booking(ana.sub, dt.datetime(2031, 1, 1, 10, tzinfo=dt.UTC)), **change}
    resp = book(ana, cid, body)
    assert resp.status_code == 422, resp.text
    assert any(field in [str(p) for p in d["loc"]] or not field for d in resp.json()["error"]["details"])


def test_a_blocked_client_cannot_be_booked_with_the_blocking_pro(stack: Stack, pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    set_blocked(stack, ana.sub, cid, True)
    refused = book(ana, cid, booking(ana.sub, slot(120)))
    assert refused.status_code == 409
    assert error_code(refused) == "client_blocked"
    set_blocked(stack, ana.sub, cid, False)
    assert book(ana, cid, booking(ana.sub, slot(120))).status_code == 201


# ------------------------------------------------------------------- roles
def test_studio_roles_for_booking(stack: Stack, pro: Pro) -> None:
    boss, bea, carl, ida = pro("boss"), pro("bea"), pro("carl"), pro("ida")
    studio = make_studio(
        stack, admin=boss.sub, members={bea.sub: "provider", carl.sub: "provider", ida.sub: "assistant"}
    )
    outsider = pro("out")
    make_studio(stack, admin=outsider.sub)
    cid = put_studio_client(stack, studio, assignees=[bea.sub, ida.sub], phone="+14155550123")

    assert book(bea, cid, booking(carl.sub, slot(60))).status_code == 403  # a provider books only themselves
    assert book(ida, cid, booking(ida.sub, slot(60))).status_code == 403  # assistants do not book
    assert book(carl, cid, booking(carl.sub, slot(60))).status_code == 404  # not assigned: cannot see it
    wrong_studio = book(boss, cid, booking(outsider.sub, slot(60)))
    assert wrong_studio.status_code == 422
    assert error_code(wrong_studio) == "provider_not_member"

    by_admin = book(boss, cid, booking(carl.sub, slot(60)))
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["booked_by"] == boss.sub
    profile = get_item(stack, f"CLIENT#{cid}", "PROFILE")
    assert profile is not None
    assert carl.sub in profile["assignees"]["SS"]
    assert carl.sub in profile["history_pros"]["SS"]
    stack.drain()
    assert cid in [c["client_id"] for c in carl.get("/me/clients").json()["items"]]  # booking assigned carl
    assert carl.get(f"/clients/{cid}/log").status_code == 200

    aid = by_admin.json()["appointment_id"]
    assert act(bea, cid, aid, "cancel").status_code == 403  # someone else's appointment
    assert act(ida, cid, aid, "check-in").status_code == 403
    assert act(carl, cid, aid, "check-in").status_code == 200  # the provider's own


def test_check_in_is_recorded_on_the_studios_local_date(stack: Stack, pro: Pro) -> None:
    boss, ida = pro("boss"), pro("ida")
    zone = "Pacific/Kiritimati"  # UTC+14: its date is usually not UTC's
    studio = make_studio(stack, admin=boss.sub, members={ida.sub: "apprentice"}, time_zone=zone)
    cid = put_studio_client(stack, studio, assignees=[], phone="+14155550124")
    assert ida.get(f"/clients/{cid}/log").status_code == 404
    aid = book(boss, cid, booking(boss.sub, slot(15))).json()["appointment_id"]
    assert act(boss, cid, aid, "check-in").status_code == 200
    item = get_item(stack, f"CLIENT#{cid}", f"CHECKIN#{studio_today(zone)}")
    assert item is not None
    assert aid in item["appointment_ids"]["SS"]
    end_of_day = dt.datetime.fromisoformat(studio_today(zone)).replace(tzinfo=dt.UTC)
    assert int(item["expires_at"]["N"]) > end_of_day.timestamp()
    log = ida.get(f"/clients/{cid}/log")
    assert log.status_code == 200
    assert log.json()["client"]["phone"] is None
    assert log.json()["client"]["masked"] is True


@pytest.mark.parametrize("role", ["apprentice", "assistant"])
def test_masked_roles_cannot_sell_or_book_even_when_assigned(stack: Stack, pro: Pro, role: str) -> None:
    boss, helper = pro("boss"), pro(role)
    studio = make_studio(stack, admin=boss.sub, members={helper.sub: role})
    cid = put_studio_client(stack, studio, assignees=[helper.sub], phone="+14155550125")
    card = boss.post(f"/clients/{cid}/gift-cards", json={"amount": 1000, "currency": "USD"}).json()
    pkg = boss.post(
        f"/clients/{cid}/packages", json={"name": "P", "sessions": 2, "price": {"amount": 1, "currency": "USD"}}
    ).json()
    attempts = [
        ("appointments", booking(helper.sub, slot(60))),
        (
            "purchases",
            {"items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price": {"amount": 1, "currency": "USD"}}]},
        ),
        ("packages", {"name": "P", "sessions": 1, "price": {"amount": 1, "currency": "USD"}}),
        ("gift-cards", {"amount": 10, "currency": "USD"}),
        (f"packages/{pkg['package_id']}/redemptions", None),
        (f"gift-cards/{card['gift_card_id']}/redemptions", {"amount": 1}),
        ("purchases", {"items": "not even valid"}),  # 403 before validation
    ]
    for path, body in attempts:
        resp = helper.post(f"/clients/{cid}/{path}", json=body)
        assert resp.status_code == 403, (path, resp.text)
    log = helper.get(f"/clients/{cid}/log").json()
    assert log["client"]["phone"] is None
    assert log["gift_cards"][0]["balance"]["amount"] == 1000
    assert log["packages"][0]["sessions_left"] == 2


def test_unassigned_provider_and_strangers_get_404_never_a_validation_error(stack: Stack, pro: Pro) -> None:
    boss, carl, stranger = pro("boss"), pro("carl"), pro("stranger")
    studio = make_studio(stack, admin=boss.sub, members={carl.sub: "provider"})
    cid = put_studio_client(stack, studio, assignees=[boss.sub], phone="+14155550126")
    for who in (carl, stranger):
        for path, body in (
            ("purchases", {"bad": 1}),
            ("gift-cards", {"amount": -5}),
            ("appointments", {}),
        ):
            resp = who.post(f"/clients/{cid}/{path}", json=body)
            assert resp.status_code == 404, (who.sub, path)
            assert error_code(resp) == "client_not_found"


# --------------------------------------------------------------- purchases
def test_purchase_and_repeat_as_a_new_ticket(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    items = [
        {"sku": "SH-250", "name": "Shampoo 250ml", "quantity": 2, "unit_price": {"amount": 1250, "currency": "EUR"}},
        {"sku": "MASK-1", "name": "Hair mask", "quantity": 1, "unit_price": {"amount": 2200, "currency": "EUR"}},
    ]
    first = ana.post(f"/clients/{cid}/purchases", json={"items": items})
    assert first.status_code == 201, first.text
    assert first.json()["total"] == {"amount": 4700, "currency": "EUR"}
    again = ana.post(f"/clients/{cid}/purchases", json={"repeat_of": first.json()["purchase_id"]})
    assert again.status_code == 201
    repeat = again.json()
    assert repeat["purchase_id"] != first.json()["purchase_id"]
    assert repeat["repeat_of"] == first.json()["purchase_id"]
    assert repeat["items"] == first.json()["items"]
    assert repeat["total"] == first.json()["total"]
    log = ana.get(f"/clients/{cid}/log").json()
    assert [p["purchase_id"] for p in log["purchases"]] == [repeat["purchase_id"], first.json()["purchase_id"]]


def test_repeat_of_an_unknown_or_another_clients_purchase_is_404(pro: Pro) -> None:
    ana = pro("ana")
    cid, other = solo_client(ana), solo_client(ana)
    line = {"sku": "A", "name": "a", "quantity": 1, "unit_price": {"amount": 100, "currency": "USD"}}
    theirs = ana.post(f"/clients/{other}/purchases", json={"items": [line]}).json()["purchase_id"]
    for purchase_id in (theirs, "01JD0000000000000000000000"):
        resp = ana.post(f"/clients/{cid}/purchases", json={"repeat_of": purchase_id})
        assert resp.status_code == 404
        assert error_code(resp) == "purchase_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": []},
        {"items": [{"sku": "A", "name": "a", "quantity": 0, "unit_price": {"amount": 1, "currency": "USD"}}]},
        {"items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price": {"amount": 1.99, "currency": "USD"}}]},
        {"items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price": {"amount": 1, "currency": "US"}}]},
        {"items": [{"sku": "A#B", "name": "a", "quantity": 1, "unit_price": {"amount": 1, "currency": "USD"}}]},
        {
            "items": [
                {"sku": "A", "name": "a", "quantity": 1, "unit_price": {"amount": 1, "currency": "USD"}},
                {"sku": "B", "name": "b", "quantity": 1, "unit_price": {"amount": 1, "currency": "EUR"}},
            ]
        },
        {
            "items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price": {"amount": 1, "currency": "USD"}}],
            "repeat_of": "01JD0000000000000000000000",
        },
        {"repeat_of": "not-an-id"},
        {"items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price": {"amount": 1, "currency": "USD"}}] * 51},
    ],
)
def test_bad_purchases_are_422(pro: Pro, body: dict[str, Any]) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    resp = ana.post(f"/clients/{cid}/purchases", json=body)
    assert resp.status_code == 422, resp.text


# ----------------------------------------------------------------- packages
def test_package_sessions_never_go_below_zero(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    sold = ana.post(
        f"/clients/{cid}/packages",
        json={"name": "3 blow-dries", "sessions": 3, "price": {"amount": 9000, "currency": "GBP"}},
    )
    assert sold.status_code == 201, sold.text
    pid = sold.json()["package_id"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: ana.post(f"/clients/{cid}/packages/{pid}/redemptions"), range(6)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 200, 409, 409, 409]
    assert {error_code(r) for r in results if r.status_code == 409} == {"package_exhausted"}
    log = ana.get(f"/clients/{cid}/log").json()
    assert log["packages"][0]["sessions_left"] == 0
    missing = ana.post(f"/clients/{cid}/packages/01JD0000000000000000000000/redemptions")
    assert missing.status_code == 404


def test_an_expired_package_is_refused(stack: Stack, pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    today = dt.datetime.now(dt.UTC).date()  # a solo pro's book runs on UTC
    past = ana.post(
        f"/clients/{cid}/packages",
        json={
            "name": "Old",
            "sessions": 2,
            "expires_on": str(today - dt.timedelta(days=1)),
            "price": {"amount": 1, "currency": "USD"},
        },
    )
    assert past.status_code == 422
    sold = ana.post(
        f"/clients/{cid}/packages",
        json={"name": "Today", "sessions": 2, "expires_on": str(today), "price": {"amount": 1, "currency": "USD"}},
    ).json()
    assert sold["expires_on"] == str(today)
    assert ana.post(f"/clients/{cid}/packages/{sold['package_id']}/redemptions").json()["sessions_left"] == 1
    # the last day passes
    stack.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"CLIENT#{cid}"}, "sk": {"S": f"PKG#{sold['package_id']}"}},
        UpdateExpression="SET expires_on = :d",
        ExpressionAttributeValues={":d": {"S": str(today - dt.timedelta(days=1))}},
    )
    expired = ana.post(f"/clients/{cid}/packages/{sold['package_id']}/redemptions")
    assert expired.status_code == 409
    assert error_code(expired) == "package_expired"
    assert ana.get(f"/clients/{cid}/log").json()["packages"][0]["sessions_left"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"name": "P", "sessions": 0, "price": {"amount": 1, "currency": "USD"}},
        {"name": "P", "sessions": 1001, "price": {"amount": 1, "currency": "USD"}},
        {"name": "P", "sessions": 2, "price": {"amount": 1, "currency": "USD"}, "expires_on": "31/12/2030"},
        {"name": "P", "sessions": 2, "price": {"amount": 1, "currency": "USD"}, "expires_on": "2030-02-30"},
        {"name": "P", "sessions": 2, "price": {"amount": -100, "currency": "USD"}},
        {"name": "P", "sessions": 2.5, "price": {"amount": 100, "currency": "USD"}},
        {"name": "P", "sessions": 2},
    ],
)
def test_bad_packages_are_422(pro: Pro, body: dict[str, Any]) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    assert ana.post(f"/clients/{cid}/packages", json=body).status_code == 422


# --------------------------------------------------------------- gift cards
def test_gift_card_partial_redemptions_never_go_negative(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    issued = ana.post(f"/clients/{cid}/gift-cards", json={"amount": 5000, "currency": "EUR"})
    assert issued.status_code == 201, issued.text
    gid = issued.json()["gift_card_id"]
    url = f"/clients/{cid}/gift-cards/{gid}/redemptions"
    assert ana.post(url, json={"amount": 1500}).json()["balance"] == {"amount": 3500, "currency": "EUR"}
    too_much = ana.post(url, json={"amount": 3501})
    assert too_much.status_code == 409
    assert error_code(too_much) == "insufficient_balance"
    assert too_much.json()["error"]["details"]["balance"] == {"amount": 3500, "currency": "EUR"}
    wrong_currency = ana.post(url, json={"amount": 10, "currency": "USD"})
    assert wrong_currency.status_code == 422
    assert error_code(wrong_currency) == "currency_mismatch"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: ana.post(url, json={"amount": 1000}), range(8)))
    assert sorted(r.status_code for r in results) == [200, 200, 200] + [409] * 5
    final = ana.get(f"/clients/{cid}/log").json()["gift_cards"][0]
    assert final["balance"] == {"amount": 500, "currency": "EUR"}
    assert final["amount"] == {"amount": 5000, "currency": "EUR"}


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "currency": "EUR"},
        {"amount": -10, "currency": "EUR"},
        {"amount": 10.5, "currency": "EUR"},
        {"amount": "100", "currency": "EUR"},
        {"amount": 100, "currency": "euro"},
        {"amount": 100},
        {"amount": 10**12, "currency": "EUR"},
    ],
)
def test_bad_gift_cards_are_422(pro: Pro, body: dict[str, Any]) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    assert ana.post(f"/clients/{cid}/gift-cards", json=body).status_code == 422


def test_sales_add_the_seller_to_the_clients_history(stack: Stack, pro: Pro) -> None:
    boss, bea = pro("boss"), pro("bea")
    studio = make_studio(stack, admin=boss.sub, members={bea.sub: "provider"})
    cid = put_studio_client(stack, studio, assignees=[bea.sub], phone="+14155550127")
    assert bea.post(f"/clients/{cid}/gift-cards", json={"amount": 100, "currency": "USD"}).status_code == 201
    profile = get_item(stack, f"CLIENT#{cid}", "PROFILE")
    assert profile is not None
    assert profile["history_pros"]["SS"] == [bea.sub]


def test_a_retried_sale_with_the_same_idempotency_key_sells_once(pro: Pro) -> None:
    ana = pro("ana")
    cid = solo_client(ana)
    line = {"sku": "OIL", "name": "Oil", "quantity": 1, "unit_price": {"amount": 900, "currency": "USD"}}
    headers = {"Idempotency-Key": f"sale-{cid}"}
    first = ana.post(f"/clients/{cid}/purchases", json={"items": [line]}, headers=headers)
    retry = ana.post(f"/clients/{cid}/purchases", json={"items": [line]}, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["purchase_id"] == first.json()["purchase_id"]
    assert len(ana.get(f"/clients/{cid}/log").json()["purchases"]) == 1
