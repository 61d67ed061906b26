"""Notes and colour formulas on a client: seen by whoever may see the client."""

from __future__ import annotations

import gc

gc.disable()  # until the handler is built: see salon.coldstart

from salon import coldstart

coldstart.starting()  # Powertools' packages load only the modules this function uses

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from salon.api import RouteAccess, current_caller, documented, json_response, make_handler, make_resolver
from salon.ids import ULID_PATTERN
from salon.schemas.common import DEFAULT_PAGE, ErrorBody, PageLimit
from salon.schemas.notes import Formula, FormulaPage, FormulaWrite, Note, NoteCreate, NotePage, NoteUpdate
from salon.services import notes

router = Router()
ClientId = Annotated[str, Path(pattern=ULID_PATTERN, description="A client's ULID.")]
NoteId = Annotated[str, Path(pattern=ULID_PATTERN, description="A note's ULID.")]
FormulaId = Annotated[str, Path(pattern=ULID_PATTERN, description="A formula's ULID.")]
Limit = Annotated[PageLimit, Query()]
Cursor = Annotated[str | None, Query(max_length=512)]


def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


NOT_FOUND = _error("No such client (or not one the caller may see), note or formula.")
FORBIDDEN = _error("The caller sees the client but may not do this.")


def _conflict(description: str) -> OpenAPIResponse:
    """A 409 as ``documented()`` gives it (its Retry-After header kept), with this route's description."""
    response: OpenAPIResponse = documented(200, 409)[409]
    response["description"] = description
    return response


@router.post(
    "/clients/<client_id>/notes",
    summary="Add a note to a client",
    responses={
        201: {"description": "Created."},
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: _conflict(
            "Another write of the client is in flight (write_conflict), or its record holds"
            f" {notes.NOTE_LIMIT} notes, its limit (note_limit_reached)."
        ),
    },
)
def add_note(client_id: ClientId, data: NoteCreate) -> Response[Note]:
    return json_response(201, notes.add_note(current_caller(router), client_id, data))


@router.get("/clients/<client_id>/notes", summary="A client's notes, newest first", responses={404: NOT_FOUND})
def list_notes(client_id: ClientId, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None) -> NotePage:
    return notes.list_notes(current_caller(router), client_id, limit, cursor)


@router.patch(
    "/clients/<client_id>/notes/<note_id>",
    summary="Edit a note (its author only)",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
def edit_note(client_id: ClientId, note_id: NoteId, data: NoteUpdate) -> Note:
    return notes.edit_note(current_caller(router), client_id, note_id, data)


@router.delete(
    "/clients/<client_id>/notes/<note_id>",
    summary="Delete a note for everyone (its author, or an admin)",
    responses={204: {"description": "Deleted."}, 403: FORBIDDEN, 404: NOT_FOUND},
)
def delete_note(client_id: ClientId, note_id: NoteId) -> Response[Any]:
    notes.delete_note(current_caller(router), client_id, note_id)
    return Response(status_code=204)


@router.post(
    "/clients/<client_id>/formulas",
    summary="Add a colour formula to a client",
    responses={
        201: {"description": "Created."},
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: _conflict(
            "Another write of the client is in flight (write_conflict), or its record holds"
            f" {notes.FORMULA_LIMIT} formulas, its limit (formula_limit_reached)."
        ),
    },
)
def add_formula(client_id: ClientId, data: FormulaWrite) -> Response[Formula]:
    return json_response(201, notes.add_formula(current_caller(router), client_id, data))


@router.put(
    "/clients/<client_id>/formulas/<formula_id>",
    summary="Change a formula: writes the next version, earlier versions are kept",
    responses={
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: _conflict(
            "Another change wrote the same version first (formula_version_conflict), or the formula holds"
            f" {notes.FORMULA_VERSION_LIMIT} versions, its limit (formula_limit_reached)."
        ),
    },
)
def change_formula(client_id: ClientId, formula_id: FormulaId, data: FormulaWrite) -> Formula:
    return notes.change_formula(current_caller(router), client_id, formula_id, data)


@router.get(
    "/clients/<client_id>/formulas",
    summary="A client's formulas (current versions; every version with history=true)",
    responses={404: NOT_FOUND},
)
def list_formulas(
    client_id: ClientId,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    history: Annotated[bool, Query(description="Every version of each formula, newest first.")] = False,
) -> FormulaPage:
    return notes.list_formulas(current_caller(router), client_id, limit, cursor, history)


app = make_resolver(router)

# Adding is a role rule: it runs with the access read, before validation (SPEC.md: access first).
_ADD = RouteAccess(allow=lambda access: access.can_write_notes, message=notes.NOT_ALLOWED_TO_ADD)
lambda_handler = make_handler(
    app,
    {
        "POST /clients/{client_id}/notes": _ADD,
        "POST /clients/{client_id}/formulas": _ADD,
        "PUT /clients/{client_id}/formulas/{formula_id}": _ADD,
    },
)

coldstart.loaded()
