"""The join import under a lagging book index: never a self-merge, never a lost note or formula.

On AWS a global secondary index is updated asynchronously and its reads are eventually consistent
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reading): right after a chunk
moved a client into the studio's book, the pro's book index can still list it as personal. moto's index is
always current, so the lag is emulated here by answering the index Query with the page it answered before.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from devstack.template import LOCAL_REGION, LOCAL_STACK_NAME, Template
from tests.unit.test_imports import _ok, _run_import


def _lagging_index(monkeypatch: pytest.MonkeyPatch, stale_reads: int) -> list[int]:
    """The book index answers its first page again for the next ``stale_reads`` queries (moved clients still
    listed as the pro's), then catches up."""
    from salon.data.models import TableItem

    index = TableItem.book_index
    real = type(index).query
    first: list[Any] = []
    calls = [0]

    def query(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            first.extend(real(index, *args, **kwargs))
            return iter(list(first))
        if calls[0] <= 1 + stale_reads:
            return iter(list(first))
        return real(index, *args, **kwargs)

    monkeypatch.setattr(index, "query", query)
    return calls


def test_a_moved_client_the_index_still_lists_is_never_merged_into_itself(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.settings import get_settings

    url = boto3.client("sqs", region_name=LOCAL_REGION).get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-JobsQueue")
    monkeypatch.setenv("JOBS_QUEUE_URL", url["QueueUrl"])
    get_settings.cache_clear()
    studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    client = _ok(aws, "POST", "/clients", "bob", {"name": "Cleo", "phone": "+1 415 555 2671", "email": "c@example.com"})
    cid = client["client_id"]
    _ok(aws, "POST", f"/clients/{cid}/notes", "bob", {"body": "Allergic to PPD; patch test first."})
    _ok(aws, "POST", f"/clients/{cid}/formulas", "bob", {"name": "Base", "body": "6N + 20 vol, 35 min"})
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})

    calls = _lagging_index(monkeypatch, stale_reads=2)
    _run_import(url["QueueUrl"], studio_id, "bob")
    assert calls[0] >= 2  # the index was read again while it still listed the moved client

    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["import"] == {"status": "done", "imported": 1, "merged": 0, "conflicts": 0}
    moved = _ok(aws, "GET", f"/clients/{cid}", "olga")
    assert (moved["client_id"], moved["book"]) == (cid, "studio")
    notes = _ok(aws, "GET", f"/clients/{cid}/notes", "bob")["items"]
    assert [n["body"] for n in notes] == ["Allergic to PPD; patch test first."]
    formulas = _ok(aws, "GET", f"/clients/{cid}/formulas", "bob")["items"]
    assert [f["name"] for f in formulas] == ["Base"]
    log = json.dumps(_ok(aws, "GET", f"/clients/{cid}/log", "bob"))
    assert "merged_from" not in log
    get_settings.cache_clear()


def test_a_merged_client_the_index_still_lists_keeps_every_item_under_the_survivor(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pro's client matches a studio client by phone: merged once, its note under the survivor, and the
    stale index listing it again neither merges it twice nor loses the note."""
    from salon.settings import get_settings

    url = boto3.client("sqs", region_name=LOCAL_REGION).get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-JobsQueue")
    monkeypatch.setenv("JOBS_QUEUE_URL", url["QueueUrl"])
    get_settings.cache_clear()
    studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    survivor = _ok(aws, "POST", "/clients", "olga", {"name": "Ana", "phone": "+1 415 555 2671"})["client_id"]
    mine = _ok(aws, "POST", "/clients", "bob", {"name": "Ana B", "phone": "+1 415 555 2671"})["client_id"]
    _ok(aws, "POST", f"/clients/{mine}/notes", "bob", {"body": "Prefers mornings."})
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})

    _lagging_index(monkeypatch, stale_reads=2)
    _run_import(url["QueueUrl"], studio_id, "bob")

    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["import"] == {"status": "done", "imported": 0, "merged": 1, "conflicts": 0}
    assert _ok(aws, "GET", f"/clients/{mine}", "bob")["client_id"] == survivor
    notes = _ok(aws, "GET", f"/clients/{survivor}/notes", "bob")["items"]
    assert [n["body"] for n in notes] == ["Prefers mornings."]
    get_settings.cache_clear()


def test_a_client_registered_just_before_the_join_is_moved_though_the_index_does_not_list_it_yet(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index lags the other way too: a client registered a moment before the join is not in it yet. The
    import must not call itself done while that client is still the pro's."""
    from salon.data.models import TableItem
    from salon.settings import get_settings

    url = boto3.client("sqs", region_name=LOCAL_REGION).get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-JobsQueue")
    monkeypatch.setenv("JOBS_QUEUE_URL", url["QueueUrl"])
    get_settings.cache_clear()
    studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    cid = _ok(aws, "POST", "/clients", "bob", {"name": "Cleo", "phone": "+1 415 555 2671"})["client_id"]
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})

    monkeypatch.setattr(TableItem.book_index, "query", lambda *args, **kwargs: iter([]))  # not indexed yet
    _run_import(url["QueueUrl"], studio_id, "bob")

    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["import"] == {"status": "done", "imported": 1, "merged": 0, "conflicts": 0}
    assert _ok(aws, "GET", f"/clients/{cid}", "olga")["book"] == "studio"
    get_settings.cache_clear()
