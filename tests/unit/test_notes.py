"""Notes and formulas: the permission rules, the DynamoDB call budget of every route, and the
writes that must not half-happen (moto in-process, the handler invoked as Lambda would)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ulid import ULID

from devstack.functions import LambdaContext, load_handler
from devstack.gateway import http_event
from devstack.template import Template
from salon.data import keys
from salon.data.models import ClientProfile, FormulaVersion, Note, ProProfile, TableItem
from salon.errors import Conflict, Forbidden, NotFound
from salon.identity import Caller
from salon.schemas.notes import FormulaWrite, NoteCreate
from salon.services import notes
from salon.services.access import Book, ClientAccess, begin_request, client_access

STUDIO = "01JD00000000000000000STUDI"


def _profile(client_id: str, owner: str, assignees: set[str]) -> ClientProfile:
    p = ClientProfile(keys.client_pk(client_id), keys.PROFILE)
    p.client_id = client_id
    p.owner = owner
    p.name = p.name_folded = "Ana"
    p.version = 1
    p.created_at = p.updated_at = "2026-01-01T00:00:00.000Z"
    p.created_by = next(iter(assignees), "someone")
    p.assignees = assignees
    return p


def _access(pro: str, role: str | None, *, assigned: bool, checked_in: bool = False) -> ClientAccess:
    studio = role is not None
    book = Book(
        owner=f"STUDIO#{STUDIO}" if studio else f"PRO#{pro}",
        country="US",
        studio_id=STUDIO if studio else None,
        role=role,
    )
    client = _profile(str(ULID()), book.owner, {pro} if assigned else set())
    return ClientAccess(Caller(pro), None, book, client, assigned=assigned, checked_in_today=checked_in)


# ------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("role", "assigned", "checked_in", "may_add"),
    [
        (None, True, False, True),  # a solo pro in their own book
        ("admin", False, False, True),
        ("provider", True, False, True),
        ("provider", False, True, False),  # a check-in gives providers nothing
        ("assistant", True, False, True),
        ("assistant", False, True, True),
        ("apprentice", False, True, True),
        ("apprentice", False, False, False),
    ],
)
def test_who_may_add_notes_and_formulas(role: str | None, assigned: bool, checked_in: bool, may_add: bool) -> None:
    assert _access("me", role, assigned=assigned, checked_in=checked_in).can_write_notes is may_add


@pytest.mark.parametrize("role", [None, "admin", "provider", "apprentice", "assistant"])
def test_only_the_author_edits_whatever_the_role(role: str | None) -> None:
    access = _access("me", role, assigned=True, checked_in=True)
    assert access.can_edit_note("me")
    assert not access.can_edit_note("someone-else")


@pytest.mark.parametrize(
    ("role", "deletes_others"),
    [(None, True), ("admin", True), ("provider", False), ("apprentice", False), ("assistant", False)],
)
def test_the_author_deletes_and_an_admin_deletes_any(role: str | None, deletes_others: bool) -> None:
    access = _access("me", role, assigned=True, checked_in=True)
    assert access.can_delete_note("me")
    assert access.can_delete_note("someone-else") is deletes_others
    assert access.can_delete_any_note is deletes_others


# --------------------------------------------- over moto, through the handler


def _seed_studio_client(admin: str, provider: str) -> str:
    for pro_id, role in ((admin, "admin"), (provider, "provider")):
        pro = ProProfile(keys.pro_pk(pro_id), keys.PROFILE)
        pro.studio_id = STUDIO
        pro.role = role
        pro.membership_status = "active"
        pro.studio_time_zone = "Europe/Lisbon"
        pro.save()
    client_id = str(ULID())
    _profile(client_id, f"STUDIO#{STUDIO}", {provider}).save()
    return client_id


@pytest.fixture
def invoke(aws: Template) -> Callable[..., dict[str, Any]]:
    """Call the Notes function with an HTTP API event, as API Gateway would."""
    handler = load_handler(aws.functions()["NotesFunction"])
    routes = [r for r in aws.http_routes() if r.function == "NotesFunction"]

    def call(method: str, path: str, sub: str, body: Any = None, query: str = "") -> dict[str, Any]:
        for route in routes:
            match = route.regex.match(path)
            if route.method == method and match:
                params = dict(zip(route.params, match.groups(), strict=True))
                raw = json.dumps(body).encode() if body is not None else b""
                headers = {"content-type": "application/json"}
                event = http_event(route, method, path, query, headers, raw, {"sub": sub}, params)
                result: dict[str, Any] = handler(event, LambdaContext("NotesFunction"))
                result["json"] = json.loads(result["body"]) if result.get("body") else None
                return result
        raise AssertionError(f"no route for {method} {path}")

    return call


def test_every_route_stays_within_its_call_budget(
    invoke: Callable[..., dict[str, Any]], api_calls: list[str], faults_off: None
) -> None:
    """Counts calls, so with faults off (a retry adds calls): the budget is the design's."""
    client_id = _seed_studio_client("adm", "prov")
    base = f"/clients/{client_id}"

    def measured(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
        api_calls.clear()
        result = invoke(*args, **kwargs)
        return result, list(api_calls)

    added, calls = measured("POST", f"{base}/notes", "prov", {"body": "hello"})
    assert added["statusCode"] == 201, added
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    note_id = added["json"]["note_id"]

    listed, calls = measured("GET", f"{base}/notes", "adm")
    assert listed["statusCode"] == 200
    assert calls == ["BatchGetItem", "Query"]

    edited, calls = measured("PATCH", f"{base}/notes/{note_id}", "prov", {"body": "changed"})
    assert edited["statusCode"] == 200
    assert calls == ["BatchGetItem", "UpdateItem"]

    refused, calls = measured("PATCH", f"{base}/notes/{note_id}", "adm", {"body": "mine now"})
    assert refused["statusCode"] == 403
    assert len(calls) <= 3

    formula, calls = measured("POST", f"{base}/formulas", "prov", {"name": "Base", "body": "6N"})
    assert formula["statusCode"] == 201
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    fid = formula["json"]["formula_id"]

    changed, calls = measured("PUT", f"{base}/formulas/{fid}", "adm", {"name": "Base", "body": "7N"})
    assert changed["statusCode"] == 200
    assert calls == ["BatchGetItem", "Query", "TransactWriteItems"]

    for query in ("", "history=true"):
        page, calls = measured("GET", f"{base}/formulas", "prov", query=query)
        assert page["statusCode"] == 200
        assert calls == ["BatchGetItem", "Query"]

    gone, calls = measured("DELETE", f"{base}/notes/{note_id}", "adm")
    assert gone["statusCode"] == 204
    assert calls == ["BatchGetItem", "TransactWriteItems"]  # the delete and the COUNTS decrement, one call

    missing, calls = measured("DELETE", f"{base}/notes/{note_id}", "prov")
    assert missing["statusCode"] == 404
    assert missing["json"]["error"]["code"] == "note_not_found"
    assert len(calls) <= 3
    assert "Scan" not in calls


def test_an_unseen_client_is_404_before_any_validation_or_write(
    invoke: Callable[..., dict[str, Any]], api_calls: list[str], faults_off: None
) -> None:
    """Counts calls (the refusal is the access read alone): faults off."""
    client_id = _seed_studio_client("adm2", "prov2")
    api_calls.clear()
    resp = invoke("POST", f"/clients/{client_id}/notes", "stranger", {"body": ""})
    assert resp["statusCode"] == 404
    assert resp["json"]["error"]["code"] == "client_not_found"
    assert api_calls == ["BatchGetItem"]


def _solo_client(aws: Template, pro: str) -> str:
    client_id = str(ULID())
    _profile(client_id, f"PRO#{pro}", {pro}).save()
    return client_id


def _items(client_id: str, prefix: str) -> list[TableItem]:
    return list(TableItem.query(keys.client_pk(client_id), TableItem.sk.startswith(prefix), consistent_read=True))


def test_a_client_removed_mid_request_gets_no_orphan_note(aws: Template) -> None:
    client_id = _solo_client(aws, "solo")
    begin_request()
    caller = Caller("solo")
    client_access(caller, client_id)  # the precheck's read
    TableItem.get(keys.client_pk(client_id), keys.PROFILE, consistent_read=True).delete()
    with pytest.raises(NotFound) as err:
        notes.add_note(caller, client_id, NoteCreate(body="late"))
    assert err.value.code == "client_not_found"
    with pytest.raises(NotFound):
        notes.add_formula(caller, client_id, FormulaWrite(name="x", body="y"))
    assert _items(client_id, "NOTE#") == []
    assert _items(client_id, "FORMULA#") == []


def test_a_change_from_a_stale_version_is_409_and_keeps_the_other_writers_version(aws: Template) -> None:
    client_id = _solo_client(aws, "solo")
    begin_request()
    caller = Caller("solo")
    v1 = notes.add_formula(caller, client_id, FormulaWrite(name="Base", body="first"))
    from salon.data.notes_repo import DynamoNotesRepository

    class StaleRead(DynamoNotesRepository):
        """Reads version 1 after another writer already wrote version 2 (the race, made certain)."""

        def latest_formula(self, client_id: str, formula_id: str) -> FormulaVersion | None:
            stale = super().latest_formula(client_id, formula_id)
            assert stale is not None
            notes.change_formula(caller, client_id, formula_id, FormulaWrite(name="Base", body="other writer"))
            return stale

    with pytest.raises(Conflict) as err:
        notes.change_formula(caller, client_id, v1.formula_id, FormulaWrite(name="Base", body="mine"), StaleRead())
    assert err.value.code == "formula_version_conflict"
    stored = {int(i.version): i.body for i in _items(client_id, "FORMULA#") if isinstance(i, FormulaVersion)}
    assert stored == {1: "first", 2: "other writer"}


def test_a_note_that_is_not_yours_is_not_changed(aws: Template) -> None:
    client_id = _seed_studio_client("adm3", "prov3")
    begin_request()
    note = notes.add_note(Caller("prov3"), client_id, NoteCreate(body="provider's"))
    from salon.schemas.notes import NoteUpdate

    with pytest.raises(Forbidden):
        notes.edit_note(Caller("adm3"), client_id, note.note_id, NoteUpdate(body="admin's"))
    stored = TableItem.get(keys.client_pk(client_id), keys.note_sk(note.note_id), consistent_read=True)
    assert isinstance(stored, Note)
    assert stored.body == "provider's"
    assert stored.author_id == "prov3"
    profile = TableItem.get(keys.client_pk(client_id), keys.PROFILE, consistent_read=True)
    assert isinstance(profile, ClientProfile)
    assert profile.history_pros == {"prov3"}
    assert profile.version == 1


def _conflicting_transactions(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """Make the next ``times`` TransactWriteItems fail as AWS does when another write of an item is in flight."""
    import botocore.client
    from botocore.exceptions import ClientError

    original = botocore.client.BaseClient._make_api_call
    seen = [0]

    def conflicting(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name == "TransactWriteItems" and seen[0] < times:
            seen[0] += 1
            reasons = [{"Code": "None"}, {"Code": "TransactionConflict", "Message": "in progress"}]
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}}
            raise ClientError({**error, "CancellationReasons": reasons}, operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", conflicting)
    return seen


def test_a_write_that_meets_another_write_of_the_profile_is_tried_again(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = _solo_client(aws, "solo")
    begin_request()
    caller = Caller("solo")
    seen = _conflicting_transactions(monkeypatch, times=1)
    note = notes.add_note(caller, client_id, NoteCreate(body="second try"))
    assert seen[0] == 1
    assert [n.note_id for n in _items(client_id, "NOTE#") if isinstance(n, Note)] == [note.note_id]


def test_a_write_that_keeps_meeting_other_writes_is_409_and_writes_nothing(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = _solo_client(aws, "solo")
    begin_request()
    _conflicting_transactions(monkeypatch, times=100)
    with pytest.raises(Conflict) as err:
        notes.add_note(Caller("solo"), client_id, NoteCreate(body="never"))
    assert err.value.code == "write_conflict"
    assert _items(client_id, "NOTE#") == []
