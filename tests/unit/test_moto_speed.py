"""The benchmark's faster moto (bench/moto_speed.py) answers exactly as moto does, only sooner."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_queries_projections_and_a_cancelled_transaction_answer_the_same_with_the_speed_patch() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": f"{ROOT / 'layers/domain'}:{ROOT}"},
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["queries"] == 24
    assert result["pages"] > 24  # paging with ExclusiveStartKey was exercised
    assert result["same"] is True
