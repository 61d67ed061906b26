"""GET /clients/{client_id}/log over HTTP on the local stack: every section, its order and bounds,
the profile photo, the roles (masking, check-in access) and merged ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import requests

from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.studio_helpers import (
    check_in,
    make_studio,
    put_alias,
    put_confirmed_upload,
    put_studio_client,
    set_blocked,
    studio_today,
)
from tests.integration.test_history import act, book, booking, slot

Pro = Callable[..., Api]


def test_the_log_shows_every_section_in_order(stack: Stack, pro: Pro) -> None:
    ana = pro("ana")
    phone = unique_phone()
    created = ana.post("/clients", json={"name": "Log Client", "phone": phone, "email": "Log@Example.com"})
    cid = created.json()["client_id"]

    # two past services (completed), two upcoming, one cancelled (in no section)
    done = []
    for minutes_ahead in (5, 120):
        aid = book(ana, cid, booking(ana.sub, slot(minutes_ahead), minutes=30, amount=3000)).json()["appointment_id"]
        act(ana, cid, aid, "check-in")
        act(ana, cid, aid, "complete")
        done.append(aid)
    later = book(ana, cid, booking(ana.sub, slot(5 * 24 * 60))).json()["appointment_id"]
    sooner = book(ana, cid, booking(ana.sub, slot(2 * 24 * 60))).json()["appointment_id"]
    dropped = book(ana, cid, booking(ana.sub, slot(3 * 24 * 60))).json()["appointment_id"]
    act(ana, cid, dropped, "cancel")

    line = {"sku": "OIL", "name": "Hair oil", "quantity": 1, "unit_price": {"amount": 1800, "currency": "USD"}}
    p1 = ana.post(f"/clients/{cid}/purchases", json={"items": [line]}).json()["purchase_id"]
    p2 = ana.post(f"/clients/{cid}/purchases", json={"repeat_of": p1}).json()["purchase_id"]
    pkg = ana.post(
        f"/clients/{cid}/packages",
        json={"name": "5 cuts", "sessions": 5, "price": {"amount": 20000, "currency": "USD"}},
    ).json()
    ana.post(f"/clients/{cid}/packages/{pkg['package_id']}/redemptions")
    card = ana.post(f"/clients/{cid}/gift-cards", json={"amount": 2500, "currency": "USD"}).json()
    ana.post(f"/clients/{cid}/gift-cards/{card['gift_card_id']}/redemptions", json={"amount": 500})

    n1 = ana.post(f"/clients/{cid}/notes", json={"body": "Prefers mornings"})
    assert n1.status_code == 201, n1.text
    n2 = ana.post(f"/clients/{cid}/notes", json={"body": "Allergic to ammonia"}).json()
    formula = ana.post(f"/clients/{cid}/formulas", json={"name": "Copper", "body": "7.4 + 20 vol"})
    assert formula.status_code == 201, formula.text
    fid = formula.json()["formula_id"]
    assert ana.put(f"/clients/{cid}/formulas/{fid}", json={"name": "Copper", "body": "7.44 + 20 vol"}).status_code in (
        200,
        201,
    )
    old_photo = put_confirmed_upload(stack, cid, profile=True, confirmed_at="2026-01-01T00:00:00.000Z")
    photo = put_confirmed_upload(stack, cid, profile=True)
    document = put_confirmed_upload(stack, cid, profile=False)

    resp = ana.get(f"/clients/{cid}/log")
    assert resp.status_code == 200, resp.text
    log = resp.json()
    assert log["client"]["client_id"] == cid
    assert log["client"]["email"] == "log@example.com"
    assert log["client"]["phone"] is not None
    assert [a["appointment_id"] for a in log["past_services"]] == list(reversed(done))  # newest first
    assert log["past_services"][0]["services"][0]["price"] == {"amount": 3000, "currency": "EUR"}
    assert log["past_services"][0]["provider_id"] == ana.sub
    assert [a["appointment_id"] for a in log["upcoming_appointments"]] == [sooner, later]  # soonest first
    assert [p["purchase_id"] for p in log["purchases"]] == [p2, p1]
    assert log["packages"][0]["sessions_left"] == 4
    assert log["gift_cards"][0]["balance"] == {"amount": 2000, "currency": "USD"}
    assert [n["note_id"] for n in log["notes"]] == [n2["note_id"], n1.json()["note_id"]]
    assert [(f["formula_id"], f["version"], f["body"]) for f in log["formulas"]] == [(fid, 2, "7.44 + 20 vol")]
    assert log["profile_photo"]["upload_id"] == photo
    assert log["profile_photo"]["download_url"].startswith("http")
    assert {f["upload_id"] for f in log["files"]} == {old_photo, photo, document}
    assert log["section_limit"] == 50
    assert log["more"] == []
    # the link works, and for a short time only
    assert (
        "Expires=" in log["profile_photo"]["download_url"] or "X-Amz-Expires=" in log["profile_photo"]["download_url"]
    )


def test_assistant_sees_a_checked_in_client_masked_until_the_day_ends(stack: Stack, pro: Pro) -> None:
    boss, bea, ida = pro("boss"), pro("bea"), pro("ida")
    studio = make_studio(stack, admin=boss.sub, members={bea.sub: "provider", ida.sub: "assistant"})
    cid = put_studio_client(stack, studio, assignees=[bea.sub], phone="+14155550130")
    aid = book(bea, cid, booking(bea.sub, slot(20))).json()["appointment_id"]

    assert ida.get(f"/clients/{cid}/log").status_code == 404
    assert ida.post(f"/clients/{cid}/notes", json={"body": "hi"}).status_code == 404
    assert act(bea, cid, aid, "check-in").status_code == 200

    log = ida.get(f"/clients/{cid}/log")
    assert log.status_code == 200
    body = log.json()
    assert body["client"]["phone"] is None
    assert body["client"]["email"] is None
    assert body["client"]["masked"] is True
    assert [a["appointment_id"] for a in body["upcoming_appointments"]] == [aid]
    assert ida.post(f"/clients/{cid}/notes", json={"body": "Used the blue towel"}).status_code == 201
    assert ida.post(f"/clients/{cid}/formulas", json={"name": "Toner", "body": "9.1"}).status_code == 201
    assert ida.post(f"/clients/{cid}/purchases", json={"repeat_of": aid}).status_code == 403

    # the admin and the provider see the contact details
    assert bea.get(f"/clients/{cid}/log").json()["client"]["phone"] == "+14155550130"
    assert boss.get(f"/clients/{cid}/log").json()["client"]["phone"] == "+14155550130"


def test_a_check_in_of_an_earlier_day_gives_no_access(stack: Stack, pro: Pro) -> None:
    boss, ida = pro("boss"), pro("ida")
    studio = make_studio(stack, admin=boss.sub, members={ida.sub: "apprentice"}, time_zone="America/Los_Angeles")
    cid = put_studio_client(stack, studio, assignees=[boss.sub], phone="+14155550131")
    yesterday = str(dt.date.fromisoformat(studio_today(studio.time_zone)) - dt.timedelta(days=1))
    check_in(stack, studio, cid, yesterday)
    assert ida.get(f"/clients/{cid}/log").status_code == 404
    check_in(stack, studio, cid)
    assert ida.get(f"/clients/{cid}/log").status_code == 200


def test_assigned_apprentice_reads_masked_and_unassigned_provider_gets_404(stack: Stack, pro: Pro) -> None:
    boss, carl, ida = pro("boss"), pro("carl"), pro("ida")
    studio = make_studio(stack, admin=boss.sub, members={carl.sub: "provider", ida.sub: "apprentice"})
    cid = put_studio_client(stack, studio, assignees=[ida.sub], phone="+14155550132")
    assert ida.get(f"/clients/{cid}/log").json()["client"]["phone"] is None
    resp = carl.get(f"/clients/{cid}/log")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "client_not_found"
    assert pro("stranger").get(f"/clients/{cid}/log").status_code == 404


def test_unknown_and_malformed_ids(pro: Pro) -> None:
    ana = pro("ana")
    unknown = ana.get("/clients/01JD0000000000000000000000/log")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "client_not_found"
    assert ana.get("/clients/CLIENT%23x/log").status_code == 422


def test_a_merged_id_shows_the_survivors_log(stack: Stack, pro: Pro) -> None:
    ana = pro("ana")
    survivor = ana.post("/clients", json={"name": "Survivor", "phone": unique_phone()}).json()["client_id"]
    ana.post(f"/clients/{survivor}/gift-cards", json={"amount": 700, "currency": "USD"})
    old = "01JD00000000000000000" + survivor[-5:]
    put_alias(stack, old, survivor)
    log = ana.get(f"/clients/{old}/log")
    assert log.status_code == 200, log.text
    assert log.json()["client"]["client_id"] == survivor
    assert log.json()["gift_cards"][0]["balance"]["amount"] == 700


def test_sections_are_bounded(stack: Stack, pro: Pro) -> None:
    ana = pro("ana")
    cid = ana.post("/clients", json={"name": "Busy", "phone": unique_phone()}).json()["client_id"]
    line = {"sku": "X", "name": "x", "quantity": 1, "unit_price": {"amount": 1, "currency": "USD"}}
    for _ in range(52):
        assert ana.post(f"/clients/{cid}/purchases", json={"items": [line]}).status_code == 201
    log = ana.get(f"/clients/{cid}/log").json()
    assert len(log["purchases"]) == 50
    assert log["more"] == ["purchases"]


def test_log_needs_a_token(stack: Stack) -> None:
    assert requests.get(f"{stack.url}/clients/01JD0000000000000000000000/log", timeout=10).status_code == 401


def test_the_blocking_pro_sees_the_client_blocked_and_their_bookings_flagged(stack: Stack, pro: Pro) -> None:
    boss, bea = pro("boss"), pro("bea")
    studio = make_studio(stack, admin=boss.sub, members={bea.sub: "provider"})
    cid = put_studio_client(stack, studio, assignees=[bea.sub], phone="+14155550133")
    mine = book(bea, cid, booking(bea.sub, slot(24 * 60))).json()["appointment_id"]
    theirs = book(boss, cid, booking(boss.sub, slot(24 * 60))).json()["appointment_id"]
    set_blocked(stack, bea.sub, cid, True)

    log = bea.get(f"/clients/{cid}/log").json()
    assert log["client"]["blocked"] is True
    flags = {a["appointment_id"]: a["blocked"] for a in log["upcoming_appointments"]}
    assert flags == {mine: True, theirs: False}  # flagged, not cancelled
    assert book(bea, cid, booking(bea.sub, slot(48 * 60))).status_code == 409
    # the rest of the studio still sees and books the client
    admin_view = boss.get(f"/clients/{cid}/log").json()
    assert admin_view["client"]["blocked"] is False
    assert book(boss, cid, booking(boss.sub, slot(48 * 60))).status_code == 201
