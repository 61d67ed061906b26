"""On AWS a transaction meeting another on the same item is cancelled (TransactionConflict), which moto
never does: registering a client tries again, then answers 409 write_conflict, never a 500."""

from __future__ import annotations

from typing import Any

import botocore.client
import pytest
from botocore.exceptions import ClientError

from devstack.template import Template
from salon.errors import Conflict
from salon.identity import Caller
from salon.schemas.clients import ClientCreate
from salon.services import clients


def _conflicts(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    original = botocore.client.BaseClient._make_api_call
    seen = [0]

    def flaky(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "TransactWriteItems" and seen[0] < times:
            seen[0] += 1
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (len(params["TransactItems"]) - 1)
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": reasons,
                },
                operation,
            )
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", flaky)
    return seen


def test_a_passing_conflict_is_retried(aws: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _conflicts(monkeypatch, 2)
    client = clients.create_client(Caller("ana"), ClientCreate(name="Bea", phone="+1 415 555 2671"))
    assert seen[0] == 2
    assert clients.get_client(Caller("ana"), client.client_id).name == "Bea"


def test_a_lasting_conflict_is_409_write_conflict_with_nothing_written(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    _conflicts(monkeypatch, 99)
    with pytest.raises(Conflict) as err:
        clients.create_client(Caller("ana"), ClientCreate(name="Bea", phone="+1 415 555 2671"))
    assert err.value.code == "write_conflict"
    monkeypatch.undo()
    assert clients.list_my_clients(Caller("ana"), 10, None).items == []


def test_an_edit_meeting_another_transaction_is_retried_then_409_with_nothing_written(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile edit's transaction (profile, contact uniqueness, the editor's view) is retried like the rest."""
    from salon.schemas.clients import ClientUpdate
    from salon.services.access import begin_request

    client = clients.create_client(Caller("ana"), ClientCreate(name="Bea", phone="+1 415 555 2671"))
    seen = _conflicts(monkeypatch, 1)
    begin_request()  # each call below is a request of its own (the access read is kept for one request)
    edited = clients.update_client(Caller("ana"), client.client_id, ClientUpdate(name="Bea B"), '"1"')
    assert seen[0] == 1
    assert (edited.name, edited.version) == ("Bea B", 2)
    _conflicts(monkeypatch, 99)
    begin_request()
    with pytest.raises(Conflict) as err:
        clients.update_client(Caller("ana"), client.client_id, ClientUpdate(name="Bea C"), '"2"')
    assert err.value.code == "write_conflict"
    monkeypatch.undo()
    begin_request()
    assert clients.get_client(Caller("ana"), client.client_id).name == "Bea B"


def test_a_studio_route_meeting_another_transaction_is_retried_then_409_not_500(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routes without their own wording (here: creating a studio) answer the shared 409 write_conflict."""
    import json

    from tests.unit.test_import_in_progress import _call

    seen = _conflicts(monkeypatch, 1)
    created = _call(aws, "POST", "/studios", "ana", {"name": "Glow"})
    assert (created["statusCode"], seen[0]) == (201, 1)
    _conflicts(monkeypatch, 99)
    refused = _call(aws, "POST", "/studios", "bea", {"name": "Shine"})
    assert refused["statusCode"] == 409
    assert json.loads(refused["body"])["error"]["code"] == "write_conflict"
    monkeypatch.undo()
    assert json.loads(_call(aws, "GET", "/me", "bea")["body"]).get("studio_id") is None
