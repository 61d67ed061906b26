"""Asynchronous invocation in the local stack, as Lambda does it for S3 events.

S3 invokes a function asynchronously, one event at a time. When the function returns an error, Lambda runs
the event again up to ``MaximumRetryAttempts`` times (the function's ``EventInvokeConfig``; 2 unless set),
then hands it to the on-failure destination with an invocation record (``requestContext.condition``
``RetriesExhausted``, the event as ``requestPayload``, the error as ``responsePayload``), or drops it when
there is none (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html,
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html). AWS waits a minute, then
two, between attempts; the local stack retries after :data:`RETRY_DELAY_S`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from typing import Any

from devstack import clock
from devstack.emulator import Emulator
from devstack.pumps import Pump, s3_event_from_messages
from devstack.template import LOCAL_ACCOUNT, LOCAL_REGION, LOCAL_STACK_NAME

log = logging.getLogger("devstack.async")
RETRY_DELAY_S = 0.2
DEFAULT_RETRIES = 2


def failure_record(function_id: str, event: dict[str, Any], error: Exception, attempts: int) -> dict[str, Any]:
    """The invocation record Lambda sends to an on-failure destination."""
    error_type = getattr(error, "error_type", type(error).__name__)
    message = getattr(error, "message", str(error))
    return {
        "version": "1.0",
        "timestamp": dt.datetime.fromtimestamp(clock.now(), dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{LOCAL_STACK_NAME}-{function_id}"
            ":$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": message, "errorType": error_type},
    }


class AsyncS3Pump(Pump):
    """Takes the bucket's notifications off the local events queue and invokes the function as S3 would."""

    def __init__(
        self,
        emulator: Emulator,
        queue_url: str,
        pool: Any,
        stop: threading.Event,
        invoke_config: dict[str, Any] | None = None,
        destination_url: str | None = None,
    ) -> None:
        super().__init__(f"s3->{pool.spec.logical_id}", stop)
        self.sqs = emulator.client("sqs")
        self.queue_url = queue_url
        self.pool = pool
        config = invoke_config or {}
        self.max_retries = int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES))
        self.destination_url = destination_url
        self.failed = 0  # events handed to the destination (or dropped)

    def step(self) -> bool:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            self.busy = False
            return False
        self.busy = True
        for message in messages:
            # The event is Lambda's from here on (its internal queue): the notification is consumed at once.
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            event = s3_event_from_messages([{"body": message["Body"]}])
            if event is not None:
                self._invoke(event)
        return True

    def _invoke(self, event: dict[str, Any]) -> None:
        error: Exception | None = None
        for attempt in range(1 + self.max_retries):
            if attempt:
                time.sleep(RETRY_DELAY_S)
            try:
                self.pool.invoke(event)
                return
            except Exception as exc:
                error = exc
                log.warning("%s: attempt %d failed: %s", self.name, attempt + 1, exc)
        assert error is not None
        self.failed += 1
        if self.destination_url is None:
            log.error(
                "%s: event dropped after %d attempts (no on-failure destination)", self.name, 1 + self.max_retries
            )
            return
        record = failure_record(self.pool.spec.logical_id, event, error, 1 + self.max_retries)
        self.sqs.send_message(QueueUrl=self.destination_url, MessageBody=json.dumps(record))
