"""The table's stream consumer: client profiles fan out to every assigned pro's view.

Partial batch responses: a record that fails for a passing reason is reported
and retried by the event source; a record that can never be applied (a poison
record) is parked with its keys and image on the failure queue and reported as
done, so it never holds the shard.
"""

from __future__ import annotations

import gc

gc.disable()  # until the handler is built: see salon.coldstart

from salon import coldstart

coldstart.starting()  # Powertools' packages load only the modules this function uses

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from salon import metrics, tracing
from salon.services.stream import coalesce, handle_record

logger = Logger()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@metrics.published
@tracing.traced
@logger.inject_lambda_context(clear_state=True, log_event=False)  # records hold contact details
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = coalesce(event.get("Records", []))
    tracing.annotate(records=len(event.get("Records", [])), clients=len(batch))

    def record_handler(record: DynamoDBRecord) -> None:
        try:
            handle_record(record.raw_event, batch)
        except Exception:
            logger.exception("stream record failed", extra={"keys": record.raw_event.get("dynamodb", {}).get("Keys")})
            raise

    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )


coldstart.loaded()
