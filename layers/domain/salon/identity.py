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
    """HTTP API hands array claims to Lambda as a string such as ``[a b]``."""
    if raw is None:
        return frozenset()
    if isinstance(raw, list):
        return frozenset(str(g) for g in raw)
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return frozenset(g.strip(" \"'") for g in re.split(r"[,\s]+", text) if g.strip(" \"'"))


def caller_from_event(event: dict[str, Any]) -> Caller:
    """The caller of an HTTP API event, or 401 when the authorizer left no subject."""
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _PRO_ID_RE.match(sub):
        raise Unauthorized()
    return Caller(pro_id=sub, groups=_parse_groups(claims.get("cognito:groups")))
