"""Time, in one place, so tests can reason about it."""

from __future__ import annotations

import datetime as dt
import time


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def now_iso() -> str:
    return now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_us() -> int:
    """Microseconds since the epoch: the change feed's clock."""
    return time.time_ns() // 1000
