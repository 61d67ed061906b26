"""Notes and colour formulas over HTTP on the local stack: who sees them, who may change them, bad input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.studio_helpers import (
    TABLE,
    StudioSetup,
    check_in,
    get_item,
    make_studio,
    put_studio_client,
    set_assignees,
    studio_today,
)

UNKNOWN_ID = "01JD0000000000000000000000"


@dataclass
class Team:
    studio: StudioSetup
    client_id: str
    admin: Api
    bob: Api  # provider, assigned
    carl: Api  # provider, not assigned
    dana: Api  # assistant, not assigned
    evan: Api  # apprentice, not assigned

    def notes(self, who: Api) -> Any:
        return who.get(f"/clients/{self.client_id}/notes")

    def add(self, who: Api, body: str = "Prefers a gentle wash.") -> Any:
        return who.post(f"/clients/{self.client_id}/notes", json={"body": body})


@pytest.fixture
def team(stack: Stack, pro: Callable[..., Api]) -> Team:
    admin, bob, carl, dana, evan = pro("admin"), pro("bob"), pro("carl"), pro("dana"), pro("evan")
    studio = make_studio(
        stack,
        admin=admin.sub,
        members={bob.sub: "provider", carl.sub: "provider", dana.sub: "assistant", evan.sub: "apprentice"},
        time_zone="Pacific/Kiritimati",  # UTC+14: "today" there is not today in UTC for half the day
    )
    client_id = put_studio_client(stack, studio, assignees=[bob.sub], created_by=admin.sub)
    return Team(studio, client_id, admin, bob, carl, dana, evan)


def _personal_client(who: Api) -> str:
    resp = who.post("/clients", json={"name": "Nora Note", "phone": unique_phone()})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["client_id"])


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


# ------------------------------------------------------------------ notes


def test_a_note_has_its_author_and_times_and_lists_newest_first(pro: Callable[..., Api]) -> None:
    me = pro("solo")
    client_id = _personal_client(me)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    first = me.post(f"/clients/{client_id}/notes", json={"body": "Allergic to lavender."})
    second = me.post(f"/clients/{client_id}/notes", json={"body": "Likes coffee, no sugar."})
    assert first.status_code == 201, first.text
    note = first.json()
    assert note["author_id"] == me.sub
    assert note["client_id"] == client_id
    assert note["body"] == "Allergic to lavender."
    assert _ts(note["created_at"]) >= before
    assert note["created_at"] == note["updated_at"]

    listed = me.get(f"/clients/{client_id}/notes")
    assert listed.status_code == 200
    page = listed.json()
    assert [n["body"] for n in page["items"]] == ["Likes coffee, no sugar.", "Allergic to lavender."]
    assert page["next_cursor"] is None
    assert page["items"][1] == note
    assert second.json()["note_id"] in {n["note_id"] for n in page["items"]}


def test_notes_page_with_an_opaque_cursor(pro: Callable[..., Api]) -> None:
    me = pro("pager")
    client_id = _personal_client(me)
    ids = [me.post(f"/clients/{client_id}/notes", json={"body": f"note {i}"}).json()["note_id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = me.get(f"/clients/{client_id}/notes", params=params).json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [n["note_id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3
    for bad in ({"cursor": "not-a-cursor"}, {"limit": 0}, {"limit": 101}):
        resp = me.get(f"/clients/{client_id}/notes", params=bad)
        assert resp.status_code == 422, bad


def test_the_author_edits_and_deletes_their_note(pro: Callable[..., Api]) -> None:
    me = pro("editor")
    client_id = _personal_client(me)
    note = me.post(f"/clients/{client_id}/notes", json={"body": "Old text"}).json()
    edited = me.patch(f"/clients/{client_id}/notes/{note['note_id']}", json={"body": "New text"})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["body"] == "New text"
    assert body["created_at"] == note["created_at"]
    assert _ts(body["updated_at"]) > _ts(note["updated_at"])
    assert me.get(f"/clients/{client_id}/notes").json()["items"] == [body]

    gone = me.delete(f"/clients/{client_id}/notes/{note['note_id']}")
    assert gone.status_code == 204
    assert me.get(f"/clients/{client_id}/notes").json()["items"] == []
    again = me.delete(f"/clients/{client_id}/notes/{note['note_id']}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "note_not_found"


def test_a_studio_note_is_seen_by_the_admin_and_assigned_members_only(stack: Stack, team: Team) -> None:
    added = team.add(team.bob, "Use the blue towel.")
    assert added.status_code == 201, added.text
    note = added.json()
    assert team.notes(team.admin).json()["items"] == [note]
    assert team.notes(team.bob).json()["items"] == [note]
    for outsider in (team.carl, team.dana, team.evan):
        resp = team.notes(outsider)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "client_not_found"
        # Adding is refused the same way: the client's existence is not revealed.
        assert team.add(outsider).status_code == 404

    set_assignees(stack, team.client_id, [team.bob.sub, team.carl.sub])
    assert team.notes(team.carl).json()["items"] == [note]
    by_carl = team.add(team.carl, "Second opinion.")
    assert by_carl.status_code == 201

    # Unassigning takes the access away at once (decided at read time, not from a copy).
    set_assignees(stack, team.client_id, [team.bob.sub])
    assert team.notes(team.carl).status_code == 404
    assert team.carl.delete(f"/clients/{team.client_id}/notes/{by_carl.json()['note_id']}").status_code == 404


def test_a_pro_of_another_book_never_sees_the_notes(pro: Callable[..., Api], team: Team) -> None:
    team.add(team.bob)
    stranger = pro("stranger")
    assert stranger.get(f"/clients/{team.client_id}/notes").status_code == 404
    # Access is decided before validation: an invalid body still answers 404.
    assert stranger.post(f"/clients/{team.client_id}/notes", json={"body": ""}).status_code == 404
    assert stranger.patch(f"/clients/{team.client_id}/notes/{UNKNOWN_ID}", json={}).status_code == 404


def test_only_the_author_edits_a_note(team: Team) -> None:
    note = team.add(team.bob, "Original").json()
    path = f"/clients/{team.client_id}/notes/{note['note_id']}"
    refused = team.admin.patch(path, json={"body": "Admin rewrite"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert team.notes(team.bob).json()["items"][0]["body"] == "Original"
    ok = team.bob.patch(path, json={"body": "Bob's rewrite"})
    assert ok.status_code == 200
    assert team.notes(team.admin).json()["items"][0]["body"] == "Bob's rewrite"


def test_a_member_deletes_only_their_own_note_and_an_admin_any(stack: Stack, team: Team) -> None:
    set_assignees(stack, team.client_id, [team.bob.sub, team.carl.sub])
    bobs = team.add(team.bob, "Bob's").json()
    carls = team.add(team.carl, "Carl's").json()
    refused = team.carl.delete(f"/clients/{team.client_id}/notes/{bobs['note_id']}")
    assert refused.status_code == 403
    assert len(team.notes(team.bob).json()["items"]) == 2

    assert team.carl.delete(f"/clients/{team.client_id}/notes/{carls['note_id']}").status_code == 204
    assert team.admin.delete(f"/clients/{team.client_id}/notes/{bobs['note_id']}").status_code == 204
    # Deleted everywhere: no one who sees the client sees either note.
    for who in (team.admin, team.bob, team.carl):
        assert team.notes(who).json()["items"] == []
    assert get_item(stack, f"CLIENT#{team.client_id}", f"NOTE#{bobs['note_id']}") is None


def test_apprentices_and_assistants_work_on_clients_checked_in_today(stack: Stack, team: Team) -> None:
    bobs = team.add(team.bob, "Bob's note").json()
    yesterday = (dt.date.fromisoformat(studio_today(team.studio.time_zone)) - dt.timedelta(days=1)).isoformat()
    check_in(stack, team.studio, team.client_id, yesterday)
    assert team.notes(team.dana).status_code == 404  # yesterday's visit gives nothing today

    check_in(stack, team.studio, team.client_id)
    for helper in (team.dana, team.evan):
        assert team.notes(helper).json()["items"][-1] == bobs
    danas = team.add(team.dana, "Dana's note")
    assert danas.status_code == 201
    assert danas.json()["author_id"] == team.dana.sub
    formula = team.evan.post(f"/clients/{team.client_id}/formulas", json={"name": "Toner", "body": "9.1 + 20 vol"})
    assert formula.status_code == 201

    note_id = danas.json()["note_id"]
    assert team.dana.patch(f"/clients/{team.client_id}/notes/{note_id}", json={"body": "Edited"}).status_code == 200
    assert team.evan.patch(f"/clients/{team.client_id}/notes/{note_id}", json={"body": "x"}).status_code == 403
    assert team.dana.delete(f"/clients/{team.client_id}/notes/{bobs['note_id']}").status_code == 403
    assert team.dana.delete(f"/clients/{team.client_id}/notes/{note_id}").status_code == 204
    # Everyone who sees the client sees what the assistant wrote.
    assert [n["body"] for n in team.notes(team.bob).json()["items"]] == ["Bob's note"]


def test_writing_a_note_or_formula_records_its_author_on_the_profile(stack: Stack, team: Team) -> None:
    version_before = team.admin.get(f"/clients/{team.client_id}").json()["version"]
    check_in(stack, team.studio, team.client_id)
    assert team.add(team.bob).status_code == 201
    assert team.dana.post(f"/clients/{team.client_id}/formulas", json={"name": "Gloss", "body": "clear"}).ok
    profile = get_item(stack, f"CLIENT#{team.client_id}", "PROFILE")
    assert profile is not None
    assert set(profile["history_pros"]["SS"]) == {team.bob.sub, team.dana.sub}
    # Nothing the app shows changed, so the profile's version (and every view) stays as it was.
    assert team.admin.get(f"/clients/{team.client_id}").json()["version"] == version_before


def test_bad_note_input_is_422_and_writes_nothing(pro: Callable[..., Api]) -> None:
    me = pro("strict")
    client_id = _personal_client(me)
    path = f"/clients/{client_id}/notes"
    for body in ({"body": ""}, {"body": "   "}, {"body": "x" * 10_001}, {}, {"body": "ok", "pinned": True}, []):
        resp = me.post(path, json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"]["code"] == "validation_error"
    assert me.post(path, data="not json", headers={"Content-Type": "application/json"}).status_code == 422
    assert me.get(path).json()["items"] == []

    longest = me.post(path, json={"body": "y" * 10_000})
    assert longest.status_code == 201
    note_id = longest.json()["note_id"]
    assert me.patch(f"{path}/{note_id}", json={"body": ""}).status_code == 422
    assert me.patch(f"{path}/{note_id}", json={"body": "z" * 10_001}).status_code == 422
    assert me.get(path).json()["items"][0]["body"] == "y" * 10_000

    for method in ("patch", "delete"):
        kwargs = {"json": {"body": "edit"}} if method == "patch" else {}
        unknown = getattr(me, method)(f"{path}/{UNKNOWN_ID}", **kwargs)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "note_not_found"
        malformed = getattr(me, method)(f"{path}/NOTE%23{UNKNOWN_ID}", **kwargs)
        assert malformed.status_code == 422
    assert me.get(f"/clients/{UNKNOWN_ID}/notes").json()["error"]["code"] == "client_not_found"


def test_a_retried_post_with_the_same_idempotency_key_adds_one_note(pro: Callable[..., Api]) -> None:
    me = pro("retry")
    client_id = _personal_client(me)
    headers = {"Idempotency-Key": "note-retry-0001"}
    first = me.post(f"/clients/{client_id}/notes", json={"body": "Once"}, headers=headers)
    second = me.post(f"/clients/{client_id}/notes", json={"body": "Once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(me.get(f"/clients/{client_id}/notes").json()["items"]) == 1


# --------------------------------------------------------------- formulas


def test_a_formula_change_keeps_every_earlier_version(stack: Stack, team: Team) -> None:
    set_assignees(stack, team.client_id, [team.bob.sub, team.carl.sub])
    base = f"/clients/{team.client_id}/formulas"
    created = team.bob.post(base, json={"name": "Base colour", "body": "6N + 20 vol, 35 min"})
    assert created.status_code == 201, created.text
    v1 = created.json()
    assert (v1["version"], v1["author_id"], v1["created_by"]) == (1, team.bob.sub, team.bob.sub)

    changed = team.carl.put(f"{base}/{v1['formula_id']}", json={"name": "Base colour", "body": "6N + 30 vol"})
    assert changed.status_code == 200, changed.text
    v2 = changed.json()
    assert (v2["version"], v2["author_id"], v2["created_by"]) == (2, team.carl.sub, team.bob.sub)
    assert v2["created_at"] == v1["created_at"]
    assert _ts(v2["updated_at"]) >= _ts(v1["updated_at"])
    v3 = team.admin.put(f"{base}/{v1['formula_id']}", json={"name": "Base", "body": "6N + 30 vol, 40 min"}).json()
    assert v3["version"] == 3

    current = team.bob.get(base).json()
    assert current["items"] == [v3]
    history = team.admin.get(base, params={"history": "true"}).json()
    assert history["items"] == [v3, v2, v1]  # every version with its author and time


def test_current_formulas_and_their_history_page(pro: Callable[..., Api]) -> None:
    me = pro("colourist")
    client_id = _personal_client(me)
    base = f"/clients/{client_id}/formulas"
    ids = []
    for i in range(3):
        fid = me.post(base, json={"name": f"F{i}", "body": "v1"}).json()["formula_id"]
        ids.append(fid)
        for v in range(2, 2 + i):
            assert me.put(f"{base}/{fid}", json={"name": f"F{i}", "body": f"v{v}"}).status_code == 200

    def walk(params: dict[str, Any]) -> list[tuple[str, int]]:
        out, cursor = [], None
        while True:
            query = dict(params, **({"cursor": cursor} if cursor else {}))
            page = me.get(base, params=query).json()
            out += [(f["formula_id"], f["version"]) for f in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return out

    assert walk({"limit": 2}) == [(ids[2], 3), (ids[1], 2), (ids[0], 1)]
    assert walk({"limit": 2, "history": "true"}) == [
        (ids[2], 3),
        (ids[2], 2),
        (ids[2], 1),
        (ids[1], 2),
        (ids[1], 1),
        (ids[0], 1),
    ]
    # A cursor belongs to the listing it came from.
    cursor = me.get(base, params={"limit": 1}).json()["next_cursor"]
    assert me.get(base, params={"limit": 1, "history": "true", "cursor": cursor}).status_code == 422


def test_bad_formula_input_and_unknown_formulas(pro: Callable[..., Api]) -> None:
    me = pro("formulas")
    client_id = _personal_client(me)
    base = f"/clients/{client_id}/formulas"
    for body in (
        {"name": "", "body": "x"},
        {"name": "x", "body": ""},
        {"body": "x"},
        {"name": "x", "body": "b" * 10_001},
    ):
        assert me.post(base, json=body).status_code == 422, body
    assert me.get(base).json()["items"] == []

    fid = me.post(base, json={"name": "Gloss", "body": "clear"}).json()["formula_id"]
    assert me.put(f"{base}/{fid}", json={"name": "Gloss"}).status_code == 422
    unknown = me.put(f"{base}/{UNKNOWN_ID}", json={"name": "Gloss", "body": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "formula_not_found"
    assert me.put(f"{base}/not-an-id", json={"name": "Gloss", "body": "x"}).status_code == 422
    assert [f["version"] for f in me.get(base, params={"history": "true"}).json()["items"]] == [1]


def test_concurrent_formula_changes_never_overwrite_each_other(stack: Stack, pro: Callable[..., Api]) -> None:
    me = pro("race")
    client_id = _personal_client(me)
    base = f"/clients/{client_id}/formulas"
    fid = me.post(base, json={"name": "Race", "body": "start"}).json()["formula_id"]

    def change(i: int) -> Any:
        return me.put(f"{base}/{fid}", json={"name": "Race", "body": f"writer {i}"}, timeout=120)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(change, range(8)))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 409}, codes
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "formula_version_conflict"
    winners = {r.json()["version"]: r.json()["body"] for r in responses if r.status_code == 200}
    assert len(winners) == codes.count(200)  # no two successes claimed the same version

    history = me.get(base, params={"history": "true"}).json()["items"]
    stored = {f["version"]: f["body"] for f in history}
    assert sorted(stored) == list(range(1, len(winners) + 2))
    for version, body in winners.items():
        assert stored[version] == body  # what each winner was told is what is stored
    raw = stack.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": f"CLIENT#{client_id}"}, ":p": {"S": f"FORMULA#{fid}#"}},
    )
    assert raw["Count"] == len(winners) + 1


def test_the_checked_by_scenario_through_the_real_studio_routes(stack: Stack, pro: Callable[..., Api]) -> None:
    """Create a studio, invite and join, assign and unassign: note visibility follows at once."""
    alice, bob, carl = pro("owner"), pro("member"), pro("outsider")
    made = alice.post("/studios", json={"name": "Notes Studio", "country": "US", "time_zone": "America/New_York"})
    assert made.status_code == 201, made.text
    studio_id = made.json()["studio_id"]
    for member in (bob, carl):
        code = alice.post(f"/studios/{studio_id}/invites", json={"role": "provider"}).json()["code"]
        assert member.post("/studios/join", json={"code": code}).status_code == 202
    stack.drain()
    client_id = _personal_client(bob)  # a member registers it: a studio client assigned to them
    note = bob.post(f"/clients/{client_id}/notes", json={"body": "Seen by the studio"}).json()
    assert alice.get(f"/clients/{client_id}/notes").json()["items"] == [note]
    assert carl.get(f"/clients/{client_id}/notes").status_code == 404

    assignee = f"/studios/{studio_id}/clients/{client_id}/assignees/{carl.sub}"
    assert alice.put(assignee).status_code == 204
    assert carl.get(f"/clients/{client_id}/notes").json()["items"] == [note]
    assert carl.patch(f"/clients/{client_id}/notes/{note['note_id']}", json={"body": "x"}).status_code == 403
    assert alice.delete(assignee).status_code == 204
    assert carl.get(f"/clients/{client_id}/notes").status_code == 404

    assert alice.delete(f"/clients/{client_id}/notes/{note['note_id']}").status_code == 204
    assert bob.get(f"/clients/{client_id}/notes").json()["items"] == []
