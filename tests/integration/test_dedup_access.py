"""Knowing a phone number or an email opens no record (SPEC "Client identity (dedup)"), and dedup sees what
a person sees (NFKC, invisible characters, IDNA emails), over HTTP on the local stack (issue 16, items 1
and 7).

The studio is written straight into the table (``studio_helpers``: the items the studio routes write); its
clients are registered through ``POST /clients``, so their uniqueness items are the real ones.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.studio_helpers import StudioSetup, get_item, make_studio

pytestmark = pytest.mark.integration

MakePro = Callable[..., Api]


def _studio(pro: MakePro, **roles: str) -> tuple[StudioSetup, Api, dict[str, Api]]:
    admin = pro("admin")
    members = {name: pro(name) for name in roles}
    studio = make_studio(admin.stack, admin=admin.sub, members={members[n].sub: r for n, r in roles.items()})
    return studio, admin, members


def _created(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _my_ids(api: Api) -> set[str]:
    return {c["client_id"] for c in api.get("/me/clients", params={"limit": 100}).json()["items"]}


def _assert_no_id(resp: requests.Response, existing_id: str) -> None:
    assert resp.status_code == 409, resp.text
    body = resp.json()
    assert body["error"]["code"] == "duplicate_client"
    assert "existing_client_id" not in (body["error"]["details"] or {}), body
    assert existing_id not in resp.text


@pytest.mark.parametrize("role", ["apprentice", "assistant"])
def test_a_masked_member_who_knows_a_phone_or_an_email_opens_nothing(stack: Stack, pro: MakePro, role: str) -> None:
    """Apprentices and assistants are never assigned by registering a studio client again, even under the
    same name: their 409 carries no id and the client stays out of their reach (their access is the
    check-in rule). On the old code the 409 named the client and assigned them to it."""
    _, admin, members = _studio(pro, member=role)
    member = members["member"]
    phone, email = unique_phone(), f"vera-{uuid.uuid4().hex[:8]}@example.com"
    existing = _created(admin.post("/clients", json={"name": "Vera Lind", "phone": phone, "email": email}))
    cid = existing["client_id"]
    for body in ({"name": "Vera Lind", "phone": phone}, {"name": "Vera Lind", "email": email.upper()}):
        _assert_no_id(member.post("/clients", json=body), cid)
    assert member.get(f"/clients/{cid}").status_code == 404
    assert member.get(f"/clients/{cid}/log").status_code == 404
    stack.drain()
    assert cid not in _my_ids(member)
    assert member.sub not in get_item(stack, f"CLIENT#{cid}", "PROFILE").get("assignees", {}).get("SS", [])


def test_a_provider_with_another_name_gets_no_id_and_no_access(stack: Stack, pro: MakePro) -> None:
    _, admin, members = _studio(pro, bob="provider")
    bob = members["bob"]
    phone = unique_phone()
    cid = _created(admin.post("/clients", json={"name": "Iris Moreau", "phone": phone}))["client_id"]
    _assert_no_id(bob.post("/clients", json={"name": "Someone Else", "phone": phone}), cid)
    assert bob.get(f"/clients/{cid}").status_code == 404
    stack.drain()
    assert cid not in _my_ids(bob)


def test_a_provider_registering_a_walk_in_under_the_same_name_is_assigned_and_it_is_recorded(
    stack: Stack, pro: MakePro
) -> None:
    """Case, accents, spacing and invisible characters are ignored in the name; the assignment carries
    who and why (``registered_duplicate``) for the audit trail."""
    _, admin, members = _studio(pro, bob="provider")
    bob = members["bob"]
    phone = unique_phone()
    cid = _created(admin.post("/clients", json={"name": "José Álvarez", "phone": phone}))["client_id"]
    dup = bob.post("/clients", json={"name": "  jose\u200b   ALVAREZ ", "phone": phone})
    assert dup.status_code == 409, dup.text
    assert dup.json()["error"]["details"]["existing_client_id"] == cid
    assert bob.get(f"/clients/{cid}").status_code == 200
    item = get_item(stack, f"CLIENT#{cid}", "PROFILE")
    assert item is not None
    assert bob.sub in item["assignees"]["SS"]
    assert (item["changed_by"]["S"], item["change_reason"]["S"]) == (bob.sub, "registered_duplicate")
    stack.drain()
    assert cid in _my_ids(bob)
    # Already assigned: the id again, no second assignment counted.
    again = bob.post("/clients", json={"name": "Somebody", "phone": phone})
    assert again.json()["error"]["details"]["existing_client_id"] == cid


def test_a_provider_is_assigned_at_most_ten_walk_ins_a_day_even_all_at_once(stack: Stack, pro: MakePro) -> None:
    """Eleven walk-ins registered concurrently: ten assignments, one 429 ``assignment_limit`` that assigns
    nothing (one conditional counter write per assignment)."""
    studio, admin, members = _studio(pro, bob="provider")
    bob = members["bob"]
    walk_ins = []
    for i in range(11):
        phone = unique_phone()
        walk_ins.append(
            (_created(admin.post("/clients", json={"name": f"Walk In {i}", "phone": phone}))["client_id"], phone)
        )

    def register(i: int) -> requests.Response:
        return bob.post("/clients", json={"name": f"walk in {i}", "phone": walk_ins[i][1]})

    with ThreadPoolExecutor(11) as pool:
        answers = list(pool.map(register, range(11)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [409] * 10 + [429], [a.text for a in answers]
    limited = next(i for i, a in enumerate(answers) if a.status_code == 429)
    assert answers[limited].json()["error"]["code"] == "assignment_limit"
    assert 0 < int(answers[limited].headers["Retry-After"]) <= 86_400  # until the studio's day ends
    assert walk_ins[limited][0] not in answers[limited].text
    assert bob.get(f"/clients/{walk_ins[limited][0]}").status_code == 404
    for i, answer in enumerate(answers):
        if i != limited:
            assert answer.json()["error"]["details"]["existing_client_id"] == walk_ins[i][0]
            assert bob.get(f"/clients/{walk_ins[i][0]}").status_code == 200
    # An admin assigns as usual: the limit is the provider's own walk-ins only.
    assign = admin.put(f"/studios/{studio.studio_id}/clients/{walk_ins[limited][0]}/assignees/{bob.sub}")
    assert assign.status_code == 204, assign.text


def test_admins_and_solo_pros_are_told_which_client_it_is(stack: Stack, pro: MakePro) -> None:
    _, admin, members = _studio(pro, bob="provider")
    phone = unique_phone()
    cid = _created(members["bob"].post("/clients", json={"name": "Nora", "phone": phone}))["client_id"]
    dup = admin.post("/clients", json={"name": "Another Name", "phone": phone})
    assert dup.status_code == 409
    assert dup.json()["error"]["details"]["existing_client_id"] == cid
    solo = pro("solo")
    mine = _created(solo.post("/clients", json={"name": "Nora", "phone": phone}))["client_id"]
    dup = solo.post("/clients", json={"name": "Anyone", "phone": phone})
    assert dup.json()["error"]["details"]["existing_client_id"] == mine


def test_an_edit_colliding_with_a_client_the_caller_cannot_see_does_not_name_it(stack: Stack, pro: MakePro) -> None:
    """A provider's PATCH onto a phone or email of a client they are not assigned to: 409 without its id
    (on the old code the 409 named it); an admin's names it."""
    _, admin, members = _studio(pro, bob="provider")
    bob = members["bob"]
    hidden_phone, hidden_email = unique_phone(), f"h-{uuid.uuid4().hex[:8]}@example.com"
    hidden = _created(admin.post("/clients", json={"name": "Hidden", "phone": hidden_phone, "email": hidden_email}))
    own = _created(bob.post("/clients", json={"name": "Own", "phone": unique_phone()}))
    for change in ({"phone": hidden_phone}, {"email": hidden_email}):
        resp = bob.patch(f"/clients/{own['client_id']}", json=change, headers={"If-Match": '"1"'})
        _assert_no_id(resp, hidden["client_id"])
    assert bob.get(f"/clients/{hidden['client_id']}").status_code == 404
    resp = admin.patch(f"/clients/{own['client_id']}", json={"phone": hidden_phone}, headers={"If-Match": '"1"'})
    assert resp.status_code == 409
    assert resp.json()["error"]["details"]["existing_client_id"] == hidden["client_id"]


# ------------------------------------------------------------------------ dedup sees what a person sees
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ana@bücher.de", "ANA@xn--bcher-kva.de"),  # IDNA: the same domain
        ("ana@example.com", "a\u200bna@exam\u2060ple.com"),  # zero-width space, word joiner
        (
            "ana@example.com",
            "\uff41\uff4e\uff41\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
        ),  # full-width (NFKC)
        ("ana@example.com", "\ufeffana@example.com\u200e"),  # BOM, left-to-right mark
    ],
)
def test_emails_that_look_the_same_are_the_same(pro: MakePro, first: str, second: str) -> None:
    """On the old code each second address registered a second client."""
    solo = pro("solo")
    cid = _created(solo.post("/clients", json={"name": "Ana", "email": first}))["client_id"]
    dup = solo.post("/clients", json={"name": "Ana", "email": second})
    assert dup.status_code == 409, dup.text
    assert dup.json()["error"]["details"]["existing_client_id"] == cid


def test_a_phone_with_invisible_characters_is_the_same_phone(pro: MakePro) -> None:
    solo = pro("solo")
    phone = unique_phone()
    cid = _created(solo.post("/clients", json={"name": "Ana", "phone": phone}))["client_id"]
    dup = solo.post("/clients", json={"name": "Ana", "phone": "\u202d" + phone.replace(" ", "\u200b")})
    assert dup.status_code == 409, dup.text
    assert dup.json()["error"]["details"]["existing_client_id"] == cid


@pytest.mark.parametrize("name", ["\u200b", "\u200b\u200d\ufeff", "\u202e\u2066\u2069", "\u00ad\u2060"])
def test_a_name_made_only_of_invisible_characters_is_a_422_naming_it(pro: MakePro, name: str) -> None:
    """On the old code these registered a client with a blank name."""
    solo = pro("solo")
    resp = solo.post("/clients", json={"name": name, "phone": unique_phone()})
    assert resp.status_code == 422, resp.text
    assert ["body", "name"] in [d["loc"] for d in resp.json()["error"]["details"]]
    own = _created(solo.post("/clients", json={"name": "Real Name", "phone": unique_phone()}))
    resp = solo.patch(f"/clients/{own['client_id']}", json={"name": name}, headers={"If-Match": '"1"'})
    assert resp.status_code == 422, resp.text
    assert ["body", "name"] in [d["loc"] for d in resp.json()["error"]["details"]]


# ------------------------------------------------------------------------------ masking survives a leave
def _leave(stack: Stack, admin: Api, studio: StudioSetup, member: Api) -> None:
    resp = member.delete(f"/studios/{studio.studio_id}/members/{member.sub}")
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 60
    while True:
        stack.drain()
        status = admin.get(f"/studios/{studio.studio_id}/members/{member.sub}").json()["status"]
        if status == "left":
            stack.drain()
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def _personal(api: Api) -> dict[str, dict[str, Any]]:
    items = api.get("/me/clients", params={"limit": 100}).json()["items"]
    return {c["name"]: c for c in items if c["book"] == "personal"}


@pytest.mark.parametrize("role", ["apprentice", "assistant"])
def test_a_masked_member_who_leaves_keeps_only_the_contact_values_they_entered(
    stack: Stack, pro: MakePro, role: str
) -> None:
    """SPEC "Leave": an apprentice or assistant keeps the clients they registered with only the values they
    entered themselves. An admin added a phone to one (masked from the member) and replaced the phone of
    the other: the copies hold the email, and the phone the member typed. On the old code both copies held
    the admin's phones."""
    studio, admin, members = _studio(pro, member=role)
    member = members["member"]
    email, typed, admins_phone, replaced_by = (
        f"ana-{uuid.uuid4().hex[:8]}@example.com",
        unique_phone(),
        unique_phone(),
        unique_phone(),
    )
    ana = _created(member.post("/clients", json={"name": "Ana Leave", "email": email}))
    bea = _created(member.post("/clients", json={"name": "Bea Leave", "phone": typed}))
    assert ana["masked"] is True
    for cid, phone in ((ana["client_id"], admins_phone), (bea["client_id"], replaced_by)):
        resp = admin.patch(f"/clients/{cid}", json={"phone": phone}, headers={"If-Match": '"1"'})
        assert resp.status_code == 200, resp.text
    stack.drain()
    _leave(stack, admin, studio, member)
    kept = _personal(member)
    assert (kept["Ana Leave"]["email"], kept["Ana Leave"]["phone"]) == (email, None), kept
    assert kept["Bea Leave"]["phone"] == typed.replace(" ", ""), kept
    text = json.dumps(kept) + json.dumps(member.get("/me/changes").json())
    assert admins_phone.replace(" ", "") not in text
    assert replaced_by.replace(" ", "") not in text


def test_a_provider_who_leaves_keeps_the_values_they_saw(stack: Stack, pro: MakePro) -> None:
    """The rule is the masking: a provider saw the admin's phone, so their copy holds it."""
    studio, admin, members = _studio(pro, bob="provider")
    bob = members["bob"]
    email, phone = f"cleo-{uuid.uuid4().hex[:8]}@example.com", unique_phone()
    cleo = _created(bob.post("/clients", json={"name": "Cleo Leave", "email": email}))
    resp = admin.patch(f"/clients/{cleo['client_id']}", json={"phone": phone}, headers={"If-Match": '"1"'})
    assert resp.status_code == 200, resp.text
    stack.drain()
    _leave(stack, admin, studio, bob)
    kept = _personal(bob)["Cleo Leave"]
    assert (kept["email"], kept["phone"]) == (email, phone.replace(" ", ""))
