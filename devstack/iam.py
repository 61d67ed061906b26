"""Each function's IAM policy, enforced on the AWS calls it makes while the local stack runs it.

A function deployed with a policy that misses an action fails only in AWS, with
AccessDenied; moto allows everything. So the local stack checks every botocore
API call (boto3, pynamodb and Powertools all go through
``BaseClient._make_api_call``) made while a function runs (``load_handler``'s
handler and module import, and work that function submits to a
``ThreadPoolExecutor``) against the actions its template policy allows, and
fails a call it does not allow the way AWS does: ``botocore.exceptions.ClientError``
with code ``AccessDeniedException`` (DynamoDB) or ``AccessDenied`` (S3, SQS),
naming the function and the action.

What is checked, and what is not:

- **Actions only.** ``Resource`` and ``Condition`` are ignored: a function allowed
  ``dynamodb:PutItem`` on one table may put to any table here. ``Deny`` and
  ``NotAction`` statements are honoured; wildcards (``sqs:SendMessage*``) match
  as IAM matches them, case-insensitively.
- The function's role as SAM generates it: its ``Policies`` (inline statements,
  SAM policy templates from ``SAM_POLICY_TEMPLATES``, the AWS managed policies in
  ``MANAGED_POLICIES``), plus what SAM attaches on its own: the basic execution
  role, the event source's managed policy (DynamoDB stream, SQS) and
  ``sqs:SendMessage`` / ``sns:Publish`` for an on-failure destination. A
  function with its own ``Role`` is not checked (a warning says so); a policy
  the module cannot read (an unknown template or managed policy) is an error at
  load, so nothing is silently allowed or denied.
- An API operation is mapped to the IAM actions AWS authorizes it with
  (``iam_actions``): the same name for most of DynamoDB and SQS, but
  transactions, PartiQL and SQS batch operations differ, and S3 differs widely
  (``HeadObject`` is ``s3:GetObject``, a ``VersionId`` makes it
  ``s3:GetObjectVersion``, ``ListObjectsV2`` is ``s3:ListBucket``, ``CopyObject``
  needs ``s3:GetObject`` on its source and ``s3:PutObject``...). Permissions
  that depend on the stored object (``s3:GetObjectTagging`` to copy a tagged
  object) or on KMS keys are not modelled.
- Presigned URLs and POSTs are not API calls and are not checked: the bucket
  checks the signer's rights when the URL is used.
- Calls the local stack makes itself (creating resources, event pumps, test
  setup and assertions) run outside any function and are never checked; nor are
  calls from a thread a function starts by hand (``threading.Thread``), which
  starts with no function, so it is never wrongly denied either.

Every denial is also recorded (``denials()``), so a test can fail on one the
code under test swallowed or retried.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from devstack.template import LOCAL_ACCOUNT, FunctionSpec

log = logging.getLogger("devstack.iam")

# SAM policy templates, the actions of their definitions in SAM's
# samtranslator/policy_templates_data/policy_templates.json (resources dropped).
SAM_POLICY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "SQSSendMessagePolicy": ("sqs:SendMessage*",),
    "SQSPollerPolicy": (
        "sqs:ChangeMessageVisibility",
        "sqs:ChangeMessageVisibilityBatch",
        "sqs:DeleteMessage",
        "sqs:DeleteMessageBatch",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ),
    "DynamoDBCrudPolicy": (
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
        "dynamodb:ConditionCheckItem",
    ),
    "DynamoDBReadPolicy": (
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
    ),
    "DynamoDBWritePolicy": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"),
    "DynamoDBStreamReadPolicy": (
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ),
    "S3ReadPolicy": (
        "s3:GetObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetObjectVersion",
        "s3:GetLifecycleConfiguration",
    ),
    "S3WritePolicy": ("s3:PutObject", "s3:PutObjectAcl", "s3:PutLifecycleConfiguration"),
    "S3CrudPolicy": (
        "s3:GetObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:PutObjectAcl",
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
        "s3:DeleteObject",
    ),
    "S3FullAccessPolicy": (
        "s3:GetObject",
        "s3:GetObjectAcl",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:PutObjectAcl",
        "s3:DeleteObject",
        "s3:DeleteObjectTagging",
        "s3:DeleteObjectVersionTagging",
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
    ),
    "SNSPublishMessagePolicy": ("sns:Publish",),
    "CloudWatchPutMetricPolicy": ("cloudwatch:PutMetricData",),
    "AWSSecretsManagerGetSecretValuePolicy": ("secretsmanager:GetSecretValue",),
    "SSMParameterReadPolicy": (
        "ssm:DescribeParameters",
        "ssm:GetParameters",
        "ssm:GetParameter",
        "ssm:GetParametersByPath",
    ),
}

_LOGS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
# AWS managed policies SAM attaches, or a template may name, by their actions.
MANAGED_POLICIES: dict[str, tuple[str, ...]] = {
    "AWSLambdaBasicExecutionRole": _LOGS,
    "AWSLambdaDynamoDBExecutionRole": (
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        *_LOGS,
    ),
    "AWSLambdaKinesisExecutionRole": (
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:ListStreams",
        "kinesis:SubscribeToShard",
        *_LOGS,
    ),
    "AWSLambdaSQSQueueExecutionRole": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS),
    "AWSXrayWriteOnlyAccess": (
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    ),
}
_EVENT_POLICIES = {
    "DynamoDB": "AWSLambdaDynamoDBExecutionRole",
    "Kinesis": "AWSLambdaKinesisExecutionRole",
    "SQS": "AWSLambdaSQSQueueExecutionRole",
}
_ON_FAILURE = {"SQS": "sqs:SendMessage", "SNS": "sns:Publish"}


class PolicyError(ValueError):
    """A function policy the local check cannot read."""


# --------------------------------------------------------------- the policy


def _pattern(action: str) -> re.Pattern[str]:
    text = re.escape(action).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{text}$", re.IGNORECASE)


@dataclass
class FunctionPolicy:
    """The actions one function's role allows (Allow minus Deny; resources ignored)."""

    function: str
    allow: list[re.Pattern[str]] = field(default_factory=list)
    deny: list[re.Pattern[str]] = field(default_factory=list)
    # NotAction statements: each allows (denies) every action none of its patterns matches.
    allow_not: list[list[re.Pattern[str]]] = field(default_factory=list)
    deny_not: list[list[re.Pattern[str]]] = field(default_factory=list)
    unchecked: bool = False
    _decided: dict[str, bool] = field(default_factory=dict, repr=False)

    def allows(self, action: str) -> bool:
        decided = self._decided.get(action)
        if decided is None:
            decided = self.unchecked or (
                _matches(action, self.allow, self.allow_not) and not _matches(action, self.deny, self.deny_not)
            )
            self._decided[action] = decided
        return decided

    def add(self, effect: str, actions: Iterable[str], negated: bool = False) -> None:
        patterns = [_pattern(a) for a in actions]
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{self.function}: statement effect {effect!r}")
        if negated:
            (self.allow_not if effect == "Allow" else self.deny_not).append(patterns)
        else:
            (self.allow if effect == "Allow" else self.deny).extend(patterns)


def _matches(action: str, patterns: list[re.Pattern[str]], negated: list[list[re.Pattern[str]]]) -> bool:
    return any(p.match(action) for p in patterns) or any(not any(p.match(action) for p in group) for group in negated)


def _values(value: Any) -> Iterator[Any]:
    """A value that may be a list, or an ``Fn::If`` (both branches: the check never denies what one allows)."""
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            yield from _values(item)
    elif isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from _values(branch)
    elif isinstance(value, dict) and value.get("Ref") == "AWS::NoValue":
        return
    else:
        yield value


def _add_statements(policy: FunctionPolicy, document: dict[str, Any]) -> None:
    for statement in _values(document.get("Statement")):
        effect = statement.get("Effect", "Allow")
        if "NotAction" in statement:
            policy.add(effect, [str(a) for a in _values(statement["NotAction"])], negated=True)
        else:
            policy.add(effect, [str(a) for a in _values(statement.get("Action"))])


def _managed_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value.rsplit("/", 1)[-1]
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"].rsplit("/", 1)[-1]  # arn:${AWS::Partition}:iam::aws:policy/...
    return None


def build_policy(spec: FunctionSpec) -> FunctionPolicy:
    """The function's role as SAM would generate it from the template, reduced to its actions."""
    props = spec.properties
    policy = FunctionPolicy(spec.logical_id)
    if props.get("Role"):
        log.warning("%s has its own Role: the local stack does not check its calls", spec.logical_id)
        policy.unchecked = True
        return policy
    policy.add("Allow", MANAGED_POLICIES["AWSLambdaBasicExecutionRole"])
    for item in _values(props.get("Policies")):
        if isinstance(item, dict) and "Statement" in item:
            _add_statements(policy, item)
            continue
        if isinstance(item, dict) and len(item) == 1:
            ((name, _params),) = item.items()
            if name in SAM_POLICY_TEMPLATES:
                policy.add("Allow", SAM_POLICY_TEMPLATES[name])
                continue
            if not name.startswith("Fn::") and name != "Ref":
                raise PolicyError(
                    f"{spec.logical_id}: SAM policy template {name} is unknown to devstack/iam.py; "
                    "add its actions (SAM's policy_templates.json) to SAM_POLICY_TEMPLATES"
                )
        managed = _managed_name(item)
        if managed in MANAGED_POLICIES:
            policy.add("Allow", MANAGED_POLICIES[managed])
            continue
        raise PolicyError(
            f"{spec.logical_id}: policy {item!r} is unknown to devstack/iam.py; add its actions to MANAGED_POLICIES"
        )
    for event in spec.events.values():
        kind = event.get("Type")
        if kind in _EVENT_POLICIES:
            policy.add("Allow", MANAGED_POLICIES[_EVENT_POLICIES[kind]])
        on_failure = ((event.get("Properties") or {}).get("DestinationConfig") or {}).get("OnFailure") or {}
        if on_failure.get("Type") in _ON_FAILURE:
            policy.add("Allow", [_ON_FAILURE[on_failure["Type"]]])
    return policy


_policies: dict[tuple[str, str], FunctionPolicy] = {}
_policies_lock = threading.Lock()


def policy_for(spec: FunctionSpec) -> FunctionPolicy:
    """``build_policy``, parsed once per function (and per version of its template properties)."""
    key = (
        spec.logical_id,
        json.dumps([spec.properties.get("Policies"), spec.properties.get("Role"), spec.events], default=str),
    )
    policy = _policies.get(key)
    if policy is None:
        with _policies_lock:
            policy = _policies.setdefault(key, build_policy(spec))
    return policy


# ------------------------------------------------- operations to IAM actions

_IAM_PREFIX = {
    "dynamodbstreams": "dynamodb",
    "stepfunctions": "states",
    "sesv2": "ses",
    "elbv2": "elasticloadbalancing",
}

# S3 operations whose IAM action is not their name, or not their name alone.
# A tuple is (action, action with a VersionId); None means no versioned form.
_S3: dict[str, tuple[str, str | None]] = {
    "GetObject": ("GetObject", "GetObjectVersion"),
    "HeadObject": ("GetObject", "GetObjectVersion"),
    "SelectObjectContent": ("GetObject", None),
    "DeleteObject": ("DeleteObject", "DeleteObjectVersion"),
    "GetObjectTagging": ("GetObjectTagging", "GetObjectVersionTagging"),
    "PutObjectTagging": ("PutObjectTagging", "PutObjectVersionTagging"),
    "DeleteObjectTagging": ("DeleteObjectTagging", "DeleteObjectVersionTagging"),
    "GetObjectAcl": ("GetObjectAcl", "GetObjectVersionAcl"),
    "PutObjectAcl": ("PutObjectAcl", "PutObjectVersionAcl"),
    "CreateMultipartUpload": ("PutObject", None),
    "UploadPart": ("PutObject", None),
    "CompleteMultipartUpload": ("PutObject", None),
    "ListParts": ("ListMultipartUploadParts", None),
    "ListMultipartUploads": ("ListBucketMultipartUploads", None),
    "ListObjects": ("ListBucket", None),
    "ListObjectsV2": ("ListBucket", None),
    "ListObjectVersions": ("ListBucketVersions", None),
    "HeadBucket": ("ListBucket", None),
    "ListBuckets": ("ListAllMyBuckets", None),
    "GetBucketCors": ("GetBucketCORS", None),
    "PutBucketCors": ("PutBucketCORS", None),
    "DeleteBucketCors": ("PutBucketCORS", None),
    "GetBucketLifecycleConfiguration": ("GetLifecycleConfiguration", None),
    "PutBucketLifecycleConfiguration": ("PutLifecycleConfiguration", None),
    "DeleteBucketLifecycle": ("PutLifecycleConfiguration", None),
    "GetBucketNotificationConfiguration": ("GetBucketNotification", None),
    "PutBucketNotificationConfiguration": ("PutBucketNotification", None),
    "GetBucketEncryption": ("GetEncryptionConfiguration", None),
    "PutBucketEncryption": ("PutEncryptionConfiguration", None),
    "DeleteBucketEncryption": ("PutEncryptionConfiguration", None),
    "GetBucketReplication": ("GetReplicationConfiguration", None),
    "PutBucketReplication": ("PutReplicationConfiguration", None),
    "DeleteBucketReplication": ("PutReplicationConfiguration", None),
    "GetPublicAccessBlock": ("GetBucketPublicAccessBlock", None),
    "PutPublicAccessBlock": ("PutBucketPublicAccessBlock", None),
    "DeletePublicAccessBlock": ("PutBucketPublicAccessBlock", None),
    "GetBucketOwnershipControls": ("GetBucketOwnershipControls", None),
}
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_DDB_TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_PARTIQL = {"SELECT": "PartiQLSelect", "INSERT": "PartiQLInsert", "UPDATE": "PartiQLUpdate", "DELETE": "PartiQLDelete"}


def _copy_source_versioned(source: Any) -> bool:
    if isinstance(source, dict):
        return bool(source.get("VersionId"))
    return "versionId=" in str(source)


def _s3_write_extras(params: dict[str, Any]) -> list[str]:
    extras = []
    if params.get("ACL") or any(k.startswith("Grant") for k in params):
        extras.append("s3:PutObjectAcl")
    if params.get("Tagging"):
        extras.append("s3:PutObjectTagging")
    return extras


def _s3_actions(operation: str, params: dict[str, Any]) -> list[str]:
    if operation in ("CopyObject", "UploadPartCopy"):
        source = "s3:GetObjectVersion" if _copy_source_versioned(params.get("CopySource")) else "s3:GetObject"
        return [source, "s3:PutObject", *(_s3_write_extras(params) if operation == "CopyObject" else [])]
    if operation == "PutObject":
        return ["s3:PutObject", *_s3_write_extras(params)]
    if operation == "DeleteObjects":
        objects = (params.get("Delete") or {}).get("Objects") or []
        out = {"s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject" for o in objects}
        return sorted(out) or ["s3:DeleteObject"]
    if operation == "GetObjectAttributes":
        if params.get("VersionId"):
            return ["s3:GetObjectVersion", "s3:GetObjectVersionAttributes"]
        return ["s3:GetObject", "s3:GetObjectAttributes"]
    plain, versioned = _S3.get(operation, (operation, None))
    return [f"s3:{versioned if versioned and params.get('VersionId') else plain}"]


def _partiql(statements: Iterable[str]) -> list[str]:
    out = set()
    for statement in statements:
        verb = statement.strip().split(None, 1)[0].upper() if statement.strip() else ""
        out.add(f"dynamodb:{_PARTIQL.get(verb, 'PartiQLSelect')}")
    return sorted(out)


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """The IAM actions AWS authorizes one API call with (botocore service name, operation name, parameters)."""
    prefix = _IAM_PREFIX.get(service, service)
    if service == "s3":
        return _s3_actions(operation, params)
    if service == "sqs" and operation in _SQS_BATCH:
        return [f"sqs:{_SQS_BATCH[operation]}"]
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            kinds = {kind for item in params.get("TransactItems") or [] for kind in item}
            return sorted(f"dynamodb:{_DDB_TRANSACT[k]}" for k in kinds if k in _DDB_TRANSACT)
        if operation == "TransactGetItems":
            return ["dynamodb:GetItem"]
        if operation == "ExecuteStatement":
            return _partiql([params.get("Statement", "")])
        if operation == "BatchExecuteStatement":
            return _partiql(s.get("Statement", "") for s in params.get("Statements") or [])
        if operation == "ExecuteTransaction":
            return _partiql(s.get("Statement", "") for s in params.get("TransactStatements") or [])
    return [f"{prefix}:{operation}"]


# --------------------------------------------------------------- enforcement

_current: contextvars.ContextVar[FunctionPolicy | None] = contextvars.ContextVar("devstack_function", default=None)


@dataclass(frozen=True)
class Denial:
    function: str
    action: str
    operation: str


_denials: list[Denial] = []
_denials_lock = threading.Lock()


def denials() -> list[Denial]:
    """Every call denied in this process so far."""
    with _denials_lock:
        return list(_denials)


def record_denials(denied: Iterable[Denial]) -> None:
    """Add denials recorded elsewhere (a worker process of the local stack) to this process's."""
    with _denials_lock:
        _denials.extend(denied)


def take_denials() -> list[Denial]:
    """The denials so far, forgotten (for a test that expects some)."""
    with _denials_lock:
        taken = list(_denials)
        _denials.clear()
    return taken


_ERROR = {"dynamodb": ("AccessDeniedException", 400), "s3": ("AccessDenied", 403), "sqs": ("AccessDenied", 403)}


def _deny(policy: FunctionPolicy, service: str, operation: str, action: str) -> Exception:
    from botocore.exceptions import ClientError

    with _denials_lock:
        _denials.append(Denial(policy.function, action, operation))
    message = (
        f"User: arn:aws:sts::{LOCAL_ACCOUNT}:assumed-role/{policy.function}Role/{policy.function} "
        f"is not authorized to perform: {action} because no identity-based policy allows the {action} action "
        f"(local stack: {policy.function}'s Policies in template.yaml do not allow it)"
    )
    log.error(
        "AccessDenied: %s called %s, which needs %s: not in its template policy", policy.function, operation, action
    )
    code, status = _ERROR.get(service, ("AccessDeniedException", 403))
    error: Exception = ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )
    return error


def check(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise AWS's AccessDenied if the function running in this context may not make this call."""
    policy = _current.get()
    if policy is None or policy.unchecked:
        return
    for action in iam_actions(service, operation, params):
        if not policy.allows(action):
            raise _deny(policy, service, operation, action)


@contextmanager
def running(policy: FunctionPolicy) -> Iterator[None]:
    """Calls made in this block (and in work it submits to thread pools) are the function's."""
    token = _current.set(policy)
    try:
        yield
    finally:
        _current.reset(token)


def wrap_handler(handler: Callable[..., Any], policy: FunctionPolicy) -> Callable[..., Any]:
    @functools.wraps(handler)
    def checked(event: Any, context: Any) -> Any:
        with running(policy):
            return handler(event, context)

    return checked


_install_lock = threading.Lock()


def install() -> None:
    """Check every botocore call, and carry the running function into thread pools (idempotent)."""
    import botocore.client

    with _install_lock:
        current = botocore.client.BaseClient._make_api_call
        if getattr(current, "_devstack_iam", False):
            return
        original = current

        def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if _current.get() is not None:
                check(self.meta.service_model.service_name, operation_name, api_params)
            return original(self, operation_name, api_params)

        _make_api_call._devstack_iam = True  # type: ignore[attr-defined]
        botocore.client.BaseClient._make_api_call = _make_api_call

        executor = concurrent.futures.ThreadPoolExecutor
        if not getattr(executor.submit, "_devstack_iam", False):
            submit = executor.submit

            def _submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
                if _current.get() is None:
                    return submit(self, fn, *args, **kwargs)
                return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

            _submit._devstack_iam = True  # type: ignore[attr-defined]
            executor.submit = _submit  # type: ignore[method-assign]
