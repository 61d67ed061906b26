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
