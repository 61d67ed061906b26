"""Guards on template.yaml: what a deployed stack must always hold."""

import json
import re
from typing import Any

import pytest

from devstack.template import Template
from devstack.tokens import LOCAL_ISSUER


@pytest.fixture(scope="module")
def template() -> Template:
    return Template()


def _http_api(template: Template) -> dict[str, Any]:
    (api,) = template.of_type("AWS::Serverless::HttpApi").values()
    return api["Properties"]  # type: ignore[no-any-return]


def test_every_route_has_the_jwt_authorizer(template: Template) -> None:
    api = _http_api(template)
    assert api["Auth"]["DefaultAuthorizer"] == "CognitoJwt"
    routes = 0
    for fn in template.functions().values():
        for event in fn.events.values():
            if event["Type"] == "HttpApi":
                routes += 1
                auth = event["Properties"].get("Auth", {})
                assert auth.get("Authorizer", "CognitoJwt") == "CognitoJwt", fn.logical_id
    assert routes > 0


def test_a_deployed_stack_never_trusts_the_local_signing_key(template: Template) -> None:
    jwt_config = _http_api(template)["Auth"]["Authorizers"]["CognitoJwt"]["JwtConfiguration"]
    condition, pool_issuer, custom = jwt_config["issuer"]["Fn::If"]
    assert condition == "UsePoolIssuer"
    assert pool_issuer["Fn::Sub"].startswith("https://cognito-idp.")
    assert custom == {"Ref": "JwtIssuer"}
    pattern = template.doc["Parameters"]["JwtIssuer"]["AllowedPattern"]
    assert not re.fullmatch(pattern, LOCAL_ISSUER), "the local issuer must not be a valid parameter value"
    assert re.fullmatch(pattern, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc")
    assert "local" not in json.dumps(jwt_config).lower()


def _statements(fn_props: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in fn_props.get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            out.extend(policy["Statement"])
    return out


def test_no_api_function_may_scan(template: Template) -> None:
    for fn in template.functions().values():
        actions = [
            a
            for s in _statements(fn.properties)
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        ]
        assert not any("Scan" in a or a in ("dynamodb:*", "*") for a in actions), fn.logical_id


def test_s3_rights_only_where_files_are_handled(template: Template) -> None:
    for fn in template.functions().values():
        actions = [
            a
            for s in _statements(fn.properties)
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        ]
        if fn.logical_id == "ClientsFunction":
            # the Client Log signs short-lived GET links of the client's files (their confirmed version): reading only
            assert [a for a in actions if a.startswith("s3:")] == ["s3:GetObject", "s3:GetObjectVersion"]
        elif fn.logical_id not in {"UploadsFunction", "JobsFunction"}:
            assert not any(a.startswith("s3:") for a in actions), fn.logical_id


def test_bucket_blocks_public_access_encrypts_and_requires_tls(template: Template) -> None:
    (bucket,) = template.of_type("AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    (policy,) = template.of_type("AWS::S3::BucketPolicy").values()
    statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_table_has_pitr_stream_ttl_and_on_demand(template: Template) -> None:
    table = template.resources["RecordsTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"]["Enabled"] is True
    assert {g["IndexName"] for g in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2"}
    assert template.resources["RecordsTable"]["DeletionPolicy"] == "Retain"


def test_stream_consumer_retries_are_finite_with_a_failure_destination(template: Template) -> None:
    stream_events = [
        e["Properties"] for fn in template.functions().values() for e in fn.events.values() if e["Type"] == "DynamoDB"
    ]
    assert stream_events
    for props in stream_events:
        assert 0 <= props["MaximumRetryAttempts"] <= 10
        assert props["BisectBatchOnFunctionError"] is True
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
        assert props["FilterCriteria"]["Filters"]


def test_jobs_queue_has_a_dead_letter_queue(template: Template) -> None:
    queue = template.resources["JobsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) >= 1


def test_every_queue_a_function_reads_stays_invisible_six_times_its_timeout(template: Template) -> None:
    """Lambda asks for a source queue's visibility timeout of at least six times the function's timeout, and a
    maxReceiveCount of at least 5, so batches held while the function is throttled are not parked
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)."""
    default_timeout = int(template.doc["Globals"]["Function"]["Timeout"])
    checked = 0
    for fn in template.functions().values():
        props = template.resources[fn.logical_id]["Properties"]
        for event in fn.events.values():
            if event["Type"] != "SQS":
                continue
            queue = template.resources[event["Properties"]["Queue"]["Fn::GetAtt"][0]]["Properties"]
            assert int(queue["VisibilityTimeout"]) >= 6 * int(props.get("Timeout", default_timeout)), fn.logical_id
            assert int(queue["RedrivePolicy"]["maxReceiveCount"]) >= 5
            checked += 1
    assert checked


def test_the_jobs_function_sweeps_on_a_schedule_without_retries(template: Template) -> None:
    """A lost chunk is resent by the sweep (salon.services.jobs.sweep); a failed sweep is not retried, the
    next one does the same work."""
    jobs = template.functions()["JobsFunction"]
    schedules = [e["Properties"] for e in jobs.events.values() if e["Type"] == "Schedule"]
    assert [s["Schedule"] for s in schedules] == ["rate(5 minutes)"]
    config = template.resources["JobsFunction"]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 0


ASYNC_EVENTS = ("S3", "Schedule", "ScheduleV2", "SNS", "EventBridgeRule", "CloudWatchEvent")


def test_every_asynchronously_invoked_function_has_an_on_failure_destination(template: Template) -> None:
    """S3 invokes a function asynchronously: Lambda retries twice, then drops the event unless an on-failure
    destination takes it (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
    The one exception is the jobs sweep, which is not retried at all (the next sweep does the same work)."""
    checked = 0
    for fn in template.functions().values():
        kinds = {e["Type"] for e in fn.events.values()} & set(ASYNC_EVENTS)
        if not kinds:
            continue
        props = template.resources[fn.logical_id]["Properties"]
        config = props.get("EventInvokeConfig")
        assert config is not None, f"{fn.logical_id}: asynchronous events with no EventInvokeConfig"
        if kinds <= {"Schedule", "ScheduleV2"} and config.get("MaximumRetryAttempts") == 0:
            continue
        on_failure = config["DestinationConfig"]["OnFailure"]
        assert on_failure["Type"] == "SQS", fn.logical_id
        queue = on_failure["Destination"]["Fn::GetAtt"][0]
        assert template.resources[queue]["Type"] == "AWS::SQS::Queue"
        may_send = [
            p
            for p in props["Policies"]
            if p.get("SQSSendMessagePolicy", {}).get("QueueName", {}).get("Fn::GetAtt", [""])[0] == queue
        ]
        assert may_send, f"{fn.logical_id} may not send to {queue}"
        checked += 1
    assert checked


def test_every_function_uses_the_domain_layer_on_arm64_python312(template: Template) -> None:
    glob = template.doc["Globals"]["Function"]
    assert glob["Runtime"] == "python3.12"
    assert glob["Architectures"] == ["arm64"]
    assert glob["Layers"] == [{"Ref": "DomainLayer"}]
    layer = template.resources["DomainLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"


def test_every_handler_module_exists(template: Template) -> None:
    for fn in template.functions().values():
        assert fn.module_path.exists(), fn.module_path


# ---------------------------------------------------------------- alarms and data protection
def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template.of_type("AWS::CloudWatch::Alarm").items()}


def _alarm_metrics(props: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric an alarm reads, as ``{"Namespace", "MetricName", "Dimensions"}``."""
    if "MetricName" in props:
        return [{k: props[k] for k in ("Namespace", "MetricName", "Dimensions")}]
    return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]


def _watching(template: Template, namespace: str, metric: str, dimension: dict[str, Any]) -> list[str]:
    out = []
    for name, props in _alarms(template).items():
        for m in _alarm_metrics(props):
            dims = {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}
            if m["Namespace"] == namespace and m["MetricName"] == metric and dimension.items() <= dims.items():
                out.append(name)
    return out


def test_failure_queues_alarm_on_the_first_message(template: Template) -> None:
    for queue in ("StreamFailureQueue", "JobsDeadLetterQueue", "UploadEventsFailureQueue"):
        (name,) = _watching(
            template,
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}},
        )
        alarm = _alarms(template)[name]
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["TreatMissingData"] == "notBreaching"


def test_stream_lag_api_errors_and_throttles_are_alarmed(template: Template) -> None:
    assert _watching(template, "AWS/Lambda", "IteratorAge", {"FunctionName": {"Ref": "StreamFunction"}})
    (api,) = _watching(template, "AWS/ApiGateway", "5xx", {"ApiId": {"Ref": "HttpApi"}})
    assert _watching(template, "AWS/ApiGateway", "Count", {"ApiId": {"Ref": "HttpApi"}}) == [api], "5xx as a rate"
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        for table in ("RecordsTable", "IdempotencyTable"):
            assert _watching(template, "AWS/DynamoDB", metric, {"TableName": {"Ref": table}}), (metric, table)
        for index in ("gsi1", "gsi2"):
            assert _watching(
                template,
                "AWS/DynamoDB",
                metric,
                {"TableName": {"Ref": "RecordsTable"}, "GlobalSecondaryIndexName": index},
            ), (metric, index)


def test_every_function_is_watched_for_errors_and_throttles(template: Template) -> None:
    for metric in ("Errors", "Throttles"):
        for logical_id in template.functions():
            assert _watching(template, "AWS/Lambda", metric, {"FunctionName": {"Ref": logical_id}}), (
                f"{logical_id} is in no {metric} alarm: add it to Function{metric}Alarm in template.yaml "
                "(one MetricStat line; SUM(METRICS()) picks it up)"
            )


def test_every_alarm_notifies_the_topic_and_has_a_runbook(template: Template) -> None:
    from pathlib import Path

    runbook = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    alarms = _alarms(template)
    assert len(alarms) >= 7
    for name, props in alarms.items():
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        anchor = props["AlarmDescription"].rsplit("docs/operations.md#", 1)[1].rstrip(".")
        assert f"### {anchor}" in runbook.replace("`", ""), f"{name}: no runbook section '### {anchor}'"
        assert props["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), name


def test_alarm_email_subscription_is_a_parameter_and_optional(template: Template) -> None:
    param = template.doc["Parameters"]["AlarmEmail"]
    assert param["Default"] == ""
    assert re.fullmatch(param["AllowedPattern"], "oncall@example.com")
    assert re.fullmatch(param["AllowedPattern"], "")
    assert not re.fullmatch(param["AllowedPattern"], "not an address")
    (sub,) = template.of_type("AWS::SNS::Subscription").values()
    assert sub["Condition"] == "HasAlarmEmail"
    assert sub["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert sub["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert template.doc["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def test_records_survive_a_stack_deletion_and_deleted_photos_are_kept_30_days(template: Template) -> None:
    table = template.resources["RecordsTable"]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["UpdateReplacePolicy"] == "Retain"
    bucket = template.resources["UploadsBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"
    rules = [r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    noncurrent = [
        r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules if "NoncurrentVersionExpiration" in r
    ]
    assert noncurrent == [30], "a deleted or replaced photo stays recoverable for exactly 30 days"
    assert not any("ExpirationInDays" in r or "ExpirationDate" in r for r in rules), "current photos never expire"
    (policy,) = template.of_type("AWS::S3::BucketPolicy").values()
    (tls,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "TlsOnly"]
    resources = json.dumps(tls["Resource"])
    assert '${UploadsBucket}"' in resources
    assert "${UploadsBucket}/*" in resources, "TLS-only must cover the objects, not only the bucket"
    assert tls["Action"] == "s3:*"
    assert tls["Principal"] == "*"
