"""Server-generated ids: ULIDs, checked before any key is built from them."""

from __future__ import annotations

import re

# Crockford base32, 26 characters, first one at most 7 (128 bits).
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
_ULID_RE = re.compile(ULID_PATTERN)


def new_id() -> str:
    """A new ULID: sortable by creation time, 80 random bits."""
    # Imported on first use: python-ulid looks its own version up in the installed packages' metadata at
    # import, which read-only routes need not pay for at cold start.
    from ulid import ULID

    return str(ULID())


def is_ulid(value: str) -> bool:
    return bool(_ULID_RE.match(value))
