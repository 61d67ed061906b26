"""The departure rule (who keeps a studio client when a pro leaves), the stream's trigger, and a chunk that
crashes half-way and is retried, then replayed, on moto in-process."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from devstack.template import Template
from salon.services import departures
from salon.services.departures import decide
from salon.services.stream import member_jobs

PRO, ALI, CARA = "bob", "alice", "cara"


@pytest.mark.parametrize(
    ("kwargs", "pro_keeps", "studio_keeps", "reasons"),
    [
        ({"created_by": PRO, "brought_by": PRO}, True, False, ["created_by_pro"]),
        ({"created_by": PRO, "brought_by": PRO, "history_pros": {PRO}}, True, False, ["created_by_pro"]),
        ({"created_by": "old-me", "brought_by": PRO}, True, False, ["brought_by_pro"]),
        ({"created_by": ALI, "brought_by": ALI}, False, True, ["added_by_other"]),
        ({"created_by": ALI, "brought_by": ALI, "history_pros": {PRO}}, False, True, ["added_by_other"]),
        (
            {"created_by": ALI, "brought_by": ALI, "merged_by_pro": True},
            True,
            True,
            ["merged_by_pro", "added_by_other"],
        ),
        (
            {"created_by": PRO, "brought_by": PRO, "history_pros": {PRO, CARA}},
            True,
            True,
            ["created_by_pro", "other_history"],
        ),
        ({"created_by": PRO, "brought_by": PRO, "open_balance": True}, True, True, ["created_by_pro", "open_balance"]),
        ({"created_by": PRO, "brought_by": PRO, "others_did": True}, True, True, ["created_by_pro", "other_history"]),
    ],
)
def test_the_rule(kwargs: dict[str, Any], pro_keeps: bool, studio_keeps: bool, reasons: list[str]) -> None:
    decision = decide(PRO, **kwargs)
    assert (decision.pro_keeps, decision.studio_keeps, list(decision.reasons)) == (pro_keeps, studio_keeps, reasons)
    assert decision.leaves_with_pro == (not studio_keeps)


def test_no_client_is_left_with_no_one() -> None:
    for created in (PRO, ALI):
        for merged in (False, True):
            for others in (set(), {CARA}):
                for balance in (False, True):
                    d = decide(
                        PRO,
                        created_by=created,
                        brought_by=created,
                        history_pros=others,
                        merged_by_pro=merged,
                        open_balance=balance,
                    )
                    assert d.pro_keeps or d.studio_keeps


def _member_record(old: str | None, new: str) -> dict[str, Any]:
    def image(status: str) -> dict[str, Any]:
        return {"status": {"S": status}, "role": {"S": "provider"}, "import_status": {"S": "done"}}

    data: dict[str, Any] = {"Keys": {"pk": {"S": "STUDIO#S1"}, "sk": {"S": "MEMBER#bob"}}, "NewImage": image(new)}
    if old:
        data["OldImage"] = image(old)
    return {"dynamodb": data}


def test_the_stream_starts_one_departure_when_a_member_starts_leaving() -> None:
    assert member_jobs(_member_record("active", "leaving")) == [
        {"kind": "departure", "studio_id": "S1", "pro_id": "bob"}
    ]
    assert member_jobs(_member_record("leaving", "leaving")) == []
    assert member_jobs(_member_record("leaving", "left")) == []


# ------------------------------------------------------------------------- a chunk, crashed and retried
TABLE = "studio-local-RecordsTable"
SID = "01JD00000000000000000STUD1"
OWN = "01JD0000000000000000000OWN"
SHARED = "01JD000000000000000000SHAR"


def _s(v: str) -> dict[str, str]:
    return {"S": v}


def _put(ddb: Any, item: dict[str, Any]) -> None:
    ddb.put_item(TableName=TABLE, Item=item)


def _client(ddb: Any, cid: str, name: str, phone: str, history: list[str]) -> None:
    _put(
        ddb,
        {
            "pk": _s(f"CLIENT#{cid}"),
            "sk": _s("PROFILE"),
            "kind": _s("client"),
            "client_id": _s(cid),
            "owner": _s(f"STUDIO#{SID}"),
            "name": _s(name),
            "name_folded": _s(name.lower()),
            "phone": _s(phone),
            "version": {"N": "3"},
            "created_at": _s("2024-01-01T00:00:00.000Z"),
            "updated_at": _s("2024-01-01T00:00:00.000Z"),
            "created_by": _s(PRO),
            "brought_by": _s(PRO),
            "assignees": {"SS": [PRO, CARA] if CARA in history else [PRO]},
            "history_pros": {"SS": history},
        },
    )
    _put(
        ddb,
        {
            "pk": _s(f"PRO#{PRO}"),
            "sk": _s(f"CLIENT#{cid}"),
            "kind": _s("view"),
            "client_id": _s(cid),
            "owner": _s(f"STUDIO#{SID}"),
            "name": _s(name),
            "name_folded": _s(name.lower()),
            "version": {"N": "3"},
            "created_at": _s("2024-01-01T00:00:00.000Z"),
            "updated_at": _s("2024-01-01T00:00:00.000Z"),
            "changed_at": {"N": "1"},
        },
    )
    for author in history:
        _put(
            ddb,
            {
                "pk": _s(f"CLIENT#{cid}"),
                "sk": _s(f"NOTE#01JD000000000000000000{author[:4].upper():0>4}"),
                "kind": _s("note"),
                "client_id": _s(cid),
                "note_id": _s(f"01JD000000000000000000{author[:4].upper():0>4}"),
                "author_id": _s(author),
                "body": _s(f"{author} wrote this"),
                "created_at": _s("2024-01-02T00:00:00.000Z"),
                "updated_at": _s("2024-01-02T00:00:00.000Z"),
            },
        )


@pytest.fixture
def leaving(aws: Template, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[dict[str, Any]]]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    _put(
        ddb,
        {
            "pk": _s(f"STUDIO#{SID}"),
            "sk": _s(f"MEMBER#{PRO}"),
            "kind": _s("member"),
            "studio_id": _s(SID),
            "pro_id": _s(PRO),
            "role": _s("provider"),
            "status": _s("leaving"),
            "joined_at": _s("2024-01-01T00:00:00.000Z"),
            "kept_by_pro": {"N": "0"},
            "kept_by_studio": {"N": "0"},
            "left_with_pro": {"N": "0"},
        },
    )
    _put(ddb, {"pk": _s(f"PRO#{PRO}"), "sk": _s("PROFILE"), "kind": _s("pro"), "membership_status": _s("leaving")})
    _client(ddb, OWN, "Olga Own", "+14155550101", [PRO])
    _client(ddb, SHARED, "Sam Shared", "+14155550102", [PRO, CARA])
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr("salon.services.jobs.enqueue", lambda kind, **payload: sent.append({"kind": kind, **payload}))
    return ddb, sent


def _state(ddb: Any) -> dict[str, Any]:
    items = ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]  # the test's own read: consistent
    member = next(i for i in items if i["sk"]["S"] == f"MEMBER#{PRO}")
    personal = [i for i in items if i["sk"]["S"] == "PROFILE" and i.get("owner", {}).get("S") == f"PRO#{PRO}"]
    copies = sorted(
        (i["pk"]["S"], i["body"]["S"]) for i in items if i["sk"]["S"].startswith("NOTE#") and "copied_from" in i
    )
    studio = {
        i["client_id"]["S"]: (sorted(i.get("assignees", {}).get("SS", [])), "deleted_at" in i)
        for i in items
        if i["sk"]["S"] == "PROFILE" and i.get("owner", {}).get("S") == f"STUDIO#{SID}"
    }
    counters = {k: member.get(k, {}).get("N") for k in ("kept_by_pro", "kept_by_studio", "left_with_pro")}
    return {
        "status": member["status"]["S"],
        "counters": counters,
        "personal": sorted(p["name"]["S"] for p in personal),
        "copies": copies,
        "studio": studio,
    }


def test_a_chunk_that_dies_after_copying_is_retried_and_replayed_to_the_same_result(
    leaving: tuple[Any, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ddb, _ = leaving
    message = {"kind": "departure", "studio_id": SID, "pro_id": PRO}
    real_settle = departures._settle

    def crash(*args: Any) -> None:
        raise RuntimeError("the Lambda timed out")

    monkeypatch.setattr(departures, "_settle", crash)
    with pytest.raises(RuntimeError):
        departures.run_departure_chunk(dict(message))
    half = _state(ddb)
    assert half["status"] == "leaving"
    assert half["personal"] == ["Olga Own", "Sam Shared"]  # copies first; nothing of the studio's changed yet
    assert all(
        assignees == ([PRO] if cid == OWN else sorted([PRO, CARA])) for cid, (assignees, _) in half["studio"].items()
    )

    monkeypatch.setattr(departures, "_settle", real_settle)
    departures.run_departure_chunk(dict(message))  # the retry
    done = _state(ddb)
    departures.run_departure_chunk(dict(message))  # a replay after it finished
    assert _state(ddb) == done
    assert done["status"] == "left"
    assert done["counters"] == {"kept_by_pro": "2", "kept_by_studio": "1", "left_with_pro": "1"}
    assert done["personal"] == ["Olga Own", "Sam Shared"]  # one copy each, the retry reused the ids
    assert [body for _, body in done["copies"]] == ["bob wrote this", "bob wrote this"]  # never cara's note
    assert done["studio"] == {OWN: ([], True), SHARED: ([CARA], False)}


def _profile(**attrs: Any) -> Any:
    from salon.data.models import ClientProfile

    profile = ClientProfile("CLIENT#C", "PROFILE")
    for name, value in {"created_by": PRO, "brought_by": PRO, "version": 2, **attrs}.items():
        setattr(profile, name, value)
    return profile


@pytest.mark.parametrize(
    ("attrs", "kept"),
    [
        ({"phone": "+1", "phone_by": PRO}, "+1"),  # they entered it
        ({"phone": "+1", "phone_by": ALI}, None),  # an admin added it: masked from them
        ({"phone": "+2", "phone_by": ALI, "registrar_phone": "+1"}, "+1"),  # replaced: theirs is kept aside
        ({"phone": None, "registrar_phone": "+1"}, "+1"),  # cleared by someone else
        ({"phone": "+1", "version": 1}, "+1"),  # recorded before phone_by existed, never edited
        ({"phone": "+1"}, None),  # recorded before phone_by existed and edited since: unknown, not kept
        ({"phone": "+1", "phone_by": ALI, "registrar_phone": "+9", "created_by": ALI, "brought_by": ALI}, None),
    ],
)
def test_a_masked_leaver_keeps_only_the_phone_they_entered(attrs: dict[str, Any], kept: str | None) -> None:
    assert departures.entered_value(PRO, _profile(**attrs), "phone") == kept
