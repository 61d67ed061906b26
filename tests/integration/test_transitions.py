"""Issue 16 over HTTP: nothing reaches a pro who is leaving, left or was demoted; throttles hold under
concurrency; a refused read costs what a missing one costs. Each test failed on the code before its fix."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from tests.integration.conftest import Api, Stack, unique_phone

pytestmark = pytest.mark.integration


def test_ten_concurrent_bad_invite_codes_get_429_after_the_fifth(pro: Callable[..., Api]) -> None:
    """SPEC (invites): failures are throttled per pro. The count is one conditional UpdateItem claimed before
    the code is looked at (``failures < 5``), so ten bad codes sent at once are five 404s and five 429s;
    a read of the count, then a write, let all ten be tried (ten 404s)."""
    eve = pro("eve")
    barrier = threading.Barrier(10)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        status = eve.post("/studios/join", json={"code": f"not-a-real-code-{i:04d}"}).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(statuses) == {404: 5, 429: 5}
    again = eve.post("/studios/join", json={"code": "not-a-real-code-9999"})
    assert again.status_code == 429
    assert again.json()["error"]["code"] == "too_many_attempts"


def test_a_redeemed_code_is_not_counted_as_a_failure(pro: Callable[..., Api]) -> None:
    """Each attempt is claimed before it is tried and a redeemed code gives its claim back in the join's own
    transaction: four bad codes and a good one leave room for one more bad code, not none."""
    owner, bea = pro("owner"), pro("bea")
    created = owner.post("/studios", json={"name": "Throttle", "country": "US", "time_zone": "UTC"})
    assert created.status_code == 201, created.text
    studio_id = created.json()["studio_id"]
    for i in range(4):
        assert bea.post("/studios/join", json={"code": f"bad-code-{i:04d}-xx"}).status_code == 404
    code = owner.post(f"/studios/{studio_id}/invites", json={"role": "provider"}).json()["code"]
    assert bea.post("/studios/join", json={"code": code}).status_code == 202
    assert bea.post("/studios/join", json={"code": "bad-code-0005-xx"}).status_code == 404
    assert bea.post("/studios/join", json={"code": "bad-code-0006-xx"}).status_code == 429


TABLE = "studio-local-RecordsTable"


def _seed_count(stack: Stack, client_id: str, name: str, value: int) -> None:
    """The client's COUNTS item as a record that many notes or formulas in would have it."""
    stack.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"CLIENT#{client_id}"}, "sk": {"S": "COUNTS"}},
        UpdateExpression="SET kind = :k, #c = :v",
        ExpressionAttributeNames={"#c": name},
        ExpressionAttributeValues={":k": {"S": "counts"}, ":v": {"N": str(value)}},
    )


def _new_client(owner: Api) -> str:
    resp = owner.post("/clients", json={"name": "Lena Limits", "phone": unique_phone()})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["client_id"])


def test_a_client_holds_at_most_500_notes_and_deleting_one_frees_room(stack: Stack, pro: Callable[..., Api]) -> None:
    """Decision D42: the note's own transaction adds one to the client's COUNTS on condition it is below 500;
    the 501st is 409 ``note_limit_reached`` and nothing is written (before: no limit at all)."""
    owner = pro("limits")
    client_id = _new_client(owner)
    first = owner.post(f"/clients/{client_id}/notes", json={"body": "first"})
    assert first.status_code == 201, first.text
    _seed_count(stack, client_id, "note_count", 499)
    assert owner.post(f"/clients/{client_id}/notes", json={"body": "the 500th"}).status_code == 201
    refused = owner.post(f"/clients/{client_id}/notes", json={"body": "one too many"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "note_limit_reached"
    assert refused.json()["error"]["details"] == {"limit": 500}
    bodies = [n["body"] for n in owner.get(f"/clients/{client_id}/notes").json()["items"]]
    assert "one too many" not in bodies
    assert owner.delete(f"/clients/{client_id}/notes/{first.json()['note_id']}").status_code == 204
    assert owner.post(f"/clients/{client_id}/notes", json={"body": "room again"}).status_code == 201


def test_a_client_holds_at_most_100_formulas_of_50_versions_each(stack: Stack, pro: Callable[..., Api]) -> None:
    owner = pro("limits")
    client_id = _new_client(owner)
    formula = owner.post(f"/clients/{client_id}/formulas", json={"name": "Copper", "body": "6/4 + 20 vol"})
    assert formula.status_code == 201, formula.text
    formula_id = formula.json()["formula_id"]
    _seed_count(stack, client_id, "formula_count", 99)
    assert owner.post(f"/clients/{client_id}/formulas", json={"name": "Ash", "body": "7/1"}).status_code == 201
    refused = owner.post(f"/clients/{client_id}/formulas", json={"name": "Gold", "body": "8/3"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "formula_limit_reached"
    # A change writes the next version; the 50th is the last.
    for version in range(2, 51):
        changed = owner.put(
            f"/clients/{client_id}/formulas/{formula_id}", json={"name": "Copper", "body": f"v{version}"}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["version"] == version
    over = owner.put(f"/clients/{client_id}/formulas/{formula_id}", json={"name": "Copper", "body": "v51"})
    assert over.status_code == 409, over.text
    assert over.json()["error"]["code"] == "formula_limit_reached"
    assert over.json()["error"]["details"] == {"limit": 50}


def test_a_kept_client_edited_after_the_leave_is_copied_as_the_pro_last_saw_it(
    stack: Stack, pro: Callable[..., Api]
) -> None:
    """SPEC "Leave": an edit made while the job runs never reaches the pro, their kept copy included. Bob
    registered Tess, so she leaves the studio with him; an admin renames her and changes her phone right
    after the 202, while the job still works through his other clients: his new personal client carries
    the values his view held (before: the studio's current ones, the admin's edit)."""
    import time

    from tests.integration.studio_helpers import make_studio, put_studio_client

    alice, bob = pro("ka"), pro("kb")
    studio = make_studio(stack, admin=alice.sub, members={bob.sub: "provider"})
    for i in range(60):
        put_studio_client(stack, studio, assignees=[bob.sub], name=f"Filler {i:03d}", phone=unique_phone())
    time.sleep(0.01)
    phone = unique_phone()
    client_id = put_studio_client(
        stack, studio, assignees=[bob.sub], name="Tess Target", created_by=bob.sub, phone=phone
    )
    stack.drain()
    resp = bob.delete(f"/studios/{studio.studio_id}/members/{bob.sub}")
    assert resp.status_code == 202, resp.text
    edited = alice.patch(
        f"/clients/{client_id}",
        json={"name": "Tess Renamed By Admin", "phone": "+1 415 555 0198"},
        headers={"If-Match": '"1"'},
    )
    assert edited.status_code == 200, edited.text
    stack.drain()
    items = bob.get("/me/clients", params={"limit": 100}).json()["items"]
    assert not any("Renamed" in c["name"] or c.get("phone") == "+14155550198" for c in items), items
    copies = [c for c in items if c["name"] == "Tess Target"]
    assert len(copies) == 1
    assert copies[0]["book"] == "personal"
    assert copies[0]["client_id"] != client_id


@pytest.mark.parametrize(("role", "status"), [("apprentice", 403), ("assistant", 403), ("provider", 200)])
def test_only_who_may_edit_the_profile_blocks_a_client(
    stack: Stack, pro: Callable[..., Api], role: str, status: int
) -> None:
    """SPEC "Who may do what": block is with "edit profile, block, sell" (admin, assigned provider), never an
    apprentice or assistant, even one assigned to the client. An adversarial pass found assigned apprentices
    and assistants blocking and unblocking (200): the rule read "may edit or is assigned"."""
    from tests.integration.studio_helpers import make_studio, put_studio_client

    admin, member = pro("blk-admin"), pro(f"blk-{role}")
    studio = make_studio(stack, admin=admin.sub, members={member.sub: role})
    client_id = put_studio_client(stack, studio, assignees=[member.sub], name="Bea Blocked", phone=unique_phone())
    assert member.get(f"/clients/{client_id}").status_code == 200  # they see the client
    assert member.put(f"/clients/{client_id}/block").status_code == status
    assert member.delete(f"/clients/{client_id}/block").status_code == status
