"""The embedded emulator's stream shows exactly the committed writes, even around a cancelled transaction
(moto alone loses every later record: see devstack/moto_patches.py)."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack.emulator import Emulator, free_port


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(free_port())
    emu.start()
    yield emu
    emu.stop()


def _records(streams: Any, iterator: str) -> tuple[list[str], str]:
    resp = streams.get_records(ShardIterator=iterator)
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in resp["Records"]], resp["NextShardIterator"]


def test_a_cancelled_transaction_leaves_no_record_and_loses_none_after(emulator: Emulator) -> None:
    ddb = emulator.client("dynamodb")
    desc = ddb.create_table(
        TableName="patched",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    streams = emulator.client("dynamodbstreams")
    arn = desc["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    ddb.put_item(TableName="patched", Item={"pk": {"S": "a"}})
    seen, iterator = _records(streams, iterator)
    assert seen == ["a"]
    with pytest.raises(ClientError):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "patched", "Item": {"pk": {"S": "phantom"}}}},
                {
                    "Put": {
                        "TableName": "patched",
                        "Item": {"pk": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    ddb.put_item(TableName="patched", Item={"pk": {"S": "c"}})
    seen, _ = _records(streams, iterator)
    assert seen == ["c"]
    assert boto3  # the emulator's clients are plain boto3 clients


def _table(ddb: Any, name: str) -> None:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def test_reads_of_missing_keys_during_transactions_never_fail(emulator: Emulator) -> None:
    """moto keeps items in a defaultdict: a GetItem of a missing key inserts an entry, and a transaction
    deep-copying the table at that moment failed with "dictionary changed size during iteration", an
    InternalServerError (a 500 to the app) seen under concurrent requests on the local stack."""
    import threading

    from devstack import faults

    faults.configure("off")
    try:
        ddb = emulator.client("dynamodb")
        _table(ddb, "readers")
        for i in range(0, 1500, 25):
            ddb.batch_write_item(
                RequestItems={
                    "readers": [
                        {"PutRequest": {"Item": {"pk": {"S": f"P{j}"}, "sk": {"S": "x" * 200}}}}
                        for j in range(i, i + 25)
                    ]
                }
            )
        errors: list[str] = []
        stop = threading.Event()

        def read() -> None:
            reader = boto3.client(
                "dynamodb",
                endpoint_url=emulator.endpoint,
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    reader.get_item(
                        TableName="readers", Key={"pk": {"S": f"missing-{threading.get_ident()}-{n}"}, "sk": {"S": "s"}}
                    )
                except ClientError as err:
                    errors.append(str(err))

        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(40):
                ddb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": "readers", "Item": {"pk": {"S": f"T{i}-{k}"}, "sk": {"S": "s"}}}}
                        for k in range(2)
                    ]
                )
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert errors == []
    finally:
        faults.configure()


def test_a_transaction_copies_each_table_once_and_never_its_stream(emulator: Emulator, monkeypatch: Any) -> None:
    """moto deep-copied the whole table, stream history included, once per action of a transaction: a
    100-action transaction on a grown table cost 100 copies of everything ever written (the local stack
    grew to 23 GB under a pro adding notes). Now one copy per table, none of the stream; a cancelled
    transaction still rolls back (test above)."""
    import copy

    from moto.dynamodb.models.table import StreamShard, Table

    from devstack import faults

    faults.configure("off")
    try:
        ddb = emulator.client("dynamodb")
        _table(ddb, "copies")
        for i in range(50):
            ddb.put_item(TableName="copies", Item={"pk": {"S": f"P{i}"}, "sk": {"S": "s"}})
        real = copy.deepcopy
        copied: list[str] = []

        def counting(obj: Any, memo: Any = None) -> Any:
            if isinstance(obj, (Table, StreamShard)):
                copied.append(type(obj).__name__)
            return real(obj, memo)

        monkeypatch.setattr(copy, "deepcopy", counting)
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "copies",
                        "Key": {"pk": {"S": f"P{i}"}, "sk": {"S": "s"}},
                        "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "1"}},
                    }
                }
                for i in range(40)
            ]
        )
        assert copied.count("Table") == 1
        monkeypatch.setattr(copy, "deepcopy", real)
        shard = next(t for name, t in _tables(emulator) if name == "copies").stream_shard
        assert copy.deepcopy(shard) is shard
        item = ddb.get_item(TableName="copies", Key={"pk": {"S": "P39"}, "sk": {"S": "s"}}, ConsistentRead=True)
        assert item["Item"]["n"] == {"N": "1"}
    finally:
        faults.configure()


def _tables(emulator: Emulator) -> list[tuple[str, Any]]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return list(dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables.items())
