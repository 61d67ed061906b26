"""Time, in one place, so tests can reason about it.

Every rule that needs "now" (expiries, check-in days, feed cursors, 30-day
windows) reads it here. The local stack can move this clock forward
(``POST /__devstack/clock``) by setting :data:`_offset_s` in the process that
runs the handlers; nothing in a deployed stack ever sets it, so it is 0 there.
"""

from __future__ import annotations

import datetime as dt
import time

_offset_s: float = 0.0  # set only by the local stack's clock (devstack.clock)


def epoch_s() -> float:
    """Seconds since the epoch."""
    return time.time() + _offset_s


def now() -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_s(), dt.UTC)


def now_iso() -> str:
    return now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_us() -> int:
    """Microseconds since the epoch: the change feed's clock."""
    return time.time_ns() // 1000 + int(_offset_s * 1_000_000)
