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
    """Make ``salon.clock`` in this process read the stack's time (or ``offset`` handed from the stack).

    botocore's signing clock follows it too (:func:`_sign_with_stack_time`): a presigned URL or
    POST made by a handler after ``POST /__devstack/clock`` carries the stack's ``X-Amz-Date`` and
    expiration, so the emulator's S3 (which measures expiry on :func:`now`) finds it fresh, as AWS
    finds a link signed a moment ago.
    """
    from salon import clock as salon_clock

    salon_clock._offset_s = _offset_s if offset is None else offset
    _sign_with_stack_time()


_signing_patched = False


def _sign_with_stack_time() -> None:
    """Point ``botocore.auth`` and ``botocore.signers`` at a clock shifted by ``salon.clock``'s offset (once)."""
    global _signing_patched
    if _signing_patched:
        return
    import datetime as dt

    import botocore.auth
    import botocore.signers

    from salon import clock as salon_clock

    def get_current_datetime(remove_tzinfo: bool = True) -> dt.datetime:
        current = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=salon_clock._offset_s)
        return current.replace(tzinfo=None) if remove_tzinfo else current

    botocore.auth.get_current_datetime = get_current_datetime
    botocore.signers.get_current_datetime = get_current_datetime
    _signing_patched = True
