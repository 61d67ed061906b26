"""A local stack started with DEVSTACK_FAULTS answers its faults on GET /__devstack/faults, counts those it
injected, and its DynamoDB behaves as AWS's: an index read right after a write misses it.

The seed the stack drew with is printed: DEVSTACK_FAULTS=<same>,seed=N replays a failure."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.process import StackProcess, stack_process

FAULTS = "gsi_lag_ms=3000,unprocessed=1,seed=4242"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    home: Path = tmp_path_factory.mktemp("faulty")
    with stack_process(home, extra_env={"DEVSTACK_FAULTS": FAULTS}) as running:
        print(f"faults: DEVSTACK_FAULTS={FAULTS}")
        yield running


def _ddb(running: StackProcess) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=running.emulator,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def _table_with(ddb: Any, index: str) -> str:
    for name in ddb.list_tables()["TableNames"]:
        indexes = ddb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes") or []
        if any(i["IndexName"] == index for i in indexes):
            return str(name)
    raise AssertionError(f"no table has {index}")


def _faults(running: StackProcess) -> dict[str, Any]:
    resp = requests.get(f"{running.url}/__devstack/faults", timeout=10)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_the_stack_answers_the_faults_in_force_and_make_dev_printed_them(faulty: StackProcess) -> None:
    doc = _faults(faulty)
    assert doc["seed"] == 4242
    assert doc["settings"]["gsi_lag_ms"] == 3000
    assert doc["settings"]["unprocessed"] == 1
    assert doc["settings"]["conflict"] == 0
    assert "Faults    gsi_lag_ms=3000,unprocessed=1  seed=4242" in faulty.log_path.read_text()


def test_an_index_read_right_after_a_write_misses_it_and_the_stack_counts_it(faulty: StackProcess) -> None:
    """GSI reads are eventually consistent (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads)."""
    ddb = _ddb(faulty)
    table = _table_with(ddb, "gsi1")
    before = _faults(faulty)["injected"].get("gsi_lag_ms", 0)
    gpk = f"faults-{time.monotonic_ns()}"
    ddb.put_item(
        TableName=table,
        Item={"pk": {"S": gpk}, "sk": {"S": "x"}, "gsi1pk": {"S": gpk}, "gsi1sk": {"S": "x"}},
    )
    query = {
        "TableName": table,
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :g",
        "ExpressionAttributeValues": {":g": {"S": gpk}},
    }
    assert ddb.query(**query)["Items"] == [], "the index showed a write before its lag"
    got = ddb.get_item(TableName=table, Key={"pk": {"S": gpk}, "sk": {"S": "x"}}, ConsistentRead=True)
    assert "Item" in got
    assert _faults(faulty)["injected"].get("gsi_lag_ms", 0) > before
    deadline = time.monotonic() + 10
    while not ddb.query(**query)["Items"]:
        assert time.monotonic() < deadline, "the write never reached the index"
        time.sleep(0.2)


def test_a_batch_write_answers_unprocessed_items_and_the_stack_counts_them(faulty: StackProcess) -> None:
    """BatchWriteItem returns what it did not process in UnprocessedItems
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html)."""
    ddb = _ddb(faulty)
    table = _table_with(ddb, "gsi1")
    before = _faults(faulty)["injected"].get("unprocessed", 0)
    requests_ = [{"PutRequest": {"Item": {"pk": {"S": f"batch-{i}"}, "sk": {"S": "x"}}}} for i in range(6)]
    resp = ddb.batch_write_item(RequestItems={table: requests_})
    assert 0 < len(resp["UnprocessedItems"][table]) < 6
    assert _faults(faulty)["injected"]["unprocessed"] == before + 1


def test_an_item_past_its_ttl_on_the_stack_clock_is_deleted_by_the_service(faulty: StackProcess) -> None:
    """TTL deletes expired items, with a REMOVE record whose userIdentity is the DynamoDB service's
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html); here the expiry
    is reached by moving the stack's clock (POST /__devstack/clock)."""
    ddb = _ddb(faulty)
    table = _table_with(ddb, "gsi1")
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    now = requests.get(f"{faulty.url}/__devstack/clock", timeout=10).json()["now"]
    pk = f"ttl-{time.monotonic_ns()}"
    key = {"pk": {"S": pk}, "sk": {"S": "x"}}
    ddb.put_item(TableName=table, Item={**key, ttl["AttributeName"]: {"N": str(int(now) + 3600)}})
    time.sleep(1.5)  # a sweep or more: not expired yet
    assert "Item" in ddb.get_item(TableName=table, Key=key, ConsistentRead=True)
    resp = requests.post(f"{faulty.url}/__devstack/clock", json={"advance_s": 7200}, timeout=10)
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 10
    while "Item" in ddb.get_item(TableName=table, Key=key, ConsistentRead=True):
        assert time.monotonic() < deadline, "the expired item was never deleted"
        time.sleep(0.2)

    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url=faulty.emulator,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    removes = []
    while it:
        page = streams.get_records(ShardIterator=it, Limit=1000)
        removes += [r for r in page["Records"] if r["eventName"] == "REMOVE" and r["dynamodb"]["Keys"]["pk"]["S"] == pk]
        if not page["Records"]:
            break
        it = page.get("NextShardIterator")
    assert len(removes) == 1
    assert removes[0]["userIdentity"] == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}


def test_a_test_can_change_the_faults_of_a_running_stack(faulty: StackProcess) -> None:
    table = _table_with(_ddb(faulty), "gsi1")
    resp = requests.post(f"{faulty.url}/__devstack/faults", json={"faults": "throttle=1,seed=5"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["seed"] == 5
    assert resp.json()["injected"] == {}
    try:
        with pytest.raises(ClientError) as err:
            _ddb(faulty).get_item(TableName=table, Key={"pk": {"S": "x"}, "sk": {"S": "x"}})
        assert err.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert _faults(faulty)["injected"]["throttle"] >= 1
        bad = requests.post(f"{faulty.url}/__devstack/faults", json={"faults": "nope=1"}, timeout=10)
        assert bad.status_code == 400
        assert "unknown kind" in bad.json()["message"]
    finally:
        requests.post(f"{faulty.url}/__devstack/faults", json={"faults": FAULTS}, timeout=10)
