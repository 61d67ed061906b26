"""Files and photos: presigned uploads, listing and deletion over HTTP; confirmation from S3 events.

One function serves both: ``lambda_handler`` sends S3 ObjectCreated events to
the confirmation code and everything else to the HTTP resolver. Pillow (for
thumbnails) is imported only on the S3 path.
"""

from __future__ import annotations

import gc

gc.disable()  # until the handler is built: see salon.coldstart

from salon import coldstart

coldstart.starting()  # Powertools' packages load only the modules this function uses

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from salon import metrics
from salon.api import current_caller, json_response, make_handler, make_resolver
from salon.ids import ULID_PATTERN
from salon.schemas.common import ErrorBody
from salon.schemas.uploads import FileList, UploadGrant, UploadRequest
from salon.services import uploads

logger = Logger()
router = Router()
ClientId = Annotated[str, Path(pattern=ULID_PATTERN, description="A client's ULID.")]
UploadId = Annotated[str, Path(pattern=ULID_PATTERN, description="A file's ULID (its upload id).")]


def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


NOT_FOUND = _error("No such client (or not one the caller may see), or no such file.")
FORBIDDEN = _error("`plan_required` on a basic plan, or `forbidden` for a role that may not manage files.")
LIMIT = _error("`file_limit_reached`: the client already holds its files (confirmed or pending).")
KEPT = _error(
    "`throttled` (DynamoDB kept throttling), or `delete_incomplete`: S3 kept part of the file, which is still "
    "listed; retry after Retry-After seconds."
)


@router.post(
    "/clients/<client_id>/uploads",
    summary="Ask to upload a file: a presigned POST for exactly this key, type and size",
    responses={201: {"description": "Created."}, 403: FORBIDDEN, 404: NOT_FOUND, 409: LIMIT},
)
def request_upload(client_id: ClientId, data: UploadRequest) -> Response[UploadGrant]:
    grant = uploads.request_upload(current_caller(router), client_id, data)
    return json_response(201, grant)


@router.get(
    "/clients/<client_id>/uploads",
    summary="The client's confirmed files, with short-lived download and thumbnail URLs",
    responses={404: NOT_FOUND},
)
def list_files(client_id: ClientId) -> FileList:
    return uploads.list_files(current_caller(router), client_id)


@router.delete(
    "/clients/<client_id>/uploads/<upload_id>",
    summary="Delete a file and its thumbnail for good (every stored version); frees its slot",
    responses={204: {"description": "Deleted."}, 403: FORBIDDEN, 404: NOT_FOUND, 503: KEPT},
)
def delete_file(client_id: ClientId, upload_id: UploadId) -> Response[Any]:
    uploads.delete_file(current_caller(router), client_id, upload_id)
    return Response(status_code=204)


app = make_resolver(router)
http_handler = make_handler(app)


def _is_s3_event(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return isinstance(records, list) and bool(records) and records[0].get("eventSource") == "aws:s3"


@metrics.published  # the S3 path counts confirmed and rejected uploads
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if _is_s3_event(event):
        uploads.handle_s3_event(event)
        return {}
    return http_handler(event, context)


coldstart.loaded()
