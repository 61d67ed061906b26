"""A member's departure: its progress on the member, and the preview of who keeps which client."""

from typing import Literal

from pydantic import Field

from salon.schemas.common import ApiModel

Reason = Literal[
    "created_by_pro",
    "brought_by_pro",
    "merged_by_pro",
    "added_by_other",
    "other_history",
    "open_balance",
]


class DepartureSummary(ApiModel):
    status: Literal["running", "done"] = Field(description="running while clients are being split; done after.")
    kept_by_pro: int = Field(description="Clients the pro took as new personal clients (some also stay).")
    kept_by_studio: int = Field(description="Clients that stay in the studio's book.")
    left_with_pro: int = Field(description="Clients that left the studio with the pro (the studio's record deleted).")


class DepartureClient(ApiModel):
    client_id: str
    name: str
    pro_keeps: bool = Field(description="The pro gets a new personal client with their own work on it.")
    studio_keeps: bool = Field(description="The studio's record stays (the pro is unassigned).")
    reasons: list[Reason] = Field(
        description="Why: created_by_pro, brought_by_pro or merged_by_pro (the pro keeps); added_by_other, "
        "other_history or open_balance (the studio keeps). A client neither side's reasons name for the studio "
        "leaves the studio with the pro."
    )


class DeparturePreview(ApiModel):
    studio_id: str
    pro_id: str
    items: list[DepartureClient]
    next_cursor: str | None = None
