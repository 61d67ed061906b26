"""The local stack's DynamoDB behaves as AWS documents, not as moto does (devstack/ddb_faults.py),
at the rates of DEVSTACK_FAULTS (devstack/faults.py). Each test cites the AWS page it follows.

Every test prints the seed its faults were drawn with: ``DEVSTACK_FAULTS=...,seed=N`` replays it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack import ddb_faults, faults
from devstack.emulator import Emulator, free_port
from devstack.template import LOCAL_REGION

TABLE = "faults"
SEED = 20261204


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(free_port())
    emu.start()
    ddb = emu.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gpk", "AttributeType": "S"},
            {"AttributeName": "gsk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gpk", "KeyType": "HASH"},
                    {"AttributeName": "gsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield emu
    emu.stop()


@pytest.fixture
def use_faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set DEVSTACK_FAULTS for the test (seeded, printed); everything is off again after it. A transaction
    stays "in flight" for 5 s here, so a slow machine cannot make a conflict test pass by luck."""
    monkeypatch.setattr(ddb_faults, "TX_WINDOW_S", 5.0)

    def set_faults(spec: str) -> None:
        faults.configure(spec, seed=SEED)
        print(f"faults: DEVSTACK_FAULTS={spec},seed={faults.seed()}")

    yield set_faults
    faults.configure("off")
    ddb_faults.reset()


@pytest.fixture
def ddb(emulator: Emulator) -> Any:
    """A client that does not retry, so each fault shows."""
    return boto3.client(
        "dynamodb",
        endpoint_url=emulator.endpoint,
        region_name=LOCAL_REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


_ids = iter(range(10**9))


def _pk() -> str:
    return f"p{next(_ids)}-{time.monotonic_ns()}"


def _item(pk: str, sk: str = "s", gpk: str | None = None, **extra: str) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": sk}}
    if gpk:
        item["gpk"] = {"S": gpk}
        item["gsk"] = {"S": sk}
    item.update({k: {"S": v} for k, v in extra.items()})
    return item


def _gsi(ddb: Any, gpk: str, **kwargs: Any) -> dict[str, Any]:
    return dict(
        ddb.query(
            TableName=TABLE,
            IndexName="gsi1",
            KeyConditionExpression="gpk = :g",
            ExpressionAttributeValues={":g": {"S": gpk}},
            **kwargs,
        )
    )


# --- configuration ---------------------------------------------------------------------------


def test_the_configuration_names_every_kind_and_a_seed_replays_the_draws() -> None:
    values, seed = faults.parse("gsi_lag_ms=800,read_lag_ms=50,conflict=0.05,throttle=0.02,seed=1234")
    assert seed == 1234
    assert (values["gsi_lag_ms"], values["conflict"], values["duplicate"]) == (800, 0.05, 0)
    assert set(values) >= {"gsi_lag_ms", "read_lag_ms", "conflict", "throttle", "unprocessed", "duplicate", "reorder"}
    assert all(v == 0 for v in faults.parse("off")[0].values())
    assert faults.parse("default")[0] == faults.parse(faults.DEFAULT_FAULTS)[0]
    assert faults.parse("default,throttle=0.5")[0]["throttle"] == 0.5
    with pytest.raises(ValueError, match="unknown kind"):
        faults.parse("throtle=0.1")
    with pytest.raises(ValueError, match="out of range"):
        faults.parse("conflict=2")
    try:
        faults.configure("duplicate=0.3,seed=7")
        first = [faults.hit("duplicate") for _ in range(200)]
        assert faults.counts() == {"duplicate": sum(first)}
        assert 20 < sum(first) < 100
        faults.configure("duplicate=0.3,reorder=0.5,seed=7")
        for _ in range(50):
            faults.hit("reorder")  # another kind's draws...
        assert [faults.hit("duplicate") for _ in range(200)] == first  # ...do not move this one's
        assert faults.report()["seed"] == 7
        faults.reset_counts()
        assert faults.counts() == {}
    finally:
        faults.configure("off")


def test_unset_means_the_effective_default_which_is_off_for_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVSTACK_FAULTS", raising=False)
    try:
        assert faults.configure() == faults.parse(faults.EFFECTIVE_DEFAULT)[0]
        monkeypatch.setenv("DEVSTACK_FAULTS", "default")
        assert faults.configure()["unprocessed"] == faults.parse(faults.DEFAULT_FAULTS)[0]["unprocessed"] > 0
    finally:
        faults.configure("off")


# --- read consistency ------------------------------------------------------------------------


def test_an_index_read_right_after_a_write_misses_it(ddb: Any, use_faults: Callable[[str], None]) -> None:
    """GSI reads are eventually consistent: a write shows in the index after a lag.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads
    (and HowItWorks.ReadConsistency.html)."""
    use_faults("gsi_lag_ms=2000")
    gpk = _pk()
    ddb.put_item(TableName=TABLE, Item=_item(_pk(), gpk=gpk, v="1"))
    assert _gsi(ddb, gpk)["Items"] == [], "the index showed a write before its lag"
    assert faults.counts().get("gsi_lag_ms", 0) >= 1
    time.sleep(2.05)
    assert len(_gsi(ddb, gpk)["Items"]) == 1, "the write never reached the index"


def test_an_index_read_answers_the_old_image_and_pages_over_the_past_state(
    ddb: Any, use_faults: Callable[[str], None]
) -> None:
    """An index answers from a recent past state: an update shows its old values, a delete still
    shows the item, and Limit / ExclusiveStartKey / Select COUNT page over that one state.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html"""
    gpk = _pk()
    pks = [_pk() for _ in range(4)]
    for i, pk in enumerate(pks):  # written with no lag: in the index at once
        ddb.put_item(TableName=TABLE, Item=_item(pk, sk=f"s{i}", gpk=gpk, v="old"))
    use_faults("gsi_lag_ms=2000")
    ddb.put_item(TableName=TABLE, Item=_item(pks[0], sk="s0", gpk=gpk, v="new"))
    ddb.delete_item(TableName=TABLE, Key={"pk": {"S": pks[1]}, "sk": {"S": "s1"}})
    ddb.put_item(TableName=TABLE, Item=_item(_pk(), sk="s9", gpk=gpk, v="new"))
    ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": pks[2]}, "sk": {"S": "s2"}},
        UpdateExpression="REMOVE gpk",  # leaves the index
    )

    seen, start = [], None
    while True:
        page = _gsi(ddb, gpk, Limit=3, **({"ExclusiveStartKey": start} if start else {}))
        seen += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert [(i["sk"]["S"], i["v"]["S"]) for i in seen] == [("s0", "old"), ("s1", "old"), ("s2", "old"), ("s3", "old")]
    assert _gsi(ddb, gpk, Select="COUNT")["Count"] == 4
    base = ddb.get_item(TableName=TABLE, Key={"pk": {"S": pks[0]}, "sk": {"S": "s0"}}, ConsistentRead=True)
    assert base["Item"]["v"]["S"] == "new", "a strongly consistent read sees the write at once"

    time.sleep(2.05)
    now = _gsi(ddb, gpk)["Items"]
    assert sorted((i["sk"]["S"], i["v"]["S"]) for i in now) == [("s0", "new"), ("s3", "old"), ("s9", "new")]


def test_a_consistent_read_on_a_global_index_is_refused(ddb: Any) -> None:
    """ConsistentRead is not supported on global secondary indexes: ValidationException.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html#DDB-Query-request-ConsistentRead"""
    with pytest.raises(ClientError) as err:
        _gsi(ddb, "x", ConsistentRead=True)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "Consistent reads are not supported on global secondary indexes" in err.value.response["Error"]["Message"]


def test_an_eventually_consistent_base_read_may_miss_a_write_a_consistent_one_never(
    ddb: Any, use_faults: Callable[[str], None]
) -> None:
    """Eventually consistent reads might not reflect a recently completed write; strongly consistent
    reads (ConsistentRead=true) return the most up-to-date data.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html"""
    use_faults("read_lag_ms=2000")
    pk = _pk()
    key = {"pk": {"S": pk}, "sk": {"S": "s"}}
    ddb.put_item(TableName=TABLE, Item=_item(pk))
    assert "Item" not in ddb.get_item(TableName=TABLE, Key=key)
    assert (
        ddb.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}})[
            "Items"
        ]
        == []
    )
    batch = ddb.batch_get_item(RequestItems={TABLE: {"Keys": [key]}})
    assert batch["Responses"][TABLE] == []
    assert ddb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]["pk"]["S"] == pk
    assert ddb.batch_get_item(RequestItems={TABLE: {"Keys": [key], "ConsistentRead": True}})["Responses"][TABLE]
    assert faults.counts().get("read_lag_ms", 0) >= 3
    time.sleep(2.05)
    assert ddb.get_item(TableName=TABLE, Key=key)["Item"]["pk"]["S"] == pk


def test_with_faults_off_every_read_sees_every_write(ddb: Any, use_faults: Callable[[str], None]) -> None:
    use_faults("off")
    gpk = _pk()
    ddb.put_item(TableName=TABLE, Item=_item(_pk(), gpk=gpk))
    assert len(_gsi(ddb, gpk)["Items"]) == 1
    assert faults.counts() == {}


# --- transaction conflicts -------------------------------------------------------------------


def _tx_put(ddb: Any, *items: dict[str, Any]) -> None:
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": i}} for i in items])


def test_a_single_write_to_an_item_of_an_ongoing_transaction_fails_with_transaction_conflict(
    ddb: Any, use_faults: Callable[[str], None]
) -> None:
    """A PutItem, UpdateItem or DeleteItem on an item of an ongoing TransactWriteItems is rejected with
    TransactionConflictException. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
    ("Transaction conflict handling in DynamoDB")."""
    use_faults("conflict=1")
    pk = _pk()
    key = {"pk": {"S": pk}, "sk": {"S": "s"}}
    _tx_put(ddb, _item(pk, v="tx"))
    for call in (
        lambda: ddb.put_item(TableName=TABLE, Item=_item(pk, v="single")),
        lambda: ddb.update_item(
            TableName=TABLE, Key=key, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"S": "u"}}
        ),
        lambda: ddb.delete_item(TableName=TABLE, Key=key),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "TransactionConflictException"
        assert err.value.response["Error"]["Message"] == "Transaction is ongoing for the item"
    assert ddb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]["v"]["S"] == "tx"
    assert faults.counts()["conflict"] == 3
    ddb.put_item(TableName=TABLE, Item=_item(_pk(), v="other item"))  # another item: no conflict
    ddb_faults.TX_WINDOW_S = 0.2
    other = _pk()
    _tx_put(ddb, _item(other, v="tx"))
    time.sleep(0.25)
    ddb.put_item(TableName=TABLE, Item=_item(other, v="later"))  # that transaction is over


def test_an_overlapping_transaction_is_cancelled_with_transaction_conflict_and_writes_nothing(
    ddb: Any, use_faults: Callable[[str], None]
) -> None:
    """An item of a TransactWriteItems that is part of another ongoing one: the request fails with
    TransactionCanceledException, CancellationReasons TransactionConflict for that item, None for the others.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html"""
    use_faults("conflict=1")
    a, b = _pk(), _pk()
    _tx_put(ddb, _item(a, v="first"))
    with pytest.raises(ClientError) as err:
        _tx_put(ddb, _item(b, v="second"), _item(a, v="second"))
    resp = err.value.response
    assert resp["Error"]["Code"] == "TransactionCanceledException"
    assert resp["Error"]["Message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]"
    )
    assert resp["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
    ]
    assert "Item" not in ddb.get_item(TableName=TABLE, Key={"pk": {"S": b}, "sk": {"S": "s"}}, ConsistentRead=True)
    got = ddb.get_item(TableName=TABLE, Key={"pk": {"S": a}, "sk": {"S": "s"}}, ConsistentRead=True)
    assert got["Item"]["v"]["S"] == "first"


# --- throttling ------------------------------------------------------------------------------


def test_a_throttled_call_fails_with_provisioned_throughput_exceeded(
    ddb: Any, use_faults: Callable[[str], None]
) -> None:
    """On-demand tables throttle a hot key range with ProvisionedThroughputExceededException and its
    ThrottlingReasons. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TroubleshootingThrottling.html"""
    use_faults("throttle=1")
    pk = _pk()
    key = {"pk": {"S": pk}, "sk": {"S": "s"}}
    calls: list[Callable[[], Any]] = [
        lambda: ddb.put_item(TableName=TABLE, Item=_item(pk)),
        lambda: ddb.get_item(TableName=TABLE, Key=key),
        lambda: _gsi(ddb, "x"),
        lambda: ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": _item(pk)}}]}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    faults.configure("off")
    assert "Item" not in ddb.get_item(TableName=TABLE, Key=key, ConsistentRead=True), "a throttled write wrote"


def test_a_throttled_transaction_is_cancelled_with_a_throttling_error_reason(
    ddb: Any, use_faults: Callable[[str], None]
) -> None:
    """TransactWriteItems with insufficient capacity: TransactionCanceledException, a ThrottlingError reason.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html"""
    use_faults("throttle=1")
    a, b = _pk(), _pk()
    with pytest.raises(ClientError) as err:
        _tx_put(ddb, _item(a), _item(b))
    reasons = err.value.response["CancellationReasons"]
    assert err.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert sorted(r["Code"] for r in reasons) == ["None", "ThrottlingError"]
    faults.configure("off")
    for pk in (a, b):
        assert "Item" not in ddb.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "s"}})


def test_botocores_own_retries_absorb_throttling_but_not_conflicts(
    emulator: Emulator, use_faults: Callable[[str], None]
) -> None:
    """The SDKs retry ProvisionedThroughputExceededException themselves; TransactionConflictException is the
    caller's to retry. https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html"""
    use_faults("throttle=0.3")
    ddb = emulator.client("dynamodb")  # botocore's default retries
    for _ in range(20):
        ddb.put_item(TableName=TABLE, Item=_item(_pk()))
    assert faults.counts()["throttle"] > 0

    use_faults("conflict=1")
    pk = _pk()
    _tx_put(ddb, _item(pk))
    with pytest.raises(ClientError) as err:
        ddb.put_item(TableName=TABLE, Item=_item(pk))
    assert err.value.response["Error"]["Code"] == "TransactionConflictException"
    assert faults.counts() == {"conflict": 1}, "botocore retried a TransactionConflictException"


# --- unprocessed batch items -----------------------------------------------------------------


def test_a_batch_write_answers_part_of_its_items_as_unprocessed_and_writes_only_the_rest(
    ddb: Any, use_faults: Callable[[str], None]
) -> None:
    """BatchWriteItem as a whole is not atomic: the operations it could not process come back in
    UnprocessedItems. https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html"""
    use_faults("unprocessed=1")
    pks = [_pk() for _ in range(10)]
    resp = ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": _item(pk)}} for pk in pks]})
    left = [r["PutRequest"]["Item"]["pk"]["S"] for r in resp["UnprocessedItems"].get(TABLE, [])]
    assert 0 < len(left) < len(pks), left
    faults.configure("off")
    for pk in pks:
        found = "Item" in ddb.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "s"}}, ConsistentRead=True)
        assert found == (pk not in left)
    # Retrying what came back writes it.
    ddb.batch_write_item(RequestItems=resp["UnprocessedItems"])
    assert all(
        "Item" in ddb.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "s"}}, ConsistentRead=True)
        for pk in pks
    )


def test_a_batch_get_answers_part_of_its_keys_as_unprocessed(ddb: Any, use_faults: Callable[[str], None]) -> None:
    """BatchGetItem returns a partial result: the keys it did not process are in UnprocessedKeys, with the
    request's own projection. https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html"""
    pks = [_pk() for _ in range(8)]
    for pk in pks:
        ddb.put_item(TableName=TABLE, Item=_item(pk, v="x"))
    use_faults("unprocessed=1")
    keys = [{"pk": {"S": pk}, "sk": {"S": "s"}} for pk in pks]
    resp = ddb.batch_get_item(RequestItems={TABLE: {"Keys": keys, "ProjectionExpression": "pk, v"}})
    got = [i["pk"]["S"] for i in resp["Responses"][TABLE]]
    left = resp["UnprocessedKeys"][TABLE]
    assert left["ProjectionExpression"] == "pk, v"
    left_pks = [k["pk"]["S"] for k in left["Keys"]]
    assert 0 < len(left_pks) < len(pks)
    assert sorted(got + left_pks) == sorted(pks)
    assert faults.counts()["unprocessed"] == 1


# --- time to live ----------------------------------------------------------------------------


def test_the_ttl_sweeper_deletes_expired_items_with_a_service_remove_record(emulator: Emulator) -> None:
    """TTL deletes items whose TTL attribute (epoch seconds, a Number) is past, ignores other types and
    times more than five years past, and the delete is a REMOVE stream record whose userIdentity is
    {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"} (GetRecords' Identity shape).
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html,
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Record.html"""
    from devstack import ttl

    ddb = emulator.client("dynamodb")
    desc = ddb.create_table(
        TableName="ttl",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    ddb.update_time_to_live(TableName="ttl", TimeToLiveSpecification={"AttributeName": "exp", "Enabled": True})
    now = 2_000_000_000.0
    items = {
        "expired": {"N": str(int(now) - 10)},
        "due-now": {"N": str(int(now))},
        "future": {"N": str(int(now) + 3600)},
        "a-string": {"S": str(int(now) - 10)},
        "six-years-ago": {"N": str(int(now) - 6 * 365 * 24 * 3600)},
    }
    for pk, exp in items.items():
        ddb.put_item(TableName="ttl", Item={"pk": {"S": pk}, "exp": exp})
    ddb.put_item(TableName="ttl", Item={"pk": {"S": "no-ttl"}})

    assert ttl.sweep(now) == 2
    left = sorted(i["pk"]["S"] for i in ddb.scan(TableName="ttl", ConsistentRead=True)["Items"])
    assert left == ["a-string", "future", "no-ttl", "six-years-ago"]
    assert ttl.sweep(now + 3600) == 1  # the stack's clock moved on: the next one expires
    assert "Item" not in ddb.get_item(TableName="ttl", Key={"pk": {"S": "future"}}, ConsistentRead=True)

    streams = emulator.client("dynamodbstreams")
    arn = desc["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=it)["Records"]
    removes = [r for r in records if r["eventName"] == "REMOVE"]
    assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in removes) == ["due-now", "expired", "future"]
    assert all(r["userIdentity"] == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"} for r in removes)
    assert all("userIdentity" not in r for r in records if r["eventName"] == "INSERT")


def test_the_ttl_sweeper_keeps_an_item_a_write_extended(emulator: Emulator) -> None:
    """TTL deletes only what is expired when it deletes it (a conditional delete), so a write that moved the
    expiry on wins. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html"""
    from devstack import ttl

    ddb = emulator.client("dynamodb")
    ddb.create_table(
        TableName="ttl2",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName="ttl2", TimeToLiveSpecification={"AttributeName": "exp", "Enabled": True})
    ddb.put_item(TableName="ttl2", Item={"pk": {"S": "a"}, "exp": {"N": "100"}})
    from moto.dynamodb.models import DynamoDBBackend

    real = DynamoDBBackend.delete_item
    extended: list[bool] = []

    def racing(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        """Between the sweeper's scan and its delete, a write moves the expiry on (in-process: the sweeper
        holds the emulator's write lock here, which an HTTP call would wait for)."""
        if table_name == "ttl2" and not extended:
            extended.append(True)
            self.put_item("ttl2", {"pk": {"S": "a"}, "exp": {"N": "999999"}})
        return real(self, table_name, *args, **kwargs)

    DynamoDBBackend.delete_item = racing  # type: ignore[method-assign]
    try:
        assert ttl.sweep(200.0) == 0
    finally:
        DynamoDBBackend.delete_item = real  # type: ignore[method-assign]
    assert extended
    assert ddb.get_item(TableName="ttl2", Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]["exp"]["N"] == "999999"
