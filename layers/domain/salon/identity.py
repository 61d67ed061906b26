"""Who is calling: taken only from the claims the API's JWT authorizer validated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from salon.errors import Unauthorized

# Cognito subs are UUIDs; local tokens use short names. Never a key separator.
PRO_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_PRO_ID_RE = re.compile(PRO_ID_PATTERN)


@dataclass(frozen=True)
class Caller:
    pro_id: str
    groups: frozenset[str] = frozenset()

    @property
    def is_operator(self) -> bool:
        return "operators" in self.groups


def _parse_groups(raw: Any) -> frozenset[str]:
    """The groups exactly as API Gateway's JWT authorizer passes them.

    HTTP API hands an array claim to Lambda as one string, its items joined by single spaces inside
    brackets: ``["ops,operators", "admins"]`` arrives as ``[ops,operators admins]``. Cognito group names
    match ``[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+`` (CreateGroup): they may hold commas, quotes and brackets but
    never whitespace, so splitting on spaces alone is exact, and ``ops,operators`` is one group, not
    ``operators``. A real list (a direct invocation) is taken item by item.
    """
    if raw is None:
        return frozenset()
    if isinstance(raw, list):
        return frozenset(str(g) for g in raw)
    text = str(raw)
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return frozenset(g for g in text.split(" ") if g)


def caller_from_event(event: dict[str, Any]) -> Caller:
    """The caller of an HTTP API event, or 401 when the authorizer left no subject."""
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _PRO_ID_RE.match(sub):
        raise Unauthorized()
    return Caller(pro_id=sub, groups=_parse_groups(claims.get("cognito:groups")))
