"""The benchmark's faster moto (bench/moto_speed.py) answers exactly as moto does, only sooner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from devstack.template import ROOT

SCRIPT = r"""
import json, random
import boto3
from moto import mock_aws

def run():
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    answers = []
    for kwargs in QUERIES:
        pages, start = [], None
        for _ in range(300):  # a wrong order can make paging loop: stop and differ instead
            extra = {"ExclusiveStartKey": start} if start else {}
            resp = ddb.query(TableName="t", **kwargs, **extra)
            pages.append(resp["Items"])
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        answers.append(pages)
    try:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "P1"}, "sk": {"S": "new"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "P0"}, "sk": {"S": "s000"}},
                        "UpdateExpression": "SET n = :n", "ConditionExpression": "attribute_not_exists(pk)",
                        "ExpressionAttributeValues": {":n": {"N": "1"}}}},
        ])
    except ddb.exceptions.TransactionCanceledException:
        answers.append("cancelled")
    answers.append(ddb.scan(TableName="t")["Items"])
    answers.append(ddb.get_item(TableName="t", Key={"pk": {"S": "P1"}, "sk": {"S": "s004"}})["Item"])
    keys = [{"pk": {"S": f"P{i % 3}"}, "sk": {"S": f"s{i:03d}"}} for i in range(0, 240, 7)]
    got = ddb.batch_get_item(RequestItems={"t": {"Keys": keys, "ProjectionExpression": "pk, sk, n"}})
    answers.append(sorted(got["Responses"]["t"], key=lambda item: item["sk"]["S"]))
    for projection in ("#k, #v, #m, absent", "#k, #m.a, f[0]", "#k, f"):  # top-level names; paths; a list
        got = ddb.batch_get_item(RequestItems={"t": {
            "Keys": keys, "ProjectionExpression": projection,
            "ExpressionAttributeNames": {n: a for n, a in (("#k", "pk"), ("#v", "n"), ("#m", "m")) if n in projection},
        }})
        answers.append(sorted(got["Responses"]["t"], key=lambda item: json.dumps(item, sort_keys=True)))
    got = ddb.query(TableName="t", KeyConditionExpression="pk = :v", ExpressionAttributeValues={":v": {"S": "P2"}},
                    ProjectionExpression="sk, m, n")
    answers.append(got["Items"])
    return answers

QUERIES = []
for index in (None, "gsi1"):
    for forward in (True, False):
        for limit in (1, 7, 50):
            for value in ("P0", "B1"):
                key = "gsi1pk" if index else "pk"
                q = {"KeyConditionExpression": f"{key} = :v", "ExpressionAttributeValues": {":v": {"S": value}},
                     "ScanIndexForward": forward, "Limit": limit}
                if index:
                    q["IndexName"] = index
                    q["KeyConditionExpression"] += " AND begins_with(gsi1sk, :p)"
                    q["ExpressionAttributeValues"][":p"] = {"S": "NAME#"}
                QUERIES.append(q)

def seeded():
    random.seed(7)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="t", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"}, "KeySchema": [
            {"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}]}],
    )
    for i in range(240):
        name = "".join(random.choice("abcé ZÅ") for _ in range(5))
        ddb.put_item(TableName="t", Item={
            "pk": {"S": f"P{i % 3}"}, "sk": {"S": f"s{i:03d}"},
            "gsi1pk": {"S": f"B{i % 2}"}, "gsi1sk": {"S": f"NAME#{name}"}, "n": {"N": f"{i}.50"},
            **({"m": {"M": {"a": {"S": name}, "b": {"NS": ["1", "2.0"]}}}, "f": {"L": [{"N": "1.0"}]}}
               if i % 2 else {}),
        })

with mock_aws():
    seeded()
    before = run()
with mock_aws():
    from bench import moto_speed
    moto_speed.apply()
    seeded()
    after = run()
pages = sum(len(a) for a in before[: len(QUERIES)])
print(json.dumps({"same": before == after, "queries": len(QUERIES), "pages": pages}))
"""


def _answers(script: str) -> dict[str, Any]:
    """The last line a script printed (JSON), run in a fresh interpreter: moto's patches are process-wide.

    With the local stack's faults off (``DEVSTACK_FAULTS=off``): this compares the emulator with itself, and a
    fault drawn in one run and not in the other (a throttle, a lagging read) is a difference of the dice, not of
    the speed patch."""
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'layers/domain'}:{ROOT}", "DEVSTACK_FAULTS": "off"},
    )
    answers: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return answers


def test_queries_projections_and_a_cancelled_transaction_answer_the_same_with_the_speed_patch() -> None:
    result = _answers(SCRIPT)
    assert result["queries"] == 24
    assert result["pages"] > 24  # paging with ExclusiveStartKey was exercised
    assert result["same"] is True


UPDATES = r"""
import json
import boto3
from moto import mock_aws

T = "t"
def run():
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(TableName=T, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
                     BillingMode="PAY_PER_REQUEST", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    out = []
    def call(name, **kw):
        try:
            r = getattr(ddb, name)(**kw)
            r.pop("ResponseMetadata", None)
            out.append([name, r])
        except Exception as e:  # noqa
            out.append([name, type(e).__name__, str(e), getattr(e, "response", {}).get("CancellationReasons")])
    base = {"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}, "l": {"L": [{"S": "x"}]}, "m": {"M": {"k": {"S": "v"}, "n": {"N": "2"}}},
            "ss": {"SS": ["a", "b"]}, "owner": {"S": "PRO#p"}, "version": {"N": "3"}}
    ups = [
        ("SET #owner = :owner, gsi1pk = :book, version = version + :one, updated_at = :now, brought_by = :pro ADD assignees :pros",
         {"#owner": "owner"}, {":owner": {"S": "S"}, ":book": {"S": "B"}, ":one": {"N": "1"}, ":now": {"S": "t"}, ":pro": {"S": "p"}, ":pros": {"SS": ["p"]}}),
        ("SET n = n + :one, l = list_append(l, :l), m.k = :v, m.#n = if_not_exists(m.#n, :one) REMOVE ss", {"#n": "n"},
         {":one": {"N": "1"}, ":l": {"L": [{"S": "y"}]}, ":v": {"S": "w"}}),
        ("ADD n :one, ss :s DELETE ss :d", None, {":one": {"N": "5"}, ":s": {"SS": ["c"]}, ":d": {"SS": ["a"]}}),
        ("SET a = :v, a = :w", None, {":v": {"S": "1"}, ":w": {"S": "2"}}),               # duplicate path
        ("SET #x = :v, #y = :w", {"#x": "q", "#y": "q"}, {":v": {"S": "1"}, ":w": {"S": "2"}}),  # dup via names
        ("SET #x = :v, #y = :w", {"#x": "q", "#y": "r"}, {":v": {"S": "1"}, ":w": {"S": "2"}}),  # same expr, ok
        ("SET #x = :v", {"#x": "sk"}, {":v": {"S": "1"}}),                                 # key update
        ("SET #x = :v", {"#x": "zz"}, {":v": {"S": "1"}}),                                 # same expr ok
        ("SET a = :v SET b = :v", None, {":v": {"S": "1"}}),                               # two SET clauses
        ("SET n = nope + :one", None, {":one": {"N": "1"}}),                               # missing attr
        ("SET n = n + :s", None, {":s": {"S": "x"}}),                                      # type mismatch
        ("SET m.k.z = :v", None, {":v": {"S": "1"}}),                                      # bad path
        ("REMOVE l[0], l[0]", None, None),
        ("SET e = :e", None, {":e": {"S": ""}}),
        ("SET x = :missing", None, {":v": {"S": "1"}}),
    ]
    conds = [None, "#owner = :owner", "version = :v3 AND attribute_not_exists(deleted_at)", "attribute_exists(nope)",
             "size(l) > :one", "begins_with(#owner, :pfx) OR contains(ss, :a)", "n IN (:one, :two)", "n BETWEEN :one AND :two"]
    cvals = {":owner": {"S": "PRO#p"}, ":v3": {"N": "3"}, ":one": {"N": "1"}, ":two": {"N": "2"}, ":pfx": {"S": "PRO"}, ":a": {"S": "a"}}
    i = 0
    for rep in range(1):
        for expr, names, values in ups:
            for cond in conds:
                i += 1
                key = {"pk": {"S": "a"}, "sk": {"S": f"{i % 7}"}}
                ddb.put_item(TableName=T, Item={**base, **key})
                kw = {"TableName": T, "Key": key, "UpdateExpression": expr}
                n = dict(names or {})
                v = dict(values or {})
                if cond:
                    kw["ConditionExpression"] = cond
                    if "#owner" in cond: n["#owner"] = "owner"
                    v.update({k: x for k, x in cvals.items() if k in cond})
                if n: kw["ExpressionAttributeNames"] = n
                if v: kw["ExpressionAttributeValues"] = v
                call("update_item", ReturnValues="ALL_NEW", **kw)
                tx = [{"Update": {k: x for k, x in kw.items()}},
                      {"Put": {"TableName": T, "Item": {"pk": {"S": "b"}, "sk": {"S": str(i)}, "owner": {"S": "x"}},
                               "ConditionExpression": "attribute_not_exists(pk)"}},
                      {"Delete": {"TableName": T, "Key": {"pk": {"S": "b"}, "sk": {"S": str(i - 1)}},
                                  "ConditionExpression": "#o = :o", "ExpressionAttributeNames": {"#o": "owner"},
                                  "ExpressionAttributeValues": {":o": {"S": "x" if i % 3 else "y"}}}}]
                ddb.put_item(TableName=T, Item={**base, **key})
                call("transact_write_items", TransactItems=tx)
    out.append(["scan", sorted(ddb.scan(TableName=T)["Items"], key=lambda x: (x["pk"]["S"], x["sk"]["S"]))])
    from moto.dynamodb.models import dynamodb_backends
    shard = dynamodb_backends["123456789012"]["us-east-1"].tables[T].stream_shard
    out.append(["stream", [(r.to_json()["eventName"], r.to_json()["dynamodb"].get("NewImage"), r.to_json()["dynamodb"].get("OldImage")) for r in shard.items]])
    return out


from devstack import moto_patches  # the local stack's moto (its stream survives a cancelled transaction)
moto_patches.apply()
with mock_aws():
    before = run()
with mock_aws():
    from bench import moto_speed
    moto_speed.apply()
    after = run()
answers = [a for a in before if a[0] in ("update_item", "transact_write_items")]
print(json.dumps({
    "same": json.dumps(before, sort_keys=True, default=str) == json.dumps(after, sort_keys=True, default=str),
    "calls": len(answers),
    "refused": sum(1 for a in answers if len(a) > 2),
}))
"""


def test_updates_conditions_and_transactions_answer_the_same_with_the_speed_patch() -> None:
    """Update expressions and conditions parsed once and validated without deep copies: every answer (errors
    and cancellation reasons included), the table and the stream come out as moto's own."""
    result = _answers(UPDATES)
    assert result["calls"] == 15 * 8 * 2
    assert 0 < result["refused"] < result["calls"]  # errors and cancellations were compared too
    assert result["same"] is True
