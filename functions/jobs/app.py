"""The jobs worker: long work (imports, departures, cascades), one chunk per SQS message.

Each message names a job kind; the worker runs one chunk and enqueues the next,
so no invocation runs long and a failed chunk is retried alone. The schedule's
event (every five minutes) sweeps the running jobs instead: a job whose chunk
was lost gets it resent (``salon.services.jobs.sweep``).
"""

from __future__ import annotations

import gc

gc.disable()  # until the handler is built: see salon.coldstart

from salon import coldstart

coldstart.starting()  # Powertools' packages load only the modules this function uses

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from salon import metrics, tracing
from salon.services.jobs import run_job_message, sweep

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    run_job_message(record.body)


@metrics.published
@tracing.traced
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return sweep()
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )


coldstart.loaded()
