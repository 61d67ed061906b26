"""The local stack's clock: ``POST /__devstack/clock {"advance_s": N}`` moves it forward.

Handlers read time through ``salon.clock``, whose offset the local stack sets
before each invocation (:func:`apply`) to the offset held here; the emulator's
expiries (presigned URLs, TTLs) read :func:`now`. Local only: a deployed stack
has no such route and ``salon.clock``'s offset stays 0 there.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_offset_s = 0.0


def offset_s() -> float:
    return _offset_s


def advance(seconds: float) -> float:
    """Move the clock forward (never back: a clock that goes back breaks every cursor); returns the offset."""
    global _offset_s
    if seconds < 0:
        raise ValueError("the clock only moves forward")
    with _lock:
        _offset_s += seconds
        return _offset_s


def now() -> float:
    """The stack's time, seconds since the epoch."""
    return time.time() + _offset_s


def apply(offset: float | None = None) -> None:
    """Make ``salon.clock`` in this process read the stack's time (or ``offset`` handed from the stack)."""
    from salon import clock as salon_clock

    salon_clock._offset_s = _offset_s if offset is None else offset
