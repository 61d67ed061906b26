"""Studios and membership: create, plans, invites, joining, members, roles, ownership, the studio list."""

from __future__ import annotations

import gc

gc.disable()  # until the handler is built: see salon.coldstart

from salon import coldstart

coldstart.starting()  # Powertools' packages load only the modules this function uses

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from salon.api import current_caller, documented, json_response, make_handler, make_resolver
from salon.identity import PRO_ID_PATTERN
from salon.ids import ULID_PATTERN
from salon.schemas.clients import ClientPage
from salon.schemas.common import DEFAULT_PAGE, PageLimit
from salon.schemas.departures import DeparturePreview
from salon.schemas.studios import (
    Invite,
    InviteCreate,
    JoinRequest,
    Member,
    MemberPage,
    OwnerTransfer,
    PlanOut,
    PlanUpdate,
    RoleUpdate,
    Studio,
    StudioCreate,
)
from salon.services import departures, membership, studios

router = Router()
StudioId = Annotated[str, Path(pattern=ULID_PATTERN, description="A studio's ULID.")]
ClientId = Annotated[str, Path(pattern=ULID_PATTERN, description="A client's ULID.")]
ProId = Annotated[str, Path(pattern=PRO_ID_PATTERN, description="A pro's id (the token's sub).")]


@router.post(
    "/studios", summary="Create a studio; the caller becomes its owner and admin", responses=documented(201, 409)
)
def create_studio(data: StudioCreate) -> Response[Studio]:
    return json_response(201, studios.create_studio(current_caller(router), data))


@router.get("/studios/<studio_id>", summary="The studio, with the caller's role", responses=documented(200, 404))
def get_studio(studio_id: StudioId) -> Studio:
    return studios.get_studio(current_caller(router), studio_id)


@router.put(
    "/studios/<studio_id>/plan", summary="Operators only: the studio's plan", responses=documented(200, 403, 404)
)
def set_studio_plan(studio_id: StudioId, data: PlanUpdate) -> PlanOut:
    return studios.set_studio_plan(current_caller(router), studio_id, data.plan)


@router.post(
    "/studios/<studio_id>/invites",
    summary="Admins: a single-use invite code with a role",
    responses=documented(201, 403, 404),
)
def create_invite(studio_id: StudioId, data: InviteCreate) -> Response[Invite]:
    return json_response(201, studios.create_invite(current_caller(router), studio_id, data))


@router.post(
    "/studios/join",
    summary="Redeem an invite; the import of the caller's clients starts (202)",
    responses=documented(202, 404, 409, 429),
)
def join(data: JoinRequest) -> Response[Member]:
    return json_response(202, studios.join(current_caller(router), data))


@router.get(
    "/studios/<studio_id>/members", summary="Members with role and import status", responses=documented(200, 404)
)
def list_members(
    studio_id: StudioId,
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> MemberPage:
    return studios.list_members(current_caller(router), studio_id, limit, cursor)


@router.get(
    "/studios/<studio_id>/members/<pro_id>",
    summary="One member, with the import summary",
    responses=documented(200, 404),
)
def get_member(studio_id: StudioId, pro_id: ProId) -> Member:
    return studios.get_member(current_caller(router), studio_id, pro_id)


@router.patch(
    "/studios/<studio_id>/members/<pro_id>",
    summary="Admins: change a member's role",
    responses=documented(200, 403, 404, 409),
)
def change_role(studio_id: StudioId, pro_id: ProId, data: RoleUpdate) -> Member:
    return studios.change_role(current_caller(router), studio_id, pro_id, data)


@router.delete(
    "/studios/<studio_id>/members/<pro_id>",
    summary="Leave (the pro) or remove a member (an admin); the clients are split by a job (202)",
    responses=documented(202, 403, 404, 409),
)
def leave(studio_id: StudioId, pro_id: ProId) -> Response[Member]:
    return json_response(202, departures.leave(current_caller(router), studio_id, pro_id))


@router.get(
    "/studios/<studio_id>/members/<pro_id>/departure",
    summary="Preview of a leave: which clients each side keeps, and why",
    responses=documented(200, 403, 404),
)
def departure_preview(
    studio_id: StudioId,
    pro_id: ProId,
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DeparturePreview:
    return departures.preview(current_caller(router), studio_id, pro_id, limit, cursor)


@router.post(
    "/studios/<studio_id>/owner",
    summary="The owner hands ownership to another admin",
    responses=documented(200, 403, 404, 409),
)
def transfer_ownership(studio_id: StudioId, data: OwnerTransfer) -> Studio:
    return studios.transfer_ownership(current_caller(router), studio_id, data.pro_id)


@router.get(
    "/studios/<studio_id>/clients",
    summary="The studio list: admins see all, others their assigned",
    responses=documented(200, 404),
)
def list_studio_clients(
    studio_id: StudioId,
    limit: Annotated[PageLimit, Query()] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="Name prefix.")] = None,
) -> ClientPage:
    return membership.list_studio_clients(current_caller(router), studio_id, limit, cursor, q)


@router.put(
    "/studios/<studio_id>/clients/<client_id>/assignees/<pro_id>",
    summary="Admins: assign a member",
    responses=documented(204, 403, 404, body=False),
)
def assign(studio_id: StudioId, client_id: ClientId, pro_id: ProId) -> Response[None]:
    membership.assign(current_caller(router), studio_id, client_id, pro_id)
    return Response(status_code=204)


@router.delete(
    "/studios/<studio_id>/clients/<client_id>/assignees/<pro_id>",
    summary="Admins: unassign a member",
    responses=documented(204, 403, 404, body=False),
)
def unassign(studio_id: StudioId, client_id: ClientId, pro_id: ProId) -> Response[None]:
    membership.unassign(current_caller(router), studio_id, client_id, pro_id)
    return Response(status_code=204)


@router.delete(
    "/studios/<studio_id>/clients/<client_id>",
    summary="Admins: delete a studio client, cascading (202)",
    responses=documented(202, 403, 404, 409, body=False),
)
def delete_studio_client(studio_id: StudioId, client_id: ClientId) -> Response[None]:
    membership.delete_studio_client(current_caller(router), studio_id, client_id)
    return Response(status_code=202)


app = make_resolver(router)
lambda_handler = make_handler(app)

coldstart.loaded()
