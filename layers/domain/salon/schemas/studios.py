"""Studios, invites and members."""

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from salon.schemas.common import ApiModel, ShortText
from salon.schemas.departures import DepartureSummary
from salon.schemas.me import Plan, Role

Country = Annotated[str, StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")]


class StudioCreate(ApiModel):
    name: ShortText
    country: Country = Field("US", description="ISO 3166 country: phone numbers are read in its plan.")
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        "UTC", description="IANA time zone: 'today' for check-ins and packages."
    )

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        import phonenumbers

        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("Not a country with phone numbers.")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("Not an IANA time zone.") from None
        return value


class Studio(ApiModel):
    studio_id: str
    name: str
    country: str
    time_zone: str
    plan: Plan
    owner_id: str
    role: Role = Field(description="The caller's role in the studio.")


class PlanUpdate(ApiModel):
    plan: Plan


class PlanOut(ApiModel):
    plan: Plan


class InviteCreate(ApiModel):
    role: Role


class Invite(ApiModel):
    code: str = Field(description="Single use; at least 60 random bits.")
    role: Role
    expires_at: dt.datetime


class JoinRequest(ApiModel):
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ImportSummary(ApiModel):
    status: Literal["pending", "running", "done"]
    imported: int
    merged: int
    conflicts: int


class StalledJob(ApiModel):
    job: Literal["import", "departure"]
    retries: int = Field(description="Times the sweeper has resent the job's next chunk.")
    last_progress_at: dt.datetime = Field(description="When the job last moved on.")


class Member(ApiModel):
    studio_id: str
    pro_id: str
    role: Role
    status: Literal["active", "leaving", "left"]
    joined_at: dt.datetime
    import_: ImportSummary = Field(alias="import", serialization_alias="import")
    departure: DepartureSummary | None = Field(None, description="Set once the member leaves or is removed.")
    stalled: StalledJob | None = Field(
        None,
        description="Set while the import or the departure makes no progress and is being resumed by itself; "
        "writes to the pro's not-yet-moved clients keep answering 409 import_in_progress until it is done.",
    )

    model_config = ApiModel.model_config | {"populate_by_name": True}


class MemberPage(ApiModel):
    items: list[Member]
    next_cursor: str | None = None


class RoleUpdate(ApiModel):
    role: Role


class OwnerTransfer(ApiModel):
    pro_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
