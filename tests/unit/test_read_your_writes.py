"""D1's read-your-writes promise on AWS: a base-table read without ConsistentRead "might not reflect the results
of a recently completed write operation"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html). The local
stack's DynamoDB emulates that lag (devstack/ddb_faults.py, ``read_lag_ms``); here it is on, in-process, with a
lag far longer than the test takes, so every read the code makes without ConsistentRead misses what was just
written. Every read a caller makes right after their own write must still see it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.template import Template
from tests.unit.test_import_in_progress import _call

SEED = 20261204


@pytest.fixture
def lagging_reads(aws: Template) -> Iterator[None]:
    from devstack import ddb_faults, faults, moto_patches

    moto_patches.apply()
    faults.configure("read_lag_ms=60000", seed=SEED)
    print(f"faults: DEVSTACK_FAULTS=read_lag_ms=60000,seed={faults.seed()}")
    yield
    faults.configure("off")
    ddb_faults.reset()


def _ok(aws: Template, method: str, path: str, sub: str, body: Any = None) -> Any:
    resp = _call(aws, method, path, sub, body)
    assert resp["statusCode"] < 300, resp
    return json.loads(resp["body"]) if resp.get("body") else None


def test_the_creator_sees_what_they_just_wrote_whatever_the_read_lag(aws: Template, lagging_reads: None) -> None:

    created = _ok(aws, "POST", "/clients", "ana", {"name": "Bea", "phone": "+1 415 555 2671"})
    cid = created["client_id"]
    assert [c["client_id"] for c in _ok(aws, "GET", "/me/clients", "ana")["items"]] == [cid]
    assert _ok(aws, "GET", f"/clients/{cid}", "ana")["name"] == "Bea"

    resp = _call(aws, "PATCH", f"/clients/{cid}", "ana", {"name": "Bea B"}, headers={"if-match": '"1"'})
    assert resp["statusCode"] == 200, resp
    assert _ok(aws, "GET", f"/clients/{cid}", "ana")["version"] == 2

    _ok(aws, "POST", f"/clients/{cid}/notes", "ana", {"body": "Prefers mornings."})
    assert [n["body"] for n in _ok(aws, "GET", f"/clients/{cid}/notes", "ana")["items"]] == ["Prefers mornings."]
    _ok(aws, "POST", f"/clients/{cid}/formulas", "ana", {"name": "Base", "body": "6N + 20 vol"})
    assert [f["name"] for f in _ok(aws, "GET", f"/clients/{cid}/formulas", "ana")["items"]] == ["Base"]
    log = _ok(aws, "GET", f"/clients/{cid}/log", "ana")
    assert "Prefers mornings." in json.dumps(log)
    assert "6N + 20 vol" in json.dumps(log)


def test_a_new_studio_and_its_invite_are_seen_by_their_creator(aws: Template, lagging_reads: None) -> None:
    studio = _ok(aws, "POST", "/studios", "olga", {"name": "Glow", "country": "US", "time_zone": "UTC"})
    assert _ok(aws, "GET", "/me", "olga")["studio_id"] == studio["studio_id"]
    members = _ok(aws, "GET", f"/studios/{studio['studio_id']}/members", "olga")["items"]
    assert [m["pro_id"] for m in members] == ["olga"]
    _ok(aws, "POST", f"/studios/{studio['studio_id']}/invites", "olga", {"role": "provider"})


def test_a_pro_who_just_joined_can_preview_their_departure(aws: Template, lagging_reads: None) -> None:
    studio = _ok(aws, "POST", "/studios", "olga", {"name": "Glow", "country": "US", "time_zone": "UTC"})
    sid = studio["studio_id"]
    code = _ok(aws, "POST", f"/studios/{sid}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})
    preview = _ok(aws, "GET", f"/studios/{sid}/members/bob/departure", "bob")
    assert preview["pro_id"] == "bob"
