"""Studios over HTTP, as the mobile app uses them: create, plans, invites, join with import and dedup,
roles, ownership, the studio list, assignment, fan-out of edits, block and delete."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.integration.conftest import Api, Stack, unique_phone

MakePro = Callable[..., Api]


def _client(api: Api, name: str, **fields: Any) -> dict[str, Any]:
    resp = api.post("/clients", json={"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _studio(api: Api, **fields: Any) -> dict[str, Any]:
    resp = api.post(
        "/studios", json={"name": "Salon Lumière", "country": "US", "time_zone": "America/New_York", **fields}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _invite(admin: Api, studio_id: str, role: str = "provider") -> str:
    resp = admin.post(f"/studios/{studio_id}/invites", json={"role": role})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["code"])


def _join(stack: Stack, admin: Api, pro: Api, studio_id: str, role: str = "provider") -> dict[str, Any]:
    resp = pro.post("/studios/join", json={"code": _invite(admin, studio_id, role)})
    assert resp.status_code == 202, resp.text
    _wait_import(stack, pro, studio_id)
    return resp.json()  # type: ignore[no-any-return]


def _wait_import(stack: Stack, pro: Api, studio_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        stack.drain()
        member = pro.get(f"/studios/{studio_id}/members/{pro.sub}").json()
        if member["import"]["status"] == "done":
            stack.drain()
            return member  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, member
        time.sleep(0.1)


def _my_ids(api: Api) -> set[str]:
    return {c["client_id"] for c in api.get("/me/clients", params={"limit": 100}).json()["items"]}


def test_create_studio_makes_the_creator_owner_and_admin_and_imports_their_clients(stack: Stack, pro: MakePro) -> None:
    alice = pro("alice")
    own = _client(alice, "Ana Lopez", phone=unique_phone())
    studio = _studio(alice)
    assert studio["role"] == "admin"
    assert studio["owner_id"] == alice.sub
    member = _wait_import(stack, alice, studio["studio_id"])
    assert member["import"] == {"status": "done", "imported": 1, "merged": 0, "conflicts": 0}
    me = alice.get("/me").json()
    assert me == {"pro_id": alice.sub, "studio_id": studio["studio_id"], "role": "admin", "plan": "basic"}
    moved = alice.get(f"/clients/{own['client_id']}").json()
    assert moved["book"] == "studio"
    assert moved["studio_id"] == studio["studio_id"]
    listed = alice.get(f"/studios/{studio['studio_id']}/clients").json()["items"]
    assert [c["client_id"] for c in listed] == [own["client_id"]]
    assert alice.post("/studios", json={"name": "Second"}).status_code == 409


def test_join_imports_moves_merges_by_phone_and_email_and_reports_conflicts(stack: Stack, pro: MakePro) -> None:
    alice, bob = pro("alice"), pro("bob")
    studio_id = _studio(alice)["studio_id"]
    _wait_import(stack, alice, studio_id)
    p1, p2, p3 = unique_phone(), unique_phone(), unique_phone()
    s_phone = _client(alice, "Carla Studio", phone=p1)
    s_email = _client(alice, "Dana Studio", email=f"dana-{bob.sub}@example.com", birthday=None)
    s_other = _client(alice, "Eve Studio", email=f"eve-{bob.sub}@example.com", phone=p3)
    b_new = _client(bob, "Fay New", phone=unique_phone())
    b_phone = _client(bob, "Carla C.", phone=p1, email=f"carla-{bob.sub}@example.com", allergies=["latex"])
    b_email = _client(bob, "Dana D.", email=f"Dana-{bob.sub}@Example.com", birthday="1990-05-01")
    b_conflict = _client(bob, "Gus Conflict", phone=p2, email=f"eve-{bob.sub}@example.com")
    # The registration's answer names the client: the studio's list is a GSI read, which lags on AWS.
    gus_studio = _client(alice, "Gus Studio", phone=p2)

    joined = _join(stack, alice, bob, studio_id)
    assert joined["role"] == "provider"
    member = _wait_import(stack, bob, studio_id)
    assert member["import"] == {"status": "done", "imported": 1, "merged": 3, "conflicts": 1}

    # Moved: same id, now a studio client brought by bob.
    assert bob.get(f"/clients/{b_new['client_id']}").json()["book"] == "studio"
    # Merged by phone: the old id resolves to the studio client, missing fields filled in.
    merged = bob.get(f"/clients/{b_phone['client_id']}").json()
    assert merged["client_id"] == s_phone["client_id"]
    assert merged["allergies"] == ["latex"]
    assert merged["email"] == f"carla-{bob.sub}@example.com"
    assert merged["name"] == "Carla Studio"  # the studio's value wins
    # Merged by email (normalised): birthday filled.
    by_email = bob.get(f"/clients/{b_email['client_id']}").json()
    assert by_email["client_id"] == s_email["client_id"]
    assert by_email["birthday"] == "1990-05-01"
    # Phone matches one studio client, email another: linked by phone, never merged with the other.
    linked = bob.get(f"/clients/{b_conflict['client_id']}").json()
    assert linked["client_id"] == gus_studio["client_id"]
    assert alice.get(f"/clients/{s_other['client_id']}").json()["email"] == f"eve-{bob.sub}@example.com"
    # Bob's list holds the studio ids; the studio list has no duplicates.
    assert _my_ids(bob) == {b_new["client_id"], s_phone["client_id"], s_email["client_id"], gus_studio["client_id"]}
    names = [c["name"] for c in alice.get(f"/studios/{studio_id}/clients").json()["items"]]
    assert sorted(names) == ["Carla Studio", "Dana Studio", "Eve Studio", "Fay New", "Gus Studio"]
    # Bob's change feed shows each move: tombstones for the merged-away ids, upserts for the studio ids.
    feed = bob.get("/me/changes").json()["items"]
    deleted = {c["client_id"] for c in feed if c["op"] == "delete"}
    assert {b_phone["client_id"], b_email["client_id"], b_conflict["client_id"]} <= deleted


def test_invites_are_single_use_and_bad_codes_look_alike_then_throttle(stack: Stack, pro: MakePro) -> None:
    alice, bob, cara = pro("alice"), pro("bob"), pro("cara")
    studio_id = _studio(alice)["studio_id"]
    code = _invite(alice, studio_id)
    assert len(code) >= 16
    assert bob.post("/studios/join", json={"code": code}).status_code == 202
    used = cara.post("/studios/join", json={"code": code})
    unknown = cara.post("/studios/join", json={"code": "no-such-code-123"})
    assert used.status_code == unknown.status_code == 404
    assert used.json() == unknown.json()
    assert used.json()["error"]["code"] == "invite_invalid"
    assert bob.post("/studios/join", json={"code": _invite(alice, studio_id)}).status_code == 409
    statuses = [cara.post("/studios/join", json={"code": f"guess-{i}"}).status_code for i in range(6)]
    assert statuses[-1] == 429
    assert cara.post("/studios/join", json={"code": _invite(alice, studio_id)}).status_code == 429


def test_only_admins_invite_and_outsiders_see_no_studio(stack: Stack, pro: MakePro) -> None:
    alice, bob, eve = pro("alice"), pro("bob"), pro("eve")
    studio_id = _studio(alice)["studio_id"]
    _join(stack, alice, bob, studio_id)
    assert bob.post(f"/studios/{studio_id}/invites", json={"role": "admin"}).status_code == 403
    assert eve.get(f"/studios/{studio_id}").status_code == 404
    assert eve.get(f"/studios/{studio_id}/members").status_code == 404
    assert eve.post(f"/studios/{studio_id}/invites", json={"role": "provider"}).status_code == 404


def test_plans_change_only_by_operators(stack: Stack, pro: MakePro) -> None:
    alice = pro("alice")
    ops = pro("ops", ["operators"])
    studio_id = _studio(alice)["studio_id"]
    assert alice.put(f"/studios/{studio_id}/plan", json={"plan": "premium"}).status_code == 403
    assert alice.put(f"/pros/{alice.sub}/plan", json={"plan": "premium"}).status_code == 403
    assert ops.put(f"/studios/{studio_id}/plan", json={"plan": "premium"}).status_code == 200
    stack.drain()
    assert alice.get("/me").json()["plan"] == "premium"
    assert alice.get(f"/studios/{studio_id}").json()["plan"] == "premium"
    solo = pro("solo")
    assert ops.put(f"/pros/{solo.sub}/plan", json={"plan": "premium"}).json() == {"plan": "premium"}
    assert solo.get("/me").json()["plan"] == "premium"
    assert ops.put(f"/pros/{solo.sub}/plan", json={"plan": "gold"}).status_code == 422


def test_roles_owner_and_last_admin(stack: Stack, pro: MakePro) -> None:
    alice, bob, cara = pro("alice"), pro("bob"), pro("cara")
    studio_id = _studio(alice)["studio_id"]
    _join(stack, alice, bob, studio_id, "admin")
    _join(stack, alice, cara, studio_id, "provider")
    # The owner's role cannot be changed by another admin.
    assert bob.patch(f"/studios/{studio_id}/members/{alice.sub}", json={"role": "provider"}).status_code == 409
    assert cara.patch(f"/studios/{studio_id}/members/{bob.sub}", json={"role": "provider"}).status_code == 403
    # Ownership goes to another admin only, and only from the owner.
    assert bob.post(f"/studios/{studio_id}/owner", json={"pro_id": bob.sub}).status_code == 403
    assert alice.post(f"/studios/{studio_id}/owner", json={"pro_id": cara.sub}).status_code == 409
    assert alice.post(f"/studios/{studio_id}/owner", json={"pro_id": bob.sub}).json()["owner_id"] == bob.sub
    # Two admins demoting each other at once never leave the studio without an admin.
    statuses = []
    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(bob.patch, f"/studios/{studio_id}/members/{alice.sub}", json={"role": "provider"})
            b = pool.submit(alice.patch, f"/studios/{studio_id}/members/{bob.sub}", json={"role": "provider"})
            statuses.append((a.result().status_code, b.result().status_code))
        roles = {m["pro_id"]: m["role"] for m in alice.get(f"/studios/{studio_id}/members").json()["items"]}
        assert "admin" in roles.values(), statuses
        if roles[alice.sub] != "admin":
            break
    assert bob.get(f"/studios/{studio_id}/members/{bob.sub}").json()["role"] == "admin"  # the owner stays admin


def test_edits_fan_out_to_assigned_members_with_if_match(stack: Stack, pro: MakePro) -> None:
    alice, bob, cara, dan = pro("alice"), pro("bob"), pro("cara"), pro("dan")
    studio_id = _studio(alice)["studio_id"]
    _join(stack, alice, bob, studio_id)
    _join(stack, alice, cara, studio_id, "assistant")
    _join(stack, alice, dan, studio_id)
    phone = unique_phone()
    client = _client(bob, "Hana Hair", phone=phone)
    cid = client["client_id"]
    for member in (cara, dan):
        assert alice.put(f"/studios/{studio_id}/clients/{cid}/assignees/{member.sub}").status_code == 204
    stack.drain()
    cara_view = next(c for c in cara.get("/me/clients").json()["items"] if c["client_id"] == cid)
    assert cara_view["masked"] is True
    assert cara_view["phone"] is None
    # Stale and missing versions never overwrite.
    assert bob.patch(f"/clients/{cid}", json={"name": "X"}).status_code == 428
    assert bob.patch(f"/clients/{cid}", json={"name": "X"}, headers={"If-Match": '"7"'}).status_code == 412
    etag = bob.get(f"/clients/{cid}").headers["ETag"]
    edited = bob.patch(f"/clients/{cid}", json={"name": "Hana Haircut", "tags": ["vip"]}, headers={"If-Match": etag})
    assert edited.status_code == 200, edited.text
    assert edited.headers["ETag"] == '"2"'
    assert bob.patch(f"/clients/{cid}", json={"name": "Lost"}, headers={"If-Match": etag}).status_code == 412
    # An assistant may not edit.
    assert cara.patch(f"/clients/{cid}", json={"name": "Y"}, headers={"If-Match": '"2"'}).status_code == 403
    stack.drain()
    for member in (bob, cara, dan, alice):
        if member is alice:
            continue
        view = next(c for c in member.get("/me/clients").json()["items"] if c["client_id"] == cid)
        assert (view["name"], view["version"], view["tags"]) == ("Hana Haircut", 2, ["vip"])
    # A role change re-fans the member's views unmasked.
    assert alice.patch(f"/studios/{studio_id}/members/{cara.sub}", json={"role": "provider"}).status_code == 200
    stack.drain()
    cara_view = next(c for c in cara.get("/me/clients").json()["items"] if c["client_id"] == cid)
    assert cara_view["masked"] is False
    assert cara_view["phone"] is not None
    # Unassigning removes the view and takes access away at once.
    assert alice.delete(f"/studios/{studio_id}/clients/{cid}/assignees/{dan.sub}").status_code == 204
    assert dan.get(f"/clients/{cid}").status_code == 404
    stack.drain()
    assert cid not in _my_ids(dan)


def test_duplicate_in_a_studio_answers_409_and_assigns_the_caller(stack: Stack, pro: MakePro) -> None:
    """A provider registering a walk-in already in the book under the same name (SPEC "Client identity";
    another name gets no id: tests/integration/test_dedup_access.py)."""
    alice, bob = pro("alice"), pro("bob")
    studio_id = _studio(alice)["studio_id"]
    _join(stack, alice, bob, studio_id)
    phone = unique_phone()
    existing = _client(alice, "Iris", phone=phone)
    assert bob.get(f"/clients/{existing['client_id']}").status_code == 404
    dup = bob.post("/clients", json={"name": "IRIS", "phone": phone})
    assert dup.status_code == 409
    assert dup.json()["error"]["details"]["existing_client_id"] == existing["client_id"]
    assert bob.get(f"/clients/{existing['client_id']}").status_code == 200
    stack.drain()
    assert existing["client_id"] in _my_ids(bob)


def test_pro_delete_unassigns_and_the_studio_keeps_the_client(stack: Stack, pro: MakePro) -> None:
    alice, bob = pro("alice"), pro("bob")
    studio_id = _studio(alice)["studio_id"]
    _join(stack, alice, bob, studio_id)
    cid = _client(bob, "Jade", phone=unique_phone())["client_id"]
    assert bob.delete(f"/clients/{cid}").status_code == 204
    stack.drain()
    assert cid not in _my_ids(bob)
    assert bob.get(f"/clients/{cid}").status_code == 404
    assert alice.get(f"/clients/{cid}").status_code == 200
    assert cid in {c["client_id"] for c in alice.get(f"/studios/{studio_id}/clients").json()["items"]}


def test_block_is_personal_and_survives_fan_out(stack: Stack, pro: MakePro) -> None:
    alice, bob = pro("alice"), pro("bob")
    studio_id = _studio(alice)["studio_id"]
    _join(stack, alice, bob, studio_id)
    cid = _client(bob, "Kim", phone=unique_phone())["client_id"]
    assert alice.put(f"/studios/{studio_id}/clients/{cid}/assignees/{alice.sub}").status_code == 204
    assert bob.put(f"/clients/{cid}/block").json() == {"client_id": cid, "blocked": True}
    etag = alice.get(f"/clients/{cid}").headers["ETag"]
    assert alice.patch(f"/clients/{cid}", json={"name": "Kim K"}, headers={"If-Match": etag}).status_code == 200
    stack.drain()
    bob_view = next(c for c in bob.get("/me/clients").json()["items"] if c["client_id"] == cid)
    assert (bob_view["blocked"], bob_view["name"]) == (True, "Kim K")
    alice_view = next(c for c in alice.get("/me/clients").json()["items"] if c["client_id"] == cid)
    assert alice_view["blocked"] is False
    assert bob.delete(f"/clients/{cid}/block").json()["blocked"] is False


def test_admin_delete_cascades_and_every_view_goes(stack: Stack, pro: MakePro) -> None:
    alice, bob = pro("alice"), pro("bob")
    studio_id = _studio(alice)["studio_id"]
    _join(stack, alice, bob, studio_id)
    phone = unique_phone()
    cid = _client(bob, "Lia", phone=phone)["client_id"]
    assert bob.delete(f"/studios/{studio_id}/clients/{cid}").status_code == 403
    assert alice.delete(f"/studios/{studio_id}/clients/{cid}").status_code == 202
    stack.drain()
    assert bob.get(f"/clients/{cid}").status_code == 404
    assert alice.get(f"/clients/{cid}").status_code == 404
    assert cid not in _my_ids(bob)
    stack.drain()
    # Its phone is free again in the studio.
    assert bob.post("/clients", json={"name": "Lia again", "phone": phone}).status_code == 201


def test_member_writes_to_not_yet_imported_clients_answer_import_in_progress(stack: Stack, pro: MakePro) -> None:
    """A joined pro's personal client that the import has not moved yet is read-only (409)."""
    alice, bob = pro("alice"), pro("bob")
    studio_id = _studio(alice)["studio_id"]
    _wait_import(stack, alice, studio_id)
    ddb = stack.client("dynamodb")
    cid = _client(bob, "Mo", phone=unique_phone())["client_id"]
    code = _invite(alice, studio_id)
    # Hold the import back: the join's member item is written, but we check before the jobs run
    # by reading and writing at once; when the import already ran the client is a studio client (200).
    assert bob.post("/studios/join", json={"code": code}).status_code == 202
    resp = bob.patch(f"/clients/{cid}", json={"name": "Mo B"}, headers={"If-Match": '"1"'})
    profile = ddb.get_item(
        TableName="studio-local-RecordsTable", Key={"pk": {"S": f"CLIENT#{cid}"}, "sk": {"S": "PROFILE"}}
    )["Item"]
    if resp.status_code == 409:
        assert resp.json()["error"]["code"] == "import_in_progress"
    else:
        assert profile["owner"]["S"] == f"STUDIO#{studio_id}"
    assert bob.get(f"/clients/{cid}").status_code == 200


def test_a_client_with_an_open_gift_card_is_not_deleted(stack: Stack, pro: MakePro) -> None:
    alice = pro("alice")
    studio_id = _studio(alice)["studio_id"]
    _wait_import(stack, alice, studio_id)
    cid = _client(alice, "Noa", phone=unique_phone())["client_id"]
    card = alice.post(f"/clients/{cid}/gift-cards", json={"amount": 500, "currency": "USD"})
    assert card.status_code == 201, card.text
    refused = alice.delete(f"/studios/{studio_id}/clients/{cid}")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "open_balance"
    assert alice.get(f"/clients/{cid}").status_code == 200
    spent = alice.post(f"/clients/{cid}/gift-cards/{card.json()['gift_card_id']}/redemptions", json={"amount": 500})
    assert spent.status_code in (200, 201), spent.text
    assert alice.delete(f"/studios/{studio_id}/clients/{cid}").status_code == 202


def test_my_clients_name_prefix_search_and_pages(stack: Stack, pro: MakePro) -> None:
    solo = pro("solo")
    for name in ("Zoë Adams", "zoe Baker", "Yara", "Zed", "Ana"):
        _client(solo, name, phone=unique_phone())
    found = solo.get("/me/clients", params={"q": "ZOE"}).json()["items"]
    assert sorted(c["name"] for c in found) == ["Zoë Adams", "zoe Baker"]
    seen: list[str] = []
    cursor = None
    while True:
        page = solo.get("/me/clients", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["items"]) <= 2
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(["Zoë Adams", "zoe Baker", "Yara", "Zed", "Ana"])
    assert solo.get("/me/clients", params={"limit": 101}).status_code == 422
    assert solo.get("/me/clients", params={"cursor": "not-ours"}).status_code == 422


def test_a_merge_moves_notes_formulas_and_history_to_the_studio_client(stack: Stack, pro: MakePro) -> None:
    """Bob's client is the studio's Ana: after the join everything Bob kept on his Ana is on the studio's."""
    import datetime as dt

    alice, bob = pro("alice"), pro("bob")
    studio_id = _studio(alice)["studio_id"]
    _wait_import(stack, alice, studio_id)
    phone = unique_phone()
    studio_ana = _client(alice, "Ana Studio", phone=phone)["client_id"]
    bobs_ana = _client(bob, "Ana B", phone=phone)["client_id"]
    assert bob.post(f"/clients/{bobs_ana}/notes", json={"body": "Prefers mornings"}).status_code == 201
    assert bob.post(f"/clients/{bobs_ana}/formulas", json={"name": "Root", "body": "6N + 20vol"}).status_code == 201
    assert bob.post(f"/clients/{bobs_ana}/gift-cards", json={"amount": 2500, "currency": "USD"}).status_code == 201
    sale = {
        "items": [{"sku": "SH-1", "name": "Shampoo", "quantity": 1, "unit_price": {"amount": 1800, "currency": "USD"}}]
    }
    bought = bob.post(f"/clients/{bobs_ana}/purchases", json=sale)
    assert bought.status_code == 201, bought.text
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(hour=15, minute=0, second=0, microsecond=0)
    appointment = {
        "provider_id": bob.sub,
        "start": start.isoformat(),
        "services": [{"name": "Colour", "minutes": 60, "price": {"amount": 9000, "currency": "USD"}}],
    }
    assert bob.post(f"/clients/{bobs_ana}/appointments", json=appointment).status_code == 201

    _join(stack, alice, bob, studio_id)
    log = alice.get(f"/clients/{studio_ana}/log")
    assert log.status_code == 200, log.text
    body = log.json()
    assert [n["body"] for n in body["notes"]] == ["Prefers mornings"]
    assert [f["name"] for f in body["formulas"]] == ["Root"]
    assert [g["balance"]["amount"] for g in body["gift_cards"]] == [2500]
    assert len(body["purchases"]) == 1
    assert len(body["upcoming_appointments"]) == 1
    # The old id resolves, and nothing is left behind under it.
    assert bob.get(f"/clients/{bobs_ana}/log").json()["client"]["client_id"] == studio_ana
    leftovers = stack.client("dynamodb").query(
        TableName="studio-local-RecordsTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CLIENT#{bobs_ana}"}},
    )["Items"]
    assert [i["sk"]["S"] for i in leftovers] == ["ALIAS"]
