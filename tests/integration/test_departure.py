"""Leaving a studio over HTTP on the local stack (SPEC.md "Studio life cycle" step 5): each side keeps
what it should, nothing is lost, the preview tells it beforehand, a replayed job changes nothing.

One studio is set up through the real routes (create, invite, join with a merge, clients, notes,
formulas, photos, appointments, a package), then Bob leaves; the tests check each rule on the result.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.test_history import booking, slot
from tests.integration.test_studios import _client, _invite, _join, _studio, _wait_import
from tests.integration.test_uploads import files, image_bytes, upload

JOBS_QUEUE = "studio-local-JobsQueue"


def _api(stack: Stack, name: str, groups: list[str] | None = None) -> Api:
    return Api(stack, f"{name}-{uuid.uuid4().hex[:10]}", groups)


def _ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def _note(api: Api, client_id: str, body: str) -> str:
    return str(_ok(api.post(f"/clients/{client_id}/notes", json={"body": body}), 201)["note_id"])


def _formula(api: Api, client_id: str, name: str, body: str) -> str:
    return str(_ok(api.post(f"/clients/{client_id}/formulas", json={"name": name, "body": body}), 201)["formula_id"])


def _book(api: Api, client_id: str, provider: str, minutes_ahead: int) -> str:
    resp = api.post(f"/clients/{client_id}/appointments", json=booking(provider, slot(minutes_ahead)))
    return str(_ok(resp, 201)["appointment_id"])


@dataclass
class Inventory:
    """What a set of books holds, by id: notes (with author), formula versions, files, appointments."""

    notes: dict[str, str] = field(default_factory=dict)
    formulas: set[tuple[str, int]] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    appointments: set[str] = field(default_factory=set)

    def add(self, api: Api, client_id: str) -> Inventory:
        for note in _ok(api.get(f"/clients/{client_id}/notes", params={"limit": 100}))["items"]:
            self.notes[note["note_id"]] = note["author_id"]
        page = _ok(api.get(f"/clients/{client_id}/formulas", params={"history": "true", "limit": 100}))
        self.formulas |= {(f["formula_id"], f["version"]) for f in page["items"]}
        self.files |= {f["upload_id"] for f in files(api, client_id)}
        log = _ok(api.get(f"/clients/{client_id}/log"))
        self.appointments |= {a["appointment_id"] for a in log["upcoming_appointments"] + log["past_services"]}
        return self


@dataclass
class Departure:
    studio_id: str
    alice: Api  # owner, admin
    bob: Api  # provider who leaves
    cara: Api  # provider who stays
    ids: dict[str, str]  # kind -> studio client id
    before: Inventory
    preview_by_bob: list[dict[str, Any]]
    preview_by_alice: list[dict[str, Any]]
    refusals: dict[str, Any]
    leave_response: dict[str, Any]
    right_after: dict[str, int]
    member_after: dict[str, Any]
    bob_notes_by_kind: dict[str, set[str]]


def _wait_left(stack: Stack, bob: Api, studio_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        stack.drain()
        member = _ok(bob.get(f"/studios/{studio_id}/members/{bob.sub}"))
        if member["status"] == "left":
            stack.drain()
            return member  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, member
        time.sleep(0.2)


def _preview(api: Api, studio_id: str, pro_id: str, limit: int = 2) -> list[dict[str, Any]]:
    """Every page of the preview (small pages, so paging is exercised)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = _ok(api.get(f"/studios/{studio_id}/members/{pro_id}/departure", params=params))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture(scope="module")
def departure(stack: Stack) -> Departure:
    alice, bob, cara = _api(stack, "alice"), _api(stack, "bob"), _api(stack, "cara")
    ops = _api(stack, "ops", ["operators"])
    phone = unique_phone()
    # Bob's personal client before joining: merged on join into Alice's record of the same person.
    maria_personal = _client(bob, "Maria Bobsdottir", phone=phone, email="maria.bob@example.com", tags=["bob-tag"])
    _note(bob, maria_personal["client_id"], "bob: maria before joining")
    studio_id = _studio(alice)["studio_id"]
    _wait_import(stack, alice, studio_id)
    _ok(ops.put(f"/studios/{studio_id}/plan", json={"plan": "premium"}))
    merged = _client(alice, "Maria Studio", phone=phone)["client_id"]
    _join(stack, alice, bob, studio_id)
    _join(stack, alice, cara, studio_id)
    assert _ok(bob.get(f"/clients/{maria_personal['client_id']}"))["client_id"] == merged

    ids = {"merged": merged}
    bob_notes: dict[str, set[str]] = {}
    # 1. Bob's own client, no one else's work: leaves the studio with Bob.
    own = ids["own"] = _client(bob, "Olga Own", phone=unique_phone())["client_id"]
    bob_notes["own"] = {_note(bob, own, "bob: olga")}
    _formula(bob, own, "Olga blonde", "7/1 + 20 vol")
    upload(stack, bob, own, "image/jpeg", image_bytes("JPEG"), filename="olga.jpg")
    _book(bob, own, bob.sub, 120)
    # 2. Bob's client shared through Cara's appointment, note and photo: both keep it.
    shared = ids["shared"] = _client(bob, "Sam Shared", phone=unique_phone())["client_id"]
    bob_notes["shared"] = {_note(bob, shared, "bob: sam")}
    _formula(bob, shared, "Sam copper", "6/4 + 30 vol")
    upload(stack, bob, shared, "image/jpeg", image_bytes("JPEG", color="red"), filename="sam-bob.jpg")
    _ok(alice.put(f"/studios/{studio_id}/clients/{shared}/assignees/{cara.sub}"), 204)
    stack.drain()
    _book(cara, shared, cara.sub, 240)
    _note(cara, shared, "cara: sam")
    upload(stack, cara, shared, "image/jpeg", image_bytes("JPEG", color="blue"), filename="sam-cara.jpg")
    # 3. The admin's client, assigned to Bob, with Bob's work on it: the studio keeps it.
    admins = ids["admins"] = _client(alice, "Ada Admin", phone=unique_phone())["client_id"]
    _ok(alice.put(f"/studios/{studio_id}/clients/{admins}/assignees/{bob.sub}"), 204)
    stack.drain()
    bob_notes["admins"] = {_note(bob, admins, "bob: ada")}
    _book(bob, admins, bob.sub, 360)
    # 4. Bob's client with an open package: both keep it (the balance stays with the studio).
    balance = ids["balance"] = _client(bob, "Bea Balance", phone=unique_phone())["client_id"]
    pkg = {"name": "5 blow-dries", "sessions": 5, "price": {"amount": 10000, "currency": "EUR"}}
    _ok(bob.post(f"/clients/{balance}/packages", json=pkg), 201)
    bob_notes["balance"] = {_note(bob, balance, "bob: bea")}
    # 5. The merged client: Bob's note from before joining moved in; one more after.
    bob_notes["merged"] = {_note(bob, merged, "bob: maria after joining")}
    bob_notes["merged"] |= {
        n["note_id"] for n in _ok(alice.get(f"/clients/{merged}/notes"))["items"] if n["author_id"] == bob.sub
    }
    stack.drain()

    before = Inventory()
    for client_id in ids.values():
        before.add(alice, client_id)
    refusals = {
        "provider_removes_other": cara.delete(f"/studios/{studio_id}/members/{bob.sub}"),
        "provider_previews_other": cara.get(f"/studios/{studio_id}/members/{bob.sub}/departure"),
        "owner_last_admin_leaves": alice.delete(f"/studios/{studio_id}/members/{alice.sub}"),
        "stranger_previews": _api(stack, "eve").get(f"/studios/{studio_id}/members/{bob.sub}/departure"),
    }
    preview_by_bob = _preview(bob, studio_id, bob.sub)
    preview_by_alice = _preview(alice, studio_id, bob.sub, limit=50)

    leave = bob.delete(f"/studios/{studio_id}/members/{bob.sub}")
    right_after = {kind: bob.get(f"/clients/{cid}").status_code for kind, cid in ids.items()}
    right_after["me_in_studio"] = int(bob.get("/me").json()["studio_id"] is not None)
    # A duplicate delivery of the job's first message (SQS is at-least-once): it must change nothing.
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=JOBS_QUEUE)["QueueUrl"]
    body = json.dumps({"kind": "departure", "studio_id": studio_id, "pro_id": bob.sub})
    sqs.send_message(QueueUrl=url, MessageBody=body)
    member_after = _wait_left(stack, bob, studio_id)
    # ... and a replay after it finished.
    sqs.send_message(QueueUrl=url, MessageBody=body)
    stack.drain()
    return Departure(
        studio_id,
        alice,
        bob,
        cara,
        ids,
        before,
        preview_by_bob,
        preview_by_alice,
        refusals,
        _ok(leave, 202),
        right_after,
        member_after,
        bob_notes,
    )


EXPECTED = {  # kind -> (pro keeps, studio keeps, reasons)
    "own": (True, False, ["created_by_pro"]),
    "shared": (True, True, ["created_by_pro", "other_history"]),
    "admins": (False, True, ["added_by_other"]),
    "merged": (True, True, ["merged_by_pro", "added_by_other"]),
    "balance": (True, True, ["created_by_pro", "open_balance"]),
}


def _bob_books(d: Departure) -> dict[str, dict[str, Any]]:
    """Bob's personal clients after leaving, by name."""
    items = _ok(d.bob.get("/me/clients", params={"limit": 100}))["items"]
    return {c["name"]: c for c in items}


NEW_NAMES = {"own": "Olga Own", "shared": "Sam Shared", "merged": "Maria Bobsdottir", "balance": "Bea Balance"}


def test_the_preview_names_each_side_and_why(departure: Departure) -> None:
    d = departure
    by_id = {item["client_id"]: item for item in d.preview_by_bob}
    assert set(by_id) == set(d.ids.values())
    for kind, client_id in d.ids.items():
        item = by_id[client_id]
        assert (item["pro_keeps"], item["studio_keeps"], item["reasons"]) == EXPECTED[kind], (kind, item)
    assert sorted(d.preview_by_alice, key=lambda i: i["client_id"]) == sorted(
        d.preview_by_bob, key=lambda i: i["client_id"]
    )


def test_who_may_leave_remove_and_preview(departure: Departure) -> None:
    r = departure.refusals
    assert r["provider_removes_other"].status_code == 403
    assert r["provider_previews_other"].status_code == 403
    assert r["stranger_previews"].status_code == 404
    assert r["owner_last_admin_leaves"].status_code == 409
    assert r["owner_last_admin_leaves"].json()["error"]["code"] == "last_admin"


def test_leaving_answers_202_and_cuts_access_at_once(departure: Departure) -> None:
    d = departure
    assert d.leave_response["status"] == "leaving"
    assert d.leave_response["departure"] == {
        "status": "running",
        "kept_by_pro": 0,
        "kept_by_studio": 0,
        "left_with_pro": 0,
    }
    assert all(code == 404 for kind, code in d.right_after.items() if kind != "me_in_studio"), d.right_after
    assert d.right_after["me_in_studio"] == 0
    members = _ok(d.alice.get(f"/studios/{d.studio_id}/members"))["items"]
    assert {m["pro_id"]: m["status"] for m in members}[d.bob.sub] == "left"


def test_counters_are_exact_despite_a_duplicate_and_a_replayed_message(departure: Departure) -> None:
    d = departure
    assert d.member_after["departure"] == {"status": "done", "kept_by_pro": 4, "kept_by_studio": 4, "left_with_pro": 1}
    again = _ok(d.bob.get(f"/studios/{d.studio_id}/members/{d.bob.sub}"))
    assert again["departure"] == d.member_after["departure"]
    assert sorted(_bob_books(d)) == sorted(NEW_NAMES.values())  # one personal copy each, no duplicates


def test_each_side_keeps_the_right_clients(departure: Departure) -> None:
    d = departure
    for kind, client_id in d.ids.items():
        assert d.bob.get(f"/clients/{client_id}").status_code == 404, kind
        studio_keeps = EXPECTED[kind][1]
        assert d.alice.get(f"/clients/{client_id}").status_code == (200 if studio_keeps else 404), kind
    mine = _bob_books(d)
    assert not set(d.ids.values()) & {c["client_id"] for c in mine.values()}
    for client in mine.values():
        assert client["book"] == "personal"
        assert client["studio_id"] is None
    # The merged client comes back with what Bob brought, not the studio's values.
    maria = mine["Maria Bobsdottir"]
    assert maria["email"] == "maria.bob@example.com"
    assert maria["tags"] == ["bob-tag"]
    # Cara still works on the shared client; the studio's record is unchanged for her.
    assert d.cara.get(f"/clients/{d.ids['shared']}").status_code == 200


def test_the_pro_takes_only_their_own_work(departure: Departure) -> None:
    d = departure
    mine = _bob_books(d)
    for kind, name in NEW_NAMES.items():
        client_id = mine[name]["client_id"]
        held = Inventory().add(d.bob, client_id)
        assert set(held.notes.values()) <= {d.bob.sub}, (kind, held.notes)
        assert set(held.notes) == d.bob_notes_by_kind[kind], kind
        for file in files(d.bob, client_id):
            assert file["uploaded_by"] == d.bob.sub
            assert "X-Amz-Expires=300" in file["download_url"]  # links lapse within 5 minutes
        log = _ok(d.bob.get(f"/clients/{client_id}/log"))
        assert all(a["provider_id"] == d.bob.sub for a in log["upcoming_appointments"] + log["past_services"])
        assert all(f["author_id"] == d.bob.sub for f in log["formulas"])
        assert log["packages"] == []  # the open package stays with the studio that sold it
    shared = Inventory().add(d.bob, mine["Sam Shared"]["client_id"])
    assert (len(shared.files), len(shared.formulas), len(shared.appointments)) == (1, 1, 0)
    own = Inventory().add(d.bob, mine["Olga Own"]["client_id"])
    assert (len(own.notes), len(own.formulas), len(own.files), len(own.appointments)) == (1, 1, 1, 1)


def test_nothing_is_lost(departure: Departure) -> None:
    d = departure
    after = Inventory()
    for kind, client_id in d.ids.items():
        if EXPECTED[kind][1]:
            after.add(d.alice, client_id)
    for client in _bob_books(d).values():
        after.add(d.bob, client["client_id"])
    assert d.before.notes.items() <= after.notes.items()
    assert d.before.formulas <= after.formulas
    assert d.before.files <= after.files
    assert d.before.appointments <= after.appointments
    assert (len(d.before.notes), len(d.before.files), len(d.before.appointments)) == (7, 3, 3)


def test_the_change_feed_deletes_every_studio_id_and_adds_every_new_one(departure: Departure) -> None:
    d = departure
    ops: dict[str, set[str]] = {}
    cursor = None
    while True:
        page = _ok(d.bob.get("/me/changes", params={"since": cursor} if cursor else {}))
        for change in page["items"]:
            ops.setdefault(change["client_id"], set()).add(change["op"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    for client_id in d.ids.values():
        assert ops.get(client_id) == {"delete"}, (client_id, ops.get(client_id))
    for client in _bob_books(d).values():
        assert ops.get(client["client_id"]) == {"upsert"}


def test_the_owner_hands_over_before_leaving_and_an_admin_removes_a_member(stack: Stack) -> None:
    owner, dana, erin = _api(stack, "owner"), _api(stack, "dana"), _api(stack, "erin")
    studio_id = _studio(owner)["studio_id"]
    _wait_import(stack, owner, studio_id)
    _join(stack, owner, dana, studio_id, role="admin")
    _join(stack, owner, erin, studio_id)
    resp = owner.delete(f"/studios/{studio_id}/members/{owner.sub}")
    assert (resp.status_code, resp.json()["error"]["code"]) == (409, "owner_must_transfer")
    resp = dana.delete(f"/studios/{studio_id}/members/{owner.sub}")
    assert (resp.status_code, resp.json()["error"]["code"]) == (409, "owner_must_transfer")
    kept = _client(erin, "Erin's Own", phone=unique_phone())["client_id"]
    _ok(owner.post(f"/studios/{studio_id}/owner", json={"pro_id": dana.sub}))
    assert _ok(owner.delete(f"/studios/{studio_id}/members/{owner.sub}"), 202)["status"] == "leaving"
    # Dana is now the owner and the last admin, with Erin still a member.
    resp = dana.delete(f"/studios/{studio_id}/members/{dana.sub}")
    assert (resp.status_code, resp.json()["error"]["code"]) == (409, "last_admin")
    removed = _ok(dana.delete(f"/studios/{studio_id}/members/{erin.sub}"), 202)
    assert removed["status"] == "leaving"
    member = _wait_left(stack, erin, studio_id)
    assert member["departure"] == {"status": "done", "kept_by_pro": 1, "kept_by_studio": 0, "left_with_pro": 1}
    assert dana.get(f"/clients/{kept}").status_code == 404
    assert [c["name"] for c in _ok(erin.get("/me/clients"))["items"]] == ["Erin's Own"]
    assert _ok(erin.get("/me"))["studio_id"] is None
    # A second DELETE is answered like the first; a left member can join a studio again.
    assert _ok(dana.delete(f"/studios/{studio_id}/members/{erin.sub}"), 202)["status"] == "left"
    code = _invite(dana, studio_id)
    assert erin.post("/studios/join", json={"code": code}).status_code == 202
