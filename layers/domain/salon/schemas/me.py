"""The caller."""

from typing import Literal

from salon.schemas.common import ApiModel

Plan = Literal["basic", "premium"]
Role = Literal["admin", "provider", "apprentice", "assistant"]


class Me(ApiModel):
    pro_id: str
    studio_id: str | None = None
    role: Role | None = None
    plan: Plan
