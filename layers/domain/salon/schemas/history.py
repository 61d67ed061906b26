"""History: appointments, purchases, packages, gift cards, and the Client Log that shows them all.

Money is always integer minor units with an ISO 4217 code: ``{"amount": 1250, "currency": "EUR"}``
is EUR 12.50. Prices inside a request (a service's ``price``, a product's ``unit_price``, a
package's ``price``) are such objects; a gift card is issued with the same two fields at the top
level (API.md). Floats, strings and negative amounts are a 422.
"""

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, StrictInt, StringConstraints, field_validator, model_validator

from salon.identity import PRO_ID_PATTERN
from salon.ids import ULID_PATTERN
from salon.schemas.clients import Client
from salon.schemas.common import ApiModel, ShortText

MAX_AMOUNT = 100_000_000  # one million in a two-decimal currency; far above any salon ticket
SLOT_MINUTES = 5
MAX_APPOINTMENT_MINUTES = 480  # 96 slots: the appointment, its checks and slots fit one transaction

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT, description="Integer minor units (cents).")]
PositiveAmount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT, description="Integer minor units (cents).")]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")]
ProId = Annotated[str, StringConstraints(pattern=PRO_ID_PATTERN)]
Ulid = Annotated[str, StringConstraints(pattern=ULID_PATTERN)]
AppointmentStatus = Literal["booked", "checked_in", "completed", "cancelled", "no_show"]


class Money(ApiModel):
    amount: Amount
    currency: Currency = Field(description="ISO 4217 code, 3 upper-case letters.")


def _one_currency(prices: list[Money]) -> str:
    currencies = {p.currency for p in prices}
    if len(currencies) != 1:
        raise ValueError("All prices of one request must be in the same currency.")
    return currencies.pop()


# ------------------------------------------------------------------ appointments
class ServiceIn(ApiModel):
    name: ShortText
    minutes: Annotated[StrictInt, Field(ge=SLOT_MINUTES, le=MAX_APPOINTMENT_MINUTES, multiple_of=SLOT_MINUTES)]
    price: Money


class AppointmentCreate(ApiModel):
    provider_id: ProId = Field(description="The pro who serves the client: the caller, or for an admin any member.")
    start: AwareDatetime = Field(description="With its UTC offset, on a 5-minute boundary.")
    services: list[ServiceIn] = Field(min_length=1, max_length=20)

    @field_validator("start")
    @classmethod
    def _on_the_grid(cls, value: dt.datetime) -> dt.datetime:
        if value.second or value.microsecond or value.minute % SLOT_MINUTES:
            raise ValueError("Appointments start on a 5-minute boundary.")
        return value

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if sum(s.minutes for s in self.services) > MAX_APPOINTMENT_MINUTES:
            raise ValueError(f"An appointment lasts at most {MAX_APPOINTMENT_MINUTES} minutes.")
        _one_currency([s.price for s in self.services])
        return self


class ServiceOut(ApiModel):
    name: str
    minutes: int
    price: Money


class AppointmentOut(ApiModel):
    appointment_id: str
    client_id: str
    provider_id: str
    booked_by: str
    start: dt.datetime
    end: dt.datetime
    minutes: int
    services: list[ServiceOut]
    total: Money
    status: AppointmentStatus
    created_at: dt.datetime
    updated_at: dt.datetime
    blocked: bool = Field(False, description="In the log: the caller is the provider and has since blocked the client.")


# --------------------------------------------------------------------- purchases
class PurchaseItemIn(ApiModel):
    sku: Sku
    name: ShortText
    quantity: Annotated[StrictInt, Field(ge=1, le=999)]
    unit_price: Money


class PurchaseCreate(ApiModel):
    """Either ``items``, or ``repeat_of``: the id of an earlier purchase of this client to sell again."""

    items: list[PurchaseItemIn] | None = Field(None, min_length=1, max_length=50)
    repeat_of: Ulid | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.items is None) == (self.repeat_of is None):
            raise ValueError("Send either items or repeat_of.")
        if self.items is not None:
            _one_currency([i.unit_price for i in self.items])
        return self


class PurchaseItemOut(ApiModel):
    sku: str
    name: str
    quantity: int
    unit_price: Money


class PurchaseOut(ApiModel):
    purchase_id: str
    client_id: str
    items: list[PurchaseItemOut]
    total: Money
    sold_by: str
    repeat_of: str | None = None
    created_at: dt.datetime


# ---------------------------------------------------------------------- packages
class PackageCreate(ApiModel):
    name: ShortText
    sessions: Annotated[StrictInt, Field(ge=1, le=1000)]
    expires_on: dt.date | None = Field(None, description="Last day it can be redeemed, in the studio's time zone.")
    price: Money


class PackageOut(ApiModel):
    package_id: str
    client_id: str
    name: str
    sessions: int
    sessions_left: int
    expires_on: dt.date | None = None
    price: Money
    sold_by: str
    created_at: dt.datetime
    last_redeemed_at: dt.datetime | None = None


# -------------------------------------------------------------------- gift cards
class GiftCardCreate(ApiModel):
    amount: PositiveAmount
    currency: Currency


class GiftCardRedeem(ApiModel):
    amount: PositiveAmount
    currency: Currency | None = Field(None, description="When sent, must be the card's currency.")


class GiftCardOut(ApiModel):
    gift_card_id: str
    client_id: str
    amount: Money
    balance: Money
    sold_by: str
    created_at: dt.datetime
    last_redeemed_at: dt.datetime | None = None


# -------------------------------------------------------------------- the log
class LogNote(ApiModel):
    note_id: str
    author_id: str
    body: str
    created_at: dt.datetime
    updated_at: dt.datetime


class LogFormula(ApiModel):
    """The current (latest) version of one colour formula."""

    formula_id: str
    version: int
    name: str
    body: str
    author_id: str
    created_at: dt.datetime
    updated_at: dt.datetime


class LogFile(ApiModel):
    upload_id: str
    content_type: str
    size: int
    filename: str | None = None
    profile: bool = False
    created_at: dt.datetime
    download_url: str | None = Field(None, description="Presigned GET, valid for at most 5 minutes.")
    thumbnail_url: str | None = None


class ClientLog(ApiModel):
    """Everything about one client, from one read. Past sections newest first, upcoming soonest first;
    each section holds at most ``section_limit`` entries and ``more`` names the sections that hold more."""

    client: Client
    profile_photo: LogFile | None = None
    past_services: list[AppointmentOut]
    upcoming_appointments: list[AppointmentOut]
    purchases: list[PurchaseOut]
    packages: list[PackageOut]
    gift_cards: list[GiftCardOut]
    notes: list[LogNote]
    formulas: list[LogFormula]
    files: list[LogFile]
    section_limit: int
    more: list[str] = Field(default_factory=list)
