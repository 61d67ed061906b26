"""Clients: profile in, profile out, pages of profiles."""

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from salon.schemas.common import ApiModel, ShortText, Tag

Phone = Annotated[str, StringConstraints(min_length=3, max_length=32)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254)]
Allergy = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ClientCreate(ApiModel):
    name: ShortText
    phone: Phone | None = None
    email: Email | None = None
    birthday: dt.date | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    allergies: list[Allergy] = Field(default_factory=list, max_length=20)
    marketing_consent: bool = False

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if not self.phone and not self.email:
            raise ValueError("A client needs a phone or an email.")
        return self


class Client(ApiModel):
    client_id: str
    name: str
    phone: str | None = Field(None, description="E.164; masked for apprentices and assistants.")
    email: str | None = Field(
        None,
        description="Lower-cased, an internationalised domain in its IDNA form (`xn--`); masked for apprentices "
        "and assistants.",
    )
    birthday: dt.date | None = None
    tags: list[str] = Field(default_factory=list)
    allergies: list[str] = Field(default_factory=list)
    marketing_consent: bool = False
    book: Literal["personal", "studio"]
    studio_id: str | None = None
    masked: bool = Field(False, description="True when phone and email were hidden for the caller's role.")
    blocked: bool = Field(False, description="The caller blocked this client (no new bookings between them).")
    version: int = Field(description="Send it back in If-Match to edit the client.")
    created_at: dt.datetime
    updated_at: dt.datetime


class ClientPage(ApiModel):
    items: list[Client]
    next_cursor: str | None = None


class ClientUpdate(ApiModel):
    """A partial update: only the fields sent change; ``null`` clears an optional field."""

    name: ShortText | None = None
    phone: Phone | None = None
    email: Email | None = None
    birthday: dt.date | None = None
    tags: list[Tag] | None = Field(None, max_length=20)
    allergies: list[Allergy] | None = Field(None, max_length=20)
    marketing_consent: bool | None = None


class Block(ApiModel):
    client_id: str
    blocked: bool


class Change(ApiModel):
    """One entry of the change feed. Apply in order; an upsert older than what the app holds is skipped."""

    op: Literal["upsert", "delete", "flags"]
    client_id: str
    version: int | None = None
    client: Client | None = None
    blocked: bool | None = None
    changed_at: dt.datetime


class ChangePage(ApiModel):
    items: list[Change]
    cursor: str = Field(description="Pass it back as `since` for the next changes.")
    has_more: bool
