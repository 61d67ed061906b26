"""The embedded AWS emulator (moto server) and the template's resources created in it."""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import boto3

from devstack.template import LOCAL_REGION, LOCAL_STACK_NAME, Template

S3_EVENTS_QUEUE = "local-s3-events"
_QUEUE_KEYS = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
)
_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "StreamSpecification", "BillingMode")


def aws_env(endpoint: str) -> dict[str, str]:
    """What boto3 and pynamodb need to reach the emulator, with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
    }


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _strict_server_class() -> Any:
    """moto's threaded server with its app behind devstack.s3_rules (S3 as strict as AWS's)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from devstack import s3_rules

    class StrictMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = s3_rules.wrap(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return StrictMotoServer


class Emulator:
    """A moto server on loopback; its S3 checks signatures, expiries and POST policies (devstack/s3_rules.py)."""

    def __init__(self, port: int) -> None:
        from devstack import moto_patches

        moto_patches.apply()

        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = _strict_server_class()(ip_address="127.0.0.1", port=port, verbose=False)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local stack's fixed credentials (devstack.s3_rules)
        )


@dataclass
class LocalResources:
    """Physical names of what was created, by logical id."""

    tables: dict[str, str]
    stream_arns: dict[str, str]
    queues: dict[str, str]
    buckets: dict[str, str]
    s3_events_queue_url: str


def create_resources(emulator: Emulator, template: Template) -> LocalResources:
    """Create every table, queue and bucket the template declares, as it declares them."""
    ddb = emulator.client("dynamodb")
    sqs = emulator.client("sqs")
    s3 = emulator.client("s3")
    tables: dict[str, str] = {}
    stream_arns: dict[str, str] = {}
    for logical_id, res in template.of_type("AWS::DynamoDB::Table").items():
        props = res["Properties"]
        name = f"{LOCAL_STACK_NAME}-{logical_id}"
        spec = {k: props[k] for k in _TABLE_KEYS if k in props}
        spec.setdefault("BillingMode", "PAY_PER_REQUEST")
        if "StreamSpecification" in spec:
            spec["StreamSpecification"] = {"StreamEnabled": True, **spec["StreamSpecification"]}
        desc = ddb.create_table(TableName=name, **spec)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        tables[logical_id] = name
        template.physical[logical_id] = name
        if desc.get("LatestStreamArn"):
            stream_arns[logical_id] = desc["LatestStreamArn"]
            template.physical[f"{logical_id}.StreamArn"] = desc["LatestStreamArn"]

    queues: dict[str, str] = {}
    pending = dict(template.of_type("AWS::SQS::Queue"))
    while pending:  # dead-letter queues first, so redrive policies can name them
        for logical_id, res in list(pending.items()):
            props = dict(res.get("Properties") or {})
            redrive = props.get("RedrivePolicy")
            if redrive and redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] not in queues:
                continue
            # The template's settings, as CloudFormation creates the queue. The local poller receives with a
            # scaled visibility timeout (devstack.pumps.time_scale); the queue's own attribute is the template's.
            attrs = {k: str(props[k]) for k in _QUEUE_KEYS if k in props}
            if redrive:
                target = template.resolve(redrive["deadLetterTargetArn"])
                attrs["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": target, "maxReceiveCount": str(redrive["maxReceiveCount"])}
                )
            url = sqs.create_queue(QueueName=f"{LOCAL_STACK_NAME}-{logical_id}", Attributes=attrs)["QueueUrl"]
            queues[logical_id] = url
            template.physical[logical_id] = url
            del pending[logical_id]

    s3_events_url = sqs.create_queue(QueueName=S3_EVENTS_QUEUE, Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    s3_events_arn = sqs.get_queue_attributes(QueueUrl=s3_events_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    buckets: dict[str, str] = {}
    for logical_id, res in template.of_type("AWS::S3::Bucket").items():
        props = res["Properties"]
        name = str(template.resolve(props["BucketName"]))
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration"):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        cors = props.get("CorsConfiguration")
        if cors:
            rules = []
            for rule in cors["CorsRules"]:
                rules.append(
                    {
                        "AllowedOrigins": ["*"],  # local: any origin, e.g. a simulator's
                        "AllowedMethods": rule["AllowedMethods"],
                        "AllowedHeaders": rule.get("AllowedHeaders", []),
                        "ExposeHeaders": rule.get("ExposedHeaders", []),
                        "MaxAgeSeconds": rule.get("MaxAge", 0),
                    }
                )
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        template.physical[logical_id] = name
        buckets[logical_id] = name

    # S3 -> function events: moto cannot invoke Lambda, so the bucket notifies a
    # local queue and the event pump hands each message to the function.
    configs = []
    for fn in template.functions().values():
        for event in fn.events.values():
            if event["Type"] != "S3":
                continue
            props = event["Properties"]
            events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
            config: dict[str, Any] = {"QueueArn": s3_events_arn, "Events": events}
            if props.get("Filter"):
                config["Filter"] = {"Key": {"FilterRules": props["Filter"]["S3Key"]["Rules"]}}
            configs.append((props["Bucket"]["Ref"], config))
    for bucket_logical_id in {b for b, _ in configs}:
        s3.put_bucket_notification_configuration(
            Bucket=buckets[bucket_logical_id],
            NotificationConfiguration={"QueueConfigurations": [c for b, c in configs if b == bucket_logical_id]},
        )
    return LocalResources(tables, stream_arns, queues, buckets, s3_events_url)


def apply_environment(template: Template, endpoint: str) -> dict[str, str]:
    """Set the functions' environment (from the template) and the emulator's endpoint in this process."""
    env = aws_env(endpoint)
    for fn in template.functions().values():
        env.update(template.function_environment(fn))
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    env.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # DEVSTACK_FUNCTION_ENV='{"POWERTOOLS_LOG_LEVEL": "DEBUG"}' overrides the template for every function.
    env.update(json.loads(os.environ.get("DEVSTACK_FUNCTION_ENV") or "{}"))
    os.environ.update(env)
    return env
