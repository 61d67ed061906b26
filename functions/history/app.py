"""History: appointments and their status, product sales, packages and gift cards of a client."""

from __future__ import annotations

import gc

gc.disable()  # until the handler is built: see salon.coldstart

from salon import coldstart

coldstart.starting()  # Powertools' packages load only the modules this function uses

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from salon.api import RouteAccess, current_caller, json_response, make_handler, make_resolver
from salon.ids import ULID_PATTERN
from salon.schemas.common import ErrorBody
from salon.schemas.history import (
    AppointmentCreate,
    AppointmentOut,
    GiftCardCreate,
    GiftCardOut,
    GiftCardRedeem,
    PackageCreate,
    PackageOut,
    PurchaseCreate,
    PurchaseOut,
)
from salon.services import history

router = Router()
ClientId = Annotated[str, Path(pattern=ULID_PATTERN, description="A client's ULID.")]
ItemId = Annotated[str, Path(pattern=ULID_PATTERN, description="A ULID.")]
ActionName = Annotated[str, Path(pattern="^(check-in|complete|cancel|no-show)$", description="What happened.")]


def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


ERRORS: dict[int, OpenAPIResponse] = {
    403: _error("The caller's role may not do this."),
    404: _error("No such client (or not one the caller may see), or no such item."),
    422: _error("Invalid input: money, dates, limits."),
}
BOOKING: dict[int, OpenAPIResponse] = {
    **ERRORS,
    201: {"description": "Booked."},
    409: _error("`slot_taken` or `client_blocked`."),
}
ACTION: dict[int, OpenAPIResponse] = {**ERRORS, 409: _error("`invalid_transition` or `check_in_window`.")}
SALE: dict[int, OpenAPIResponse] = {**ERRORS, 201: {"description": "Sold."}}


@router.post("/clients/<client_id>/appointments", summary="Book an appointment", responses=BOOKING)
def book(client_id: ClientId, data: AppointmentCreate) -> Response[AppointmentOut]:
    return json_response(201, history.book_appointment(current_caller(router), client_id, data))


@router.post(
    "/clients/<client_id>/appointments/<appointment_id>/<action>",
    summary="Check in, complete, cancel or mark a no-show",
    responses=ACTION,
)
def act(client_id: ClientId, appointment_id: ItemId, action: ActionName) -> AppointmentOut:
    return history.act_on_appointment(current_caller(router), client_id, appointment_id, action)


@router.post("/clients/<client_id>/purchases", summary="Sell products, or repeat an earlier purchase", responses=SALE)
def purchase(client_id: ClientId, data: PurchaseCreate) -> Response[PurchaseOut]:
    return json_response(201, history.sell_products(current_caller(router), client_id, data))


@router.post("/clients/<client_id>/packages", summary="Sell a package of sessions", responses=SALE)
def package(client_id: ClientId, data: PackageCreate) -> Response[PackageOut]:
    return json_response(201, history.sell_package(current_caller(router), client_id, data))


@router.post(
    "/clients/<client_id>/packages/<package_id>/redemptions",
    summary="Redeem one session of a package",
    responses={**ERRORS, 409: _error("`package_exhausted` or `package_expired`.")},
)
def redeem_session(client_id: ClientId, package_id: ItemId) -> PackageOut:
    return history.redeem_session(current_caller(router), client_id, package_id)


@router.post("/clients/<client_id>/gift-cards", summary="Issue a gift card", responses=SALE)
def gift_card(client_id: ClientId, data: GiftCardCreate) -> Response[GiftCardOut]:
    return json_response(201, history.issue_gift_card(current_caller(router), client_id, data))


@router.post(
    "/clients/<client_id>/gift-cards/<gift_card_id>/redemptions",
    summary="Redeem part of a gift card's balance",
    responses={**ERRORS, 409: _error("`insufficient_balance`.")},
)
def redeem_gift_card(client_id: ClientId, gift_card_id: ItemId, data: GiftCardRedeem) -> GiftCardOut:
    return history.redeem_gift_card(current_caller(router), client_id, gift_card_id, data)


app = make_resolver(router)

_BOOK = RouteAccess(allow=lambda access: access.can_book, message="Your role may not book or change appointments.")
_SELL = RouteAccess(allow=lambda access: access.can_sell, message="Your role may not sell or redeem.")
# Role rules run with the access read, before validation (SPEC.md: access is checked first).
lambda_handler = make_handler(
    app,
    {
        "POST /clients/{client_id}/appointments": _BOOK,
        "POST /clients/{client_id}/appointments/{appointment_id}/{action}": _BOOK,
        "POST /clients/{client_id}/purchases": _SELL,
        "POST /clients/{client_id}/packages": _SELL,
        "POST /clients/{client_id}/packages/{package_id}/redemptions": _SELL,
        "POST /clients/{client_id}/gift-cards": _SELL,
        "POST /clients/{client_id}/gift-cards/{gift_card_id}/redemptions": _SELL,
    },
)

coldstart.loaded()
