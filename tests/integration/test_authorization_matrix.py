"""Every published route against every kind of caller who must not reach a victim studio's client, over
HTTP on the local stack. The routes come from the stack's own ``GET /openapi.json``; a route missing from
``MATRIX`` fails the test, so a new route cannot ship without saying who may call it.

The victim: studio V with its owner ``va`` (admin) and a provider ``vp`` assigned to client C, who holds
a note, a formula, an appointment, a purchase, a package, a gift card and a pending upload.
The callers:
- ``none``, ``expired``, ``wrong_aud``: no token, an expired one, one for another audience: 401;
- ``outsider``: the admin of another studio;
- ``ex_member``: a provider of V who left (they were assigned to another of V's clients);
- ``apprentice``, ``assistant``: members of V, not assigned to C, C not checked in;
- ``provider``: a provider of V not assigned to C.
And the transitions: a pro who is leaving, who left, or who was demoted to apprentice, reading their list,
their feed and a client's profile and log after an admin edits it (``test_a_transition_...``).
No response to any of them may carry C's id, name, phone, email, note or formula text, nor (for the two
outside V) the ids of V and of its other clients.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.studio_helpers import set_pro_plan
from tests.integration.test_history import booking, slot

pytestmark = pytest.mark.integration

UNAUTHENTICATED = ("none", "expired", "wrong_aud")
OUTSIDE = ("outsider", "ex_member")
INSIDE = ("apprentice", "assistant", "provider")
PRINCIPALS = UNAUTHENTICATED + OUTSIDE + INSIDE


def _all(status: int) -> dict[str, int]:
    return dict.fromkeys(OUTSIDE + INSIDE, status)


def _split(outside: int, inside: int) -> dict[str, int]:
    return {**dict.fromkeys(OUTSIDE, outside), **dict.fromkeys(INSIDE, inside)}


MONEY = {"amount": 100, "currency": "USD"}
# route -> (body or None, expected status for each authenticated principal); the unauthenticated get 401.
# A client the caller may not see is a 404 whatever else is wrong (SPEC "Who may do what").
MATRIX: dict[str, tuple[Any, dict[str, int]]] = {
    # the caller's own book: allowed, and nothing of the victim's comes back
    "GET /me": (None, _all(200)),
    "GET /me/clients": (None, _all(200)),
    "GET /me/changes": (None, _all(200)),
    "POST /clients": ("new-client", _all(201)),
    "POST /studios": ({"name": "Mine", "country": "US", "time_zone": "UTC"}, {**_all(409), "ex_member": 201}),
    "POST /studios/join": ({"code": "not-a-real-code-000"}, _all(404)),
    # billing: operators only
    "PUT /pros/{pro_id}/plan": ({"plan": "premium"}, _all(403)),
    "PUT /studios/{studio_id}/plan": ({"plan": "premium"}, _all(403)),
    # the studio: members read it, admins change it, others do not know it exists
    "GET /studios/{studio_id}": (None, _split(404, 200)),
    "POST /studios/{studio_id}/invites": ({"role": "provider"}, _split(404, 403)),
    "GET /studios/{studio_id}/members": (None, _split(404, 200)),
    "GET /studios/{studio_id}/members/{pro_id}": (None, _split(404, 200)),
    "PATCH /studios/{studio_id}/members/{pro_id}": ({"role": "admin"}, _split(404, 403)),
    "DELETE /studios/{studio_id}/members/{pro_id}": (None, _split(404, 403)),
    "GET /studios/{studio_id}/members/{pro_id}/departure": (None, _split(404, 403)),
    "POST /studios/{studio_id}/owner": ({"pro_id": "PRO"}, _split(404, 403)),
    "GET /studios/{studio_id}/clients": (None, _split(404, 200)),
    "PUT /studios/{studio_id}/clients/{client_id}/assignees/{pro_id}": (None, _all(404)),
    "DELETE /studios/{studio_id}/clients/{client_id}/assignees/{pro_id}": (None, _all(404)),
    "DELETE /studios/{studio_id}/clients/{client_id}": (None, _all(404)),
    # the client and everything on it: not theirs to see
    "GET /clients/{client_id}": (None, _all(404)),
    "PATCH /clients/{client_id}": ({"name": "Pwned"}, _all(404)),
    "DELETE /clients/{client_id}": (None, _all(404)),
    "PUT /clients/{client_id}/block": (None, _all(404)),
    "DELETE /clients/{client_id}/block": (None, _all(404)),
    "GET /clients/{client_id}/log": (None, _all(404)),
    "GET /clients/{client_id}/notes": (None, _all(404)),
    "POST /clients/{client_id}/notes": ({"body": "planted"}, _all(404)),
    "PATCH /clients/{client_id}/notes/{note_id}": ({"body": "planted"}, _all(404)),
    "DELETE /clients/{client_id}/notes/{note_id}": (None, _all(404)),
    "GET /clients/{client_id}/formulas": (None, _all(404)),
    "POST /clients/{client_id}/formulas": ({"name": "x", "body": "planted"}, _all(404)),
    "PUT /clients/{client_id}/formulas/{formula_id}": ({"name": "x", "body": "planted"}, _all(404)),
    "GET /clients/{client_id}/uploads": (None, _all(404)),
    "POST /clients/{client_id}/uploads": ({"content_type": "image/jpeg", "size": 1000}, _all(404)),
    "DELETE /clients/{client_id}/uploads/{upload_id}": (None, _all(404)),
    "POST /clients/{client_id}/appointments": ("booking", _all(404)),
    "POST /clients/{client_id}/appointments/{appointment_id}/{action}": (None, _all(404)),
    "POST /clients/{client_id}/purchases": (
        {"items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price": MONEY}]},
        _all(404),
    ),
    "POST /clients/{client_id}/packages": ({"name": "P", "sessions": 1, "price": MONEY}, _all(404)),
    "POST /clients/{client_id}/packages/{package_id}/redemptions": (None, _all(404)),
    "POST /clients/{client_id}/gift-cards": (MONEY, _all(404)),
    "POST /clients/{client_id}/gift-cards/{gift_card_id}/redemptions": ({"amount": 10}, _all(404)),
}


def _ok(resp: requests.Response, status: int = 200) -> Any:
    assert resp.status_code == status, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    return resp.json() if resp.content else None


def _api(stack: Stack, name: str) -> Api:
    return Api(stack, f"{name}-{uuid.uuid4().hex[:10]}")


def _join(stack: Stack, admin: Api, pro: Api, studio_id: str, role: str) -> None:
    code = _ok(admin.post(f"/studios/{studio_id}/invites", json={"role": role}), 201)["code"]
    _ok(pro.post("/studios/join", json={"code": code}), 202)
    deadline = time.monotonic() + 30
    while _ok(pro.get(f"/studios/{studio_id}/members/{pro.sub}"))["import"]["status"] != "done":
        assert time.monotonic() < deadline
        stack.drain()


@dataclass
class Victim:
    studio_id: str
    ids: dict[str, str]
    secrets: list[str]  # what no outsider may ever read
    studio_secrets: list[str]  # what no one outside the studio may read
    former_ids: list[str]  # the ex-member's former client: only its tombstone, in their own feed


@pytest.fixture(scope="module")
def victim(stack: Stack) -> tuple[Victim, dict[str, Api]]:
    va, vp = _api(stack, "va"), _api(stack, "vp")
    ex, apprentice, assistant, provider = (_api(stack, n) for n in ("vx", "vap", "vas", "vpn"))
    studio_id = _ok(va.post("/studios", json={"name": "Victim Studio", "country": "US", "time_zone": "UTC"}), 201)[
        "studio_id"
    ]
    for api, role in (
        (vp, "provider"),
        (ex, "provider"),
        (apprentice, "apprentice"),
        (assistant, "assistant"),
        (provider, "provider"),
    ):
        _join(stack, va, api, studio_id, role)
    set_pro_plan(stack, va.sub, "premium")
    _ok(stack_operator(stack).put(f"/studios/{studio_id}/plan", json={"plan": "premium"}))
    phone, email = unique_phone(), f"vera-{uuid.uuid4().hex[:8]}@victim.example"
    client = _ok(va.post("/clients", json={"name": "Vera Victimova", "phone": phone, "email": email}), 201)
    cid = client["client_id"]
    _ok(va.put(f"/studios/{studio_id}/clients/{cid}/assignees/{vp.sub}"), 204)
    other = _ok(va.post("/clients", json={"name": "Other Studio Client", "phone": unique_phone()}), 201)["client_id"]
    _ok(va.put(f"/studios/{studio_id}/clients/{other}/assignees/{ex.sub}"), 204)
    stack.drain()
    note_body = f"victim-note-{uuid.uuid4().hex}"
    formula_body = f"victim-formula-{uuid.uuid4().hex}"
    ids = {
        "studio_id": studio_id,
        "client_id": cid,
        "other_client_id": other,
        "note_id": _ok(vp.post(f"/clients/{cid}/notes", json={"body": note_body}), 201)["note_id"],
        "formula_id": _ok(vp.post(f"/clients/{cid}/formulas", json={"name": "Blonde", "body": formula_body}), 201)[
            "formula_id"
        ],
        "appointment_id": _ok(vp.post(f"/clients/{cid}/appointments", json=booking(vp.sub, slot(24 * 60))), 201)[
            "appointment_id"
        ],
        "purchase_id": _ok(
            vp.post(
                f"/clients/{cid}/purchases",
                json={"items": [{"sku": "S1", "name": "Shampoo", "quantity": 1, "unit_price": MONEY}]},
            ),
            201,
        )["purchase_id"],
        "package_id": _ok(
            vp.post(f"/clients/{cid}/packages", json={"name": "Five blowdries", "sessions": 5, "price": MONEY}), 201
        )["package_id"],
        "gift_card_id": _ok(vp.post(f"/clients/{cid}/gift-cards", json=MONEY), 201)["gift_card_id"],
        "upload_id": _ok(vp.post(f"/clients/{cid}/uploads", json={"content_type": "image/jpeg", "size": 1000}), 201)[
            "upload_id"
        ],
    }
    # The ex-member leaves: the studio keeps the client they were assigned to (va added it).
    _ok(ex.delete(f"/studios/{studio_id}/members/{ex.sub}"), 202)
    stack.drain()
    outsider = _api(stack, "oa")
    _ok(outsider.post("/studios", json={"name": "Rival", "country": "US", "time_zone": "UTC"}), 201)
    stack.drain()
    victim = Victim(
        studio_id,
        ids,
        secrets=[
            cid,
            phone,
            email,
            "Vera Victimova",
            note_body,
            formula_body,
            ids["note_id"],
            ids["formula_id"],
            ids["appointment_id"],
            ids["package_id"],
            ids["gift_card_id"],
            ids["upload_id"],
            ids["purchase_id"],
        ],
        studio_secrets=[studio_id, "Victim Studio", "Other Studio Client", va.sub],
        former_ids=[other],
    )
    callers = {
        "outsider": outsider,
        "ex_member": ex,
        "apprentice": apprentice,
        "assistant": assistant,
        "provider": provider,
        "va": va,
        "vp": vp,
    }
    return victim, callers


def stack_operator(stack: Stack) -> Api:
    return Api(stack, f"ops-{uuid.uuid4().hex[:8]}", ["operators"])


def _operations(stack: Stack) -> list[tuple[str, str]]:
    doc = requests.get(f"{stack.url}/openapi.json", timeout=60).json()
    methods = {"get", "post", "put", "patch", "delete"}
    return sorted((m.upper(), path) for path, ops in doc["paths"].items() for m in ops if m in methods)


def _fill(path: str, victim: Victim, callers: dict[str, Api]) -> str:
    values = {**victim.ids, "action": "check-in", "pro_id": callers["vp"].sub}
    if path.startswith("/pros/"):
        values["pro_id"] = callers["va"].sub
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no victim id for a parameter of {path}: add it to the fixture"
    return path


def _body(spec: Any, callers: dict[str, Api]) -> Any:
    if spec == "new-client":
        return {"name": "Own Client", "phone": unique_phone()}
    if spec == "booking":
        return booking(callers["vp"].sub, slot(48 * 60))
    if isinstance(spec, dict) and spec.get("pro_id") == "PRO":
        return {"pro_id": callers["vp"].sub}
    return spec


def _request(
    stack: Stack, principal: str, callers: dict[str, Api], method: str, path: str, body: Any
) -> requests.Response:
    url = f"{stack.url}{path}"
    headers = {}
    if principal == "expired":
        headers["Authorization"] = f"Bearer {stack.token('someone', ttl_s=-60)}"
    elif principal == "wrong_aud":
        headers["Authorization"] = f"Bearer {stack.token(callers['outsider'].sub, audience='another-app')}"
    elif principal != "none":
        return callers[principal].request(method, path, json=body)
    return requests.request(method, url, json=body, headers=headers, timeout=30)


def test_every_route_has_a_matrix_entry(stack: Stack) -> None:
    published = {f"{m} {p}" for m, p in _operations(stack)}
    missing = sorted(published - set(MATRIX))
    assert not missing, f"routes without an authorization matrix entry (add them to MATRIX): {missing}"
    stale = sorted(set(MATRIX) - published)
    assert not stale, f"matrix entries for routes that are not published: {stale}"


def test_every_route_refuses_every_outsider_and_leaks_nothing(
    stack: Stack, victim: tuple[Victim, dict[str, Api]]
) -> None:
    data, callers = victim
    failures: list[str] = []
    covered = 0
    for method, template in _operations(stack):
        key = f"{method} {template}"
        if key not in MATRIX:
            continue  # reported by test_every_route_has_a_matrix_entry
        spec, expected = MATRIX[key]
        path = _fill(template, data, callers)
        for principal in PRINCIPALS:
            want = 401 if principal in UNAUTHENTICATED else expected[principal]
            resp = _request(stack, principal, callers, method, path, _body(spec, callers))
            covered += 1
            if resp.status_code != want:
                failures.append(f"{principal:10} {key}: {resp.status_code} (expected {want}) {resp.text[:160]}")
            text = resp.text
            leaked = [s for s in data.secrets if s in text]
            if principal in OUTSIDE + UNAUTHENTICATED:
                leaked += [s for s in data.studio_secrets if s in text]
            if leaked:
                failures.append(f"{principal:10} {key}: response carries {leaked}: {text[:200]}")
            assert resp.status_code < 500, f"{principal} {key}: {resp.status_code} {text[:300]}"
    assert covered >= len(MATRIX) * len(PRINCIPALS)
    assert not failures, "\n".join(failures)


def test_the_victims_record_is_unchanged_after_the_sweep(stack: Stack, victim: tuple[Victim, dict[str, Api]]) -> None:
    """Whatever the sweep sent (the test above runs first, pytest keeps file order), C still has exactly its
    one note and its name, and nothing planted reached its log."""
    data, callers = victim
    stack.drain()
    va, cid = callers["va"], data.ids["client_id"]
    client = _ok(va.get(f"/clients/{cid}"))
    assert client["name"] == "Vera Victimova"
    notes = _ok(va.get(f"/clients/{cid}/notes"))["items"]
    assert [n["note_id"] for n in notes] == [data.ids["note_id"]]
    assert "planted" not in json.dumps(_ok(va.get(f"/clients/{cid}/log")))
    assert {c["client_id"] for c in _ok(callers["vp"].get("/me/clients", params={"limit": 100}))["items"]} >= {cid}
    # The ex-member's feed names their former client only as a tombstone (SPEC: leaving), with no data.
    feed = _ok(callers["ex_member"].get("/me/changes"))["items"]
    former = [e for e in feed if e["client_id"] == data.ids["other_client_id"]]
    assert former, feed
    assert all(e["op"] == "delete" and e["client"] is None for e in former), former


# Transitions (issue 16.9): a pro who is leaving (the job still running), who left, or who was demoted to
# apprentice reads /me/clients, /me/changes, GET /clients/{id} and its log after an admin edits a client.
# SPEC "Leave": nothing written after the leave reaches them; after a demotion, nothing unmasked.


def _reads(pro: Api, client_id: str, since: str) -> list[tuple[str, int, str]]:
    """Every page of the pro's list and change feed since ``since``, and the client's profile and log."""
    out: list[tuple[str, int, str]] = []
    cursor: str | None = None
    while True:
        resp = pro.get("/me/clients", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
        out.append(("/me/clients", resp.status_code, resp.text))
        cursor = resp.json().get("next_cursor") if resp.status_code == 200 else None
        if not cursor:
            break
    position = since
    while True:
        resp = pro.get("/me/changes", params={"since": position, "limit": 100})
        out.append(("/me/changes", resp.status_code, resp.text))
        if resp.status_code != 200 or not resp.json()["has_more"]:
            break
        position = resp.json()["cursor"]
    for path in (f"/clients/{client_id}", f"/clients/{client_id}/log"):
        resp = pro.get(path)
        out.append((path, resp.status_code, resp.text))
    return out


def _feed_end(pro: Api) -> str:
    position: str | None = None
    while True:
        page = _ok(pro.get("/me/changes", params={"limit": 100, **({"since": position} if position else {})}))
        position = page["cursor"]
        if not page["has_more"]:
            return str(position)


@pytest.mark.parametrize("transition", ["leaving", "left", "demoted"])
def test_a_transition_lets_nothing_written_after_it_reach_the_pro(stack: Stack, transition: str) -> None:
    """The edit is made the moment the transition is accepted ("leaving", "demoted": the departure or re-fan
    job still has the pro's views to go through, the client's among the last) or once the job is done
    ("left"); the pro's reads are polled while the stream and the jobs run, and once more after."""
    from tests.integration.studio_helpers import make_studio, put_studio_client

    alice, bob = _api(stack, "ta"), _api(stack, "tb")
    studio = make_studio(stack, admin=alice.sub, members={bob.sub: "provider"})
    # Enough clients that the job takes a while: the departure splits 48 a chunk, the re-fan rewrites 100 a page.
    for i in range(130 if transition == "demoted" else 60):
        put_studio_client(stack, studio, assignees=[bob.sub], name=f"Filler {i:03d}", phone=unique_phone())
    time.sleep(0.01)
    client_id = put_studio_client(stack, studio, assignees=[bob.sub], name="Tess Target", phone=unique_phone())
    stack.drain()
    since = _feed_end(bob)
    if transition == "demoted":
        _ok(alice.patch(f"/studios/{studio.studio_id}/members/{bob.sub}", json={"role": "apprentice"}))
    else:
        _ok(bob.delete(f"/studios/{studio.studio_id}/members/{bob.sub}"), 202)
        if transition == "left":
            stack.drain()
    new_name, new_phone = f"Tess Edited {uuid.uuid4().hex[:8]}", "+1 415 555 0199"
    _ok(alice.patch(f"/clients/{client_id}", json={"name": new_name, "phone": new_phone}, headers={"If-Match": '"1"'}))
    secrets = ["+14155550199"] if transition == "demoted" else ["+14155550199", new_name]
    drained = threading.Thread(target=stack.drain)
    drained.start()
    rounds = 0
    while drained.is_alive() or rounds == 0:
        rounds += 1
        for path, status, text in _reads(bob, client_id, since):
            for secret in secrets:
                assert secret not in text, f"{transition}: {path} ({status}) carries {secret!r} (read {rounds})"
            if transition != "demoted" and path.startswith("/clients/"):
                assert status == 404, f"{transition}: {path} answered {status}"
    drained.join()
    final = _reads(bob, client_id, since)
    for path, _status, text in final:
        assert not any(secret in text for secret in secrets), f"{transition}: {path} carries the edit"
    if transition == "demoted":
        profile = _ok(bob.get(f"/clients/{client_id}"))
        assert profile["masked"] is True
        assert profile.get("phone") is None
        assert profile["name"] == new_name  # the name is not masked: it reaches the apprentice


# Duplicate registration by each role (issue 16.1, 16.9): a phone or an email of C opens nothing by itself.
# (caller, name registered, which of C's values) -> whether the 409 may name C (SPEC "Client identity").
DUPLICATES: list[tuple[str, str, str, bool]] = [
    ("va", "Someone Else", "phone", True),  # an admin sees every studio client
    ("vp", "Someone Else", "email", True),  # assigned to C already
    ("apprentice", "Vera Victimova", "phone", False),  # masked roles are never assigned this way
    ("assistant", "Vera Victimova", "email", False),
    ("provider", "Someone Else", "phone", False),  # another name: ask an admin
    ("provider", "  vera   VICTIMOVA ", "email", True),  # a walk-in under C's name: assigned, named (last)
]


def test_a_duplicate_registration_names_c_only_to_whoever_may_see_it(
    stack: Stack, victim: tuple[Victim, dict[str, Api]]
) -> None:
    data, callers = victim
    cid, phone, email = data.ids["client_id"], data.secrets[1], data.secrets[2]
    studio_id = data.studio_id
    failures: list[str] = []
    try:
        for who, name, field, named in DUPLICATES:
            api = callers[who]
            resp = api.post("/clients", json={"name": name, field: phone if field == "phone" else email.upper()})
            if resp.status_code != 409:
                failures.append(f"{who} {name!r} {field}: {resp.status_code} {resp.text[:160]}")
                continue
            details = resp.json()["error"]["details"] or {}
            if named and details.get("existing_client_id") != cid:
                failures.append(f"{who} {name!r} {field}: 409 should name C: {resp.text[:160]}")
            if not named:
                if cid in resp.text or "existing_client_id" in details:
                    failures.append(f"{who} {name!r} {field}: 409 names C: {resp.text[:160]}")
                if api.get(f"/clients/{cid}").status_code != 404:
                    failures.append(f"{who} {name!r} {field}: C is open to them after the 409")
        # The walk-in assignment is the provider's now (and recorded).
        assert callers["provider"].get(f"/clients/{cid}").status_code == 200
        # Outside the studio the same values are simply free: their own books are other books.
        for who in ("outsider", "ex_member"):
            resp = callers[who].post("/clients", json={"name": "Vera Victimova", "phone": phone})
            if resp.status_code != 201 or cid in resp.text:
                failures.append(f"{who}: {resp.status_code} {resp.text[:160]}")
        assert not failures, "\n".join(failures)
    finally:
        # Back as the fixture made it: the provider is not assigned to C.
        callers["va"].delete(f"/studios/{studio_id}/clients/{cid}/assignees/{callers['provider'].sub}")
        stack.drain()


def test_an_edit_onto_cs_phone_or_email_names_c_only_to_whoever_may_see_it(
    stack: Stack, victim: tuple[Victim, dict[str, Api]]
) -> None:
    """PATCH of the caller's own studio client onto C's phone or email: a provider not assigned to C gets a
    409 without C's id; C's assigned provider and the admin get C named."""
    data, callers = victim
    cid, phone, email = data.ids["client_id"], data.secrets[1], data.secrets[2]
    for who, named in (("provider", False), ("vp", True), ("va", True)):
        api = callers[who]
        own = _ok(api.post("/clients", json={"name": f"Own {who}", "phone": unique_phone()}), 201)
        for change in ({"phone": phone}, {"email": email}):
            resp = api.patch(f"/clients/{own['client_id']}", json=change, headers={"If-Match": '"1"'})
            assert resp.status_code == 409, f"{who} {change}: {resp.status_code} {resp.text}"
            assert resp.json()["error"]["code"] == "duplicate_client"
            if named:
                assert resp.json()["error"]["details"]["existing_client_id"] == cid, resp.text
            else:
                assert cid not in resp.text, f"{who} {change}: {resp.text}"
                assert "existing_client_id" not in resp.json()["error"]["details"], resp.text
    assert callers["provider"].get(f"/clients/{cid}").status_code == 404
