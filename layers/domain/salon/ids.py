"""Server-generated ids: ULIDs, checked before any key is built from them."""

from __future__ import annotations

import re

from ulid import ULID

# Crockford base32, 26 characters, first one at most 7 (128 bits).
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
_ULID_RE = re.compile(ULID_PATTERN)


def new_id() -> str:
    """A new ULID: sortable by creation time, 80 random bits."""
    return str(ULID())


def is_ulid(value: str) -> bool:
    return bool(_ULID_RE.match(value))
