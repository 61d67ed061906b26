"""Restoring one client from a point-in-time restore of the table (tools/restore_client.py), on moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from devstack.template import Template
from tools.restore_client import restore_client

TABLE = "studio-local-RecordsTable"
RESTORED = "studio-local-RecordsTable-restore"
CID = "01JD0000000000000000000001"
OTHER = "01JD0000000000000000000002"


def _profile(version: int, name: str, phone: str) -> dict[str, Any]:
    return {
        "pk": {"S": f"CLIENT#{CID}"},
        "sk": {"S": "PROFILE"},
        "kind": {"S": "client"},
        "client_id": {"S": CID},
        "owner": {"S": "PRO#ana"},
        "name": {"S": name},
        "phone": {"S": phone},
        "version": {"N": str(version)},
        "assignees": {"SS": ["ana"]},
    }


def _note(n: int, body: str) -> dict[str, Any]:
    return {"pk": {"S": f"CLIENT#{CID}"}, "sk": {"S": f"NOTE#{n:026d}"}, "kind": {"S": "note"}, "body": {"S": body}}


def _unique(phone: str, client_id: str) -> dict[str, Any]:
    return {
        "pk": {"S": f"BOOK#PRO#ana#PHONE#{phone}"},
        "sk": {"S": "UNIQUE"},
        "kind": {"S": "unique"},
        "client_id": {"S": client_id},
    }


@pytest.fixture
def ddb(aws: Template) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    for item in (_profile(3, "Ana López", "+14155550101"), _note(1, "first"), _note(2, "second")):
        client.put_item(TableName=TABLE, Item=item)
    client.put_item(TableName=TABLE, Item=_unique("+14155550101", CID))
    # The point-in-time copy, as `aws dynamodb restore-table-to-point-in-time` makes it.
    client.restore_table_to_point_in_time(SourceTableName=TABLE, TargetTableName=RESTORED, UseLatestRestorableTime=True)
    # Then the damage: a note deleted, the profile overwritten, its phone released and taken by another client.
    client.delete_item(TableName=TABLE, Key={"pk": {"S": f"CLIENT#{CID}"}, "sk": {"S": f"NOTE#{1:026d}"}})
    client.put_item(TableName=TABLE, Item=_profile(7, "garbled", "+14155550199"))
    client.put_item(TableName=TABLE, Item=_note(3, "written after the restore point"))
    return client


def _live(ddb: Any) -> dict[str, dict[str, Any]]:
    items = ddb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CLIENT#{CID}"}},
        ConsistentRead=True,  # the test's own read of what it (or the tool) just wrote
    )["Items"]
    return {i["sk"]["S"]: i for i in items}


def test_restores_the_collection_with_a_newer_profile_version(ddb: Any) -> None:
    report = restore_client(ddb, RESTORED, TABLE, CID)
    live = _live(ddb)
    assert live[f"NOTE#{1:026d}"]["body"]["S"] == "first"
    assert live["PROFILE"]["name"]["S"] == "Ana López"
    assert live["PROFILE"]["phone"]["S"] == "+14155550101"
    # Above the live version, so the stream fans the restored profile out to every view.
    assert live["PROFILE"]["version"]["N"] == "8"
    assert report["profile_version"] == 8
    assert f"NOTE#{3:026d}" in live, "items written after the restore point are kept by default"
    assert report["unique_conflicts"] == []


def test_replace_drops_later_items_and_dry_run_changes_nothing(ddb: Any) -> None:
    before = _live(ddb)
    dry = restore_client(ddb, RESTORED, TABLE, CID, dry_run=True, replace=True)
    assert _live(ddb) == before
    assert dry["deleted"] == [f"NOTE#{3:026d}"]
    assert set(dry["put"]) >= {"PROFILE", f"NOTE#{1:026d}"}
    restore_client(ddb, RESTORED, TABLE, CID, replace=True)
    assert set(_live(ddb)) == {"PROFILE", f"NOTE#{1:026d}", f"NOTE#{2:026d}"}


def test_a_phone_now_held_by_another_client_is_reported_not_stolen(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=_unique("+14155550101", OTHER))
    report = restore_client(ddb, RESTORED, TABLE, CID)
    assert report["unique_conflicts"] == [{"field": "phone", "client_id": OTHER}]
    item = ddb.get_item(
        TableName=TABLE,
        Key={"pk": {"S": "BOOK#PRO#ana#PHONE#+14155550101"}, "sk": {"S": "UNIQUE"}},
        ConsistentRead=True,
    )
    assert item["Item"]["client_id"]["S"] == OTHER


def test_a_released_phone_is_claimed_again(ddb: Any) -> None:
    ddb.delete_item(TableName=TABLE, Key={"pk": {"S": "BOOK#PRO#ana#PHONE#+14155550101"}, "sk": {"S": "UNIQUE"}})
    restore_client(ddb, RESTORED, TABLE, CID)
    item = ddb.get_item(
        TableName=TABLE,
        Key={"pk": {"S": "BOOK#PRO#ana#PHONE#+14155550101"}, "sk": {"S": "UNIQUE"}},
        ConsistentRead=True,
    )
    assert item["Item"]["client_id"]["S"] == CID
