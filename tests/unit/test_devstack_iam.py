"""The local stack holds each function to the actions its template policy allows (devstack/iam.py):
a call the policy lacks fails with AWS's AccessDenied, an allowed one passes, and calls the stack
or a test makes itself are never checked."""

from __future__ import annotations

import copy
import json
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack import iam
from devstack.functions import FunctionPool, LambdaContext, load_handler
from devstack.gateway import http_event
from devstack.template import LOCAL_REGION, FunctionSpec, Template

# A function that makes the one call its event names, in the handler or in a thread pool.
PROBE = """
import boto3
from concurrent.futures import ThreadPoolExecutor

_pool = ThreadPoolExecutor(2)


def _call(service, operation, params):
    client = boto3.client(service, region_name="us-east-1")
    return getattr(client, operation)(**params)


def handler(event, context):
    args = (event["service"], event["operation"], event.get("params", {}))
    if event.get("threaded"):
        return _pool.submit(_call, *args).result()
    if event.get("presign"):
        return boto3.client("s3", region_name="us-east-1").generate_presigned_url("get_object", Params=args[2])
    _call(*args)
    return "ok"
"""


def _probe(tmp_path: Path, *policies: Any, events: dict[str, Any] | None = None) -> FunctionSpec:
    (tmp_path / "app.py").write_text(textwrap.dedent(PROBE))
    return FunctionSpec(
        logical_id="ProbeFunction",
        code_uri=tmp_path,
        handler="app.handler",
        properties={"Policies": list(policies)},
        events=events or {},
    )


def _allow(*actions: str) -> dict[str, Any]:
    return {"Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}


def test_a_call_the_policy_lacks_is_access_denied_and_an_allowed_one_passes(aws: Template, tmp_path: Path) -> None:
    table = aws.physical["RecordsTable"]
    spec = _probe(tmp_path, _allow("dynamodb:GetItem", "dynamodb:Query"))
    pool = FunctionPool(spec)
    key = {"pk": {"S": "X"}, "sk": {"S": "Y"}}

    assert pool.invoke({"service": "dynamodb", "operation": "get_item", "params": {"TableName": table, "Key": key}})

    put = {"TableName": table, "Item": key}
    with pytest.raises(ClientError) as denied:
        pool.invoke({"service": "dynamodb", "operation": "put_item", "params": put})
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert spec.logical_id in error["Message"]
    assert "dynamodb:PutItem" in error["Message"]
    assert iam.take_denials() == [iam.Denial(spec.logical_id, "dynamodb:PutItem", "PutItem")]
    # Nothing was written; and the test itself (not a function) is never checked.
    ddb = boto3.client("dynamodb", region_name=LOCAL_REGION)
    assert "Item" not in ddb.get_item(TableName=table, Key=key)
    ddb.put_item(**put)


def test_calls_from_the_functions_thread_pool_are_checked_and_the_pool_is_not_tainted(
    aws: Template, tmp_path: Path
) -> None:
    table = aws.physical["RecordsTable"]
    handler = load_handler(_probe(tmp_path, _allow("dynamodb:GetItem")))
    key = {"pk": {"S": "X"}, "sk": {"S": "Y"}}
    get = {"service": "dynamodb", "operation": "get_item", "params": {"TableName": table, "Key": key}}
    put = {"service": "dynamodb", "operation": "put_item", "params": {"TableName": table, "Item": key}}

    assert handler({**get, "threaded": True}, LambdaContext("ProbeFunction"))
    with pytest.raises(ClientError, match="AccessDenied"):
        handler({**put, "threaded": True}, LambdaContext("ProbeFunction"))
    assert [d.action for d in iam.take_denials()] == ["dynamodb:PutItem"]

    # The same pool, used outside any function (as the stack or a test would), is not the function's.
    with ThreadPoolExecutor(2) as pool:
        pool.submit(lambda: boto3.client("dynamodb", region_name=LOCAL_REGION).put_item(**put["params"])).result()


def test_a_sam_policy_template_allows_its_actions(aws: Template, tmp_path: Path) -> None:
    url = aws.physical["JobsQueue"]
    spec = _probe(tmp_path, {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["JobsQueue", "QueueName"]}}})
    handler = load_handler(spec)
    send = {"QueueUrl": url, "MessageBody": "{}"}
    batch = {"QueueUrl": url, "Entries": [{"Id": "1", "MessageBody": "{}"}]}
    assert handler({"service": "sqs", "operation": "send_message", "params": send}, None) == "ok"
    assert handler({"service": "sqs", "operation": "send_message_batch", "params": batch}, None) == "ok"
    with pytest.raises(ClientError) as denied:
        handler({"service": "sqs", "operation": "receive_message", "params": {"QueueUrl": url}}, None)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert [d.action for d in iam.take_denials()] == ["sqs:ReceiveMessage"]


def test_s3_calls_are_checked_by_their_iam_actions_and_presigning_is_not_a_call(aws: Template, tmp_path: Path) -> None:
    bucket = aws.physical["UploadsBucket"]
    boto3.client("s3", region_name=LOCAL_REGION).put_object(Bucket=bucket, Key="clients/a", Body=b"x")
    handler = load_handler(_probe(tmp_path, _allow("s3:GetObject")))
    head = {"service": "s3", "operation": "head_object", "params": {"Bucket": bucket, "Key": "clients/a"}}
    assert handler(head, None) == "ok"  # HeadObject is s3:GetObject
    listing = {"service": "s3", "operation": "list_objects_v2", "params": {"Bucket": bucket}}
    with pytest.raises(ClientError, match=r"s3:ListBucket"):
        handler(listing, None)
    assert [d.action for d in iam.take_denials()] == ["s3:ListBucket"]

    unsigned = load_handler(_probe(tmp_path, _allow("dynamodb:GetItem")))
    url = unsigned({**head, "presign": True}, None)
    assert url.startswith("https://")
    assert iam.take_denials() == []


@pytest.mark.parametrize(
    ("operation", "params", "actions"),
    [
        ("GetObject", {"Key": "k"}, ["s3:GetObject"]),
        ("GetObject", {"Key": "k", "VersionId": "v"}, ["s3:GetObjectVersion"]),
        ("HeadObject", {"Key": "k"}, ["s3:GetObject"]),
        ("HeadObject", {"Key": "k", "VersionId": "v"}, ["s3:GetObjectVersion"]),
        ("PutObject", {"Key": "k"}, ["s3:PutObject"]),
        ("PutObject", {"Key": "k", "Tagging": "a=b"}, ["s3:PutObject", "s3:PutObjectTagging"]),
        ("DeleteObject", {"Key": "k"}, ["s3:DeleteObject"]),
        ("DeleteObject", {"Key": "k", "VersionId": "v"}, ["s3:DeleteObjectVersion"]),
        ("DeleteObjects", {"Delete": {"Objects": [{"Key": "a"}]}}, ["s3:DeleteObject"]),
        (
            "DeleteObjects",
            {"Delete": {"Objects": [{"Key": "a"}, {"Key": "b", "VersionId": "v"}]}},
            ["s3:DeleteObject", "s3:DeleteObjectVersion"],
        ),
        ("ListObjectsV2", {}, ["s3:ListBucket"]),
        ("ListObjects", {}, ["s3:ListBucket"]),
        ("ListObjectVersions", {}, ["s3:ListBucketVersions"]),
        ("HeadBucket", {}, ["s3:ListBucket"]),
        ("CopyObject", {"CopySource": {"Bucket": "b", "Key": "k"}}, ["s3:GetObject", "s3:PutObject"]),
        (
            "CopyObject",
            {"CopySource": {"Bucket": "b", "Key": "k", "VersionId": "v"}},
            ["s3:GetObjectVersion", "s3:PutObject"],
        ),
        ("CopyObject", {"CopySource": "b/k?versionId=v"}, ["s3:GetObjectVersion", "s3:PutObject"]),
        ("CreateMultipartUpload", {}, ["s3:PutObject"]),
        ("UploadPart", {}, ["s3:PutObject"]),
        ("CompleteMultipartUpload", {}, ["s3:PutObject"]),
        ("AbortMultipartUpload", {}, ["s3:AbortMultipartUpload"]),
        ("ListParts", {}, ["s3:ListMultipartUploadParts"]),
    ],
)
def test_s3_operations_map_to_their_iam_actions(operation: str, params: dict[str, Any], actions: list[str]) -> None:
    assert iam.iam_actions("s3", operation, params) == actions


@pytest.mark.parametrize(
    ("service", "operation", "params", "actions"),
    [
        ("dynamodb", "PutItem", {}, ["dynamodb:PutItem"]),
        ("dynamodb", "BatchWriteItem", {}, ["dynamodb:BatchWriteItem"]),
        (
            "dynamodb",
            "TransactWriteItems",
            {"TransactItems": [{"Put": {}}, {"Update": {}}, {"ConditionCheck": {}}, {"Put": {}}]},
            ["dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        ),
        ("dynamodb", "TransactGetItems", {}, ["dynamodb:GetItem"]),
        ("dynamodb", "ExecuteStatement", {"Statement": "select * from t"}, ["dynamodb:PartiQLSelect"]),
        ("dynamodbstreams", "GetRecords", {}, ["dynamodb:GetRecords"]),
        ("sqs", "SendMessage", {}, ["sqs:SendMessage"]),
        ("sqs", "SendMessageBatch", {}, ["sqs:SendMessage"]),
        ("sqs", "DeleteMessageBatch", {}, ["sqs:DeleteMessage"]),
    ],
)
def test_other_operations_map_to_their_iam_actions(
    service: str, operation: str, params: dict[str, Any], actions: list[str]
) -> None:
    assert iam.iam_actions(service, operation, params) == actions


def test_wildcards_deny_and_not_action_match_as_iam_does(tmp_path: Path) -> None:
    spec = _probe(
        tmp_path,
        _allow("sqs:SendMessage*", "s3:Get*"),
        {"Statement": [{"Effect": "Deny", "Action": "s3:GetObjectVersion", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "NotAction": ["dynamodb:*", "s3:*", "sqs:*"], "Resource": "*"}]},
    )
    policy = iam.build_policy(spec)
    assert policy.allows("sqs:SendMessage")
    assert policy.allows("SQS:sendmessage")  # actions are case-insensitive
    assert policy.allows("s3:GetObject")
    assert not policy.allows("s3:GetObjectVersion")  # an explicit Deny wins
    assert not policy.allows("sqs:ReceiveMessage")
    assert not policy.allows("dynamodb:Scan")
    assert policy.allows("sns:Publish")  # NotAction
    assert policy.allows("logs:PutLogEvents")  # the basic execution role SAM always attaches


def test_sam_attaches_the_event_sources_policies_and_on_failure_destination(tmp_path: Path) -> None:
    stream = Template().functions()["StreamFunction"]
    policy = iam.build_policy(stream)
    assert policy.allows("dynamodb:GetRecords")  # AWSLambdaDynamoDBExecutionRole
    assert policy.allows("sqs:SendMessage")
    jobs = iam.build_policy(Template().functions()["JobsFunction"])
    assert jobs.allows("sqs:DeleteMessage")  # AWSLambdaSQSQueueExecutionRole
    assert not iam.build_policy(Template().functions()["NotesFunction"]).allows("sqs:DeleteMessage")


def test_every_function_in_the_template_has_a_policy_the_check_can_read() -> None:
    for spec in Template().functions().values():
        policy = iam.build_policy(spec)
        assert not policy.unchecked, spec.logical_id
        assert policy.allows("dynamodb:GetItem"), spec.logical_id
        assert not policy.allows("dynamodb:Scan"), spec.logical_id


def test_a_policy_the_check_cannot_read_is_an_error_not_a_silent_allow(tmp_path: Path) -> None:
    with pytest.raises(iam.PolicyError, match="NoSuchTemplatePolicy"):
        iam.build_policy(_probe(tmp_path, {"NoSuchTemplatePolicy": {"X": "y"}}))
    with pytest.raises(iam.PolicyError, match="AmazonS3FullAccess"):
        iam.build_policy(_probe(tmp_path, "AmazonS3FullAccess"))


def test_a_template_function_missing_an_action_is_denied_through_the_local_stack(aws: Template) -> None:
    """The real ClientsFunction with dynamodb:GetItem taken out of its policy: GET /me fails, naming it."""
    spec = copy.deepcopy(aws.functions()["ClientsFunction"])
    for policy in spec.properties["Policies"]:
        for statement in policy.get("Statement", []):
            statement["Action"] = [a for a in statement["Action"] if a != "dynamodb:GetItem"]
    (route,) = [r for r in aws.http_routes() if r.route_key == "GET /me"]
    event = http_event(route, "GET", "/me", "", {}, b"", {"sub": "ana"}, {})
    try:
        result = FunctionPool(spec).invoke(event)
    except ClientError:
        result = {"statusCode": 500}
    assert result["statusCode"] == 500, json.dumps(result)
    denials = iam.take_denials()
    assert denials
    assert {(d.function, d.action) for d in denials} == {("ClientsFunction", "dynamodb:GetItem")}
    # The function as the template declares it answers.
    assert FunctionPool(aws.functions()["ClientsFunction"]).invoke(event)["statusCode"] == 200
