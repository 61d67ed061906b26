"""Clients: the caller, their book and one client's profile."""

from __future__ import annotations

import gc

gc.disable()  # until the handler is built: see salon.coldstart

from salon import coldstart

coldstart.starting()  # Powertools' packages load only the modules this function uses

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from salon.api import RouteAccess, current_caller, documented, json_response, make_handler, make_resolver
from salon.identity import PRO_ID_PATTERN
from salon.ids import ULID_PATTERN
from salon.schemas.clients import Block, ChangePage, Client, ClientCreate, ClientPage, ClientUpdate
from salon.schemas.common import DEFAULT_PAGE, PageLimit
from salon.schemas.history import ClientLog
from salon.schemas.me import Me
from salon.schemas.studios import PlanOut, PlanUpdate
from salon.services import client_log, clients, studios

router = Router()
ClientId = Annotated[str, Path(pattern=ULID_PATTERN, description="A client's ULID.")]


@router.get("/me", summary="The caller: pro id, studio, role and plan")
def get_me() -> Me:
    return clients.who_am_i(current_caller(router))


@router.get(
    "/clients/<client_id>/log",
    summary="The Client Log: profile, visits, sales, packages, gift cards, notes, formulas, files",
    responses=documented(200, 404),
)
def get_client_log(client_id: ClientId) -> ClientLog:
    return client_log.client_log(current_caller(router), client_id)


@router.get("/me/clients", summary="The caller's view of their clients, by id")
def list_my_clients(
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="Name prefix.")] = None,
) -> ClientPage:
    return clients.list_my_clients(current_caller(router), limit, cursor, q)


@router.get(
    "/me/changes",
    summary="The caller's change feed since a cursor (tombstones included)",
    responses=documented(200, 410),
)
def list_changes(
    since: Annotated[str | None, Query(max_length=512, description="A cursor from an earlier answer.")] = None,
    limit: Annotated[PageLimit, Query()] = 100,
) -> ChangePage:
    return clients.changes_since(current_caller(router), since, limit)


@router.put(
    "/pros/<pro_id>/plan", summary="Operators only: the plan of a solo pro's book", responses=documented(200, 403)
)
def set_pro_plan(pro_id: Annotated[str, Path(pattern=PRO_ID_PATTERN)], data: PlanUpdate) -> PlanOut:
    return studios.set_pro_plan(current_caller(router), pro_id, data.plan)


UNTIL_TOMORROW = {
    "description": "Seconds until the studio-local day ends, when the provider's walk-ins start again.",
    "schema": {"type": "integer", "minimum": 1},
}


def _described(responses: dict[int, OpenAPIResponse], **texts: str) -> dict[int, OpenAPIResponse]:
    """``documented(...)`` with route-specific descriptions (``s409="..."``), its headers and bodies kept."""
    for name, text in texts.items():
        code = int(name.removeprefix("s"))
        responses[code] = {**responses[code], "description": text}
    return responses


def _retry_after(responses: dict[int, OpenAPIResponse], code: int, header: Any) -> dict[int, OpenAPIResponse]:
    responses[code] = {**responses[code], "headers": {"Retry-After": header}}
    return responses


DUPLICATE = (
    "`duplicate_client`: the phone or email (`details.field`) is taken in the book. "
    "`details.existing_client_id` names the client only to a caller who may see it after the answer: a solo "
    "pro, an admin, a member assigned to it, or a provider registering the same person under the same name "
    "(a walk-in), who is assigned to it now; anyone else asks an admin. `write_conflict`: the same client is "
    "being registered right now, try again."
)
ASSIGNMENT_LIMIT = (
    "`assignment_limit`: the provider was assigned 10 walk-ins this studio-local day by registering them "
    "again; nothing was assigned (an admin can assign the client)."
)
EDIT_CONFLICT = (
    "`duplicate_client`: the new phone or email (`details.field`) belongs to another client of the book, "
    "named in `details.existing_client_id` only when the caller may see it (an admin, a solo pro, a client "
    "they are assigned to); `write_conflict`: someone else is changing the client, try again."
)


@router.post(
    "/clients",
    summary="Register a client in the caller's book",
    responses=_retry_after(
        _described(documented(201, 409, 429), s409=DUPLICATE, s429=ASSIGNMENT_LIMIT), 429, UNTIL_TOMORROW
    ),
)
def create_client(data: ClientCreate) -> Response[Client]:
    client = clients.create_client(current_caller(router), data)
    return json_response(201, client, {"ETag": f'"{client.version}"'})


@router.get("/clients/<client_id>", summary="One client; ETag is its version", responses=documented(200, 404))
def get_client(client_id: ClientId) -> Response[Client]:
    client = clients.get_client(current_caller(router), client_id)
    return json_response(200, client, {"ETag": f'"{client.version}"'})


@router.patch(
    "/clients/<client_id>",
    summary="Edit the profile; If-Match must carry the version (ETag) read",
    responses=_described(documented(200, 403, 404, 409, 412, 428), s409=EDIT_CONFLICT),
)
def update_client(
    client_id: ClientId,
    data: ClientUpdate,
    if_match: Annotated[str | None, Header(alias="If-Match", description="The ETag read.")] = None,
) -> Response[Client]:
    client = clients.update_client(current_caller(router), client_id, data, if_match)
    return json_response(200, client, {"ETag": f'"{client.version}"'})


@router.delete(
    "/clients/<client_id>",
    summary="Remove the client from the caller's account",
    responses=documented(204, 404, 409, body=False),
)
def remove_client(client_id: ClientId) -> Response[None]:
    clients.remove_client(current_caller(router), client_id)
    return Response(status_code=204)


@router.put(
    "/clients/<client_id>/block", summary="Block the client for the caller", responses=documented(200, 403, 404, 409)
)
def block_client(client_id: ClientId) -> Block:
    return clients.set_blocked(current_caller(router), client_id, True)


@router.delete(
    "/clients/<client_id>/block", summary="Unblock the client for the caller", responses=documented(200, 403, 404, 409)
)
def unblock_client(client_id: ClientId) -> Block:
    return clients.set_blocked(current_caller(router), client_id, False)


app = make_resolver(router)
# The log reads its client and the caller concurrently and decides access from that read (2 calls).
lambda_handler = make_handler(app, {"GET /clients/{client_id}/log": RouteAccess(load=client_log.load_access)})

coldstart.loaded()
