"""The local stack's fault configuration: where moto is kinder than AWS, the stack is not.

``DEVSTACK_FAULTS`` names the lags and the fault rates, for example
``DEVSTACK_FAULTS=gsi_lag_ms=800,read_lag_ms=50,conflict=0.05,throttle=0.02,seed=1234``.
``off`` (or an empty value) means no faults, ``default`` means :data:`DEFAULT_FAULTS`, and a
list may start with ``default`` to change some of them (``default,throttle=0.1``). Kinds not
named are off. Unset means :data:`EFFECTIVE_DEFAULT`.

Every draw comes from a seeded RNG, one stream per kind (so the draws of one kind do not depend
on how many of another were made): the seed is printed by ``make dev``, answered by
``GET /__devstack/faults`` and printed by the tests, and ``seed=N`` replays a run. Each fault
that fires is counted by kind.

Faults only ever exist in the local stack: nothing here is imported by deployed code.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    unit: str  # "ms" for a lag, "rate" for a probability per call
    meaning: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "gsi_lag_ms",
            "ms",
            "index reads (Query/Scan with IndexName) see a write only after a lag drawn per write "
            "between half and all of this",
        ),
        Kind(
            "read_lag_ms",
            "ms",
            "base-table reads without ConsistentRead (GetItem, BatchGetItem, Query, Scan) see a write "
            "only after a lag drawn per write between half and all of this",
        ),
        Kind(
            "conflict",
            "rate",
            "a write to an item a transaction touched in the last 100 ms fails with TransactionConflictException; "
            "a transaction overlapping one is cancelled with TransactionConflict reasons",
        ),
        Kind(
            "throttle",
            "rate",
            "any DynamoDB data call fails with ProvisionedThroughputExceededException "
            "(a transaction is cancelled with a ThrottlingError reason)",
        ),
        Kind(
            "unprocessed",
            "rate",
            "a BatchWriteItem / BatchGetItem answers a random part of its requests as "
            "UnprocessedItems / UnprocessedKeys",
        ),
        Kind("duplicate", "rate", "an SQS message is delivered a second time (standard queues: at least once)"),
        Kind("reorder", "rate", "a received SQS batch is handed over out of order"),
    )
}

# The intended defaults: on in `make dev` and the tests, small enough that the code's retries absorb them.
DEFAULT_FAULTS = "gsi_lag_ms=300,read_lag_ms=30,conflict=0.02,throttle=0.01,unprocessed=0.05,duplicate=0.05,reorder=0.1"
EFFECTIVE_DEFAULT = DEFAULT_FAULTS  # on in make dev and the tests; DEVSTACK_FAULTS=off turns them off

_lock = threading.Lock()
_settings: dict[str, float] | None = None
_seed = 0
_rngs: dict[str, random.Random] = {}
_counts: dict[str, int] = {}


def parse(spec: str) -> tuple[dict[str, float], int | None]:
    """``"gsi_lag_ms=800,conflict=0.05,seed=3"`` -> ({kind: value for every kind}, seed or None)."""
    values = dict.fromkeys(KINDS, 0.0)
    seed: int | None = None
    spec = spec.strip()
    if spec.lower() in ("", "off", "none", "0"):
        return values, None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if parts and parts[0].lower() == "default":
        values, _ = parse(DEFAULT_FAULTS)
        parts = parts[1:]
    for part in parts:
        name, sep, raw = part.partition("=")
        name = name.strip().lower()
        if not sep:
            raise ValueError(f"DEVSTACK_FAULTS: {part!r} is not kind=value")
        if name == "seed":
            seed = int(raw)
            continue
        if name not in KINDS:
            raise ValueError(f"DEVSTACK_FAULTS: unknown kind {name!r} (known: {', '.join(KINDS)}, seed)")
        value = float(raw)
        if value < 0 or (KINDS[name].unit == "rate" and value > 1):
            raise ValueError(f"DEVSTACK_FAULTS: {name}={raw} is out of range")
        values[name] = value
    return values, seed


def configure(spec: str | None = None, seed: int | None = None) -> dict[str, float]:
    """(Re)load the settings: from ``spec``, else ``DEVSTACK_FAULTS``, else :data:`EFFECTIVE_DEFAULT`.

    Resets the counters and reseeds (``seed``, else the spec's ``seed=``, else a fresh random one)."""
    global _settings, _seed
    if spec is None:
        spec = os.environ.get("DEVSTACK_FAULTS")
    if spec is None:
        spec = EFFECTIVE_DEFAULT
    values, spec_seed = parse(spec)
    chosen = seed if seed is not None else spec_seed
    if chosen is None:
        chosen = random.SystemRandom().randrange(1, 10**9)
    with _lock:
        _settings = values
        _seed = chosen
        _rngs.clear()
        _counts.clear()
    return dict(values)


def _loaded() -> dict[str, float]:
    if _settings is None:
        configure()
    assert _settings is not None
    return _settings


def settings() -> dict[str, float]:
    """Every kind with its value in force (0 = off)."""
    return dict(_loaded())


def seed() -> int:
    _loaded()
    return _seed


def rate(kind: str) -> float:
    """The value in force for ``kind`` (a probability, or a lag in ms)."""
    if kind not in KINDS:
        raise KeyError(f"unknown fault kind {kind!r}")
    return _loaded()[kind]


def enabled() -> bool:
    return any(v > 0 for v in _loaded().values())


def _rng(kind: str) -> random.Random:
    rng = _rngs.get(kind)
    if rng is None:
        rng = _rngs[kind] = random.Random(f"{_seed}:{kind}")  # noqa: S311 - a replayable draw, not a secret
    return rng


def draw(kind: str) -> float:
    """A uniform number in [0, 1) from ``kind``'s seeded stream (for lags and subsets)."""
    _loaded()
    with _lock:
        return _rng(kind).random()


def hit(kind: str) -> bool:
    """Whether the fault ``kind`` fires now (drawn with the seeded RNG); counted when it does."""
    p = rate(kind)
    if p <= 0:
        return False
    with _lock:
        fired = _rng(kind).random() < p
        if fired:
            _counts[kind] = _counts.get(kind, 0) + 1
    return fired


def count(kind: str, n: int = 1) -> None:
    """Count ``n`` injected faults of ``kind`` (for faults decided without :func:`hit`, e.g. a lagged read)."""
    with _lock:
        _counts[kind] = _counts.get(kind, 0) + n


def counts() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def reset_counts() -> None:
    with _lock:
        _counts.clear()


def report() -> dict[str, object]:
    """What ``GET /__devstack/faults`` answers."""
    return {"settings": settings(), "seed": seed(), "injected": counts()}


def describe() -> str:
    """One line for ``make dev``: the values in force and the seed that replays the run."""
    on = {k: v for k, v in settings().items() if v > 0}
    if not on:
        return f"off (DEVSTACK_FAULTS=default turns on {DEFAULT_FAULTS})"
    shown = ",".join(f"{k}={v:g}" for k, v in on.items())
    return f"{shown}  seed={seed()}  (replay: DEVSTACK_FAULTS={shown},seed={seed()})"
