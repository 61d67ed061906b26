"""Time to Live in the local stack: moto accepts UpdateTimeToLive but never deletes an expired item.

A sweeper deletes every item whose TTL attribute (the table's TimeToLiveSpecification) holds an
epoch-seconds number at or before the stack's time (``devstack.clock.now()``, which
``POST /__devstack/clock`` moves), as DynamoDB's TTL process does
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html):

- an attribute that is not a Number, or a time more than five years in the past, is ignored;
- the delete is a REMOVE stream record whose ``userIdentity`` is ``{"Type": "Service", "PrincipalId":
  "dynamodb.amazonaws.com"}`` in GetRecords (API_streams_Record.html / API_streams_Identity.html; a Lambda
  event spells it ``{"type": ..., "principalId": ...}``), and it leaves the indexes in the same eventually
  consistent way as any delete;
- it is conditional on the item still being expired, so a write that extended it wins.

AWS deletes expired items within a few days; the local stack within :data:`INTERVAL_S` or so. Code must
rely on neither: until it is deleted an expired item still shows in reads, queries and scans.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from devstack import clock

INTERVAL_S = 1.0
FIVE_YEARS_S = 5 * 365 * 24 * 3600
TTL_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}  # the Streams API's Identity shape

log = logging.getLogger("devstack.ttl")


def _backends() -> list[Any]:
    from moto.dynamodb.models import dynamodb_backends

    out = []
    for account in list(dynamodb_backends.values()):
        out.extend(list(account.values()))
    return out


def sweep(now: float | None = None) -> int:
    """Delete every expired item now; returns how many were deleted."""
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    from devstack.moto_patches import _lock

    now = clock.now() if now is None else now
    deleted = 0
    for backend in _backends():
        for table in list(backend.tables.values()):
            ttl = getattr(table, "ttl", None) or {}
            if ttl.get("TimeToLiveStatus") != "ENABLED" or not ttl.get("AttributeName"):
                continue
            attr = ttl["AttributeName"]
            with _lock:  # moto's item dict must not change while it is read
                expired = []
                for item in table.all_items():
                    value = item.attrs.get(attr)
                    if value is None or value.type != "N":
                        continue
                    try:
                        at = float(value.value)
                    except ValueError:
                        continue
                    if now - FIVE_YEARS_S <= at <= now:
                        expired.append((item, value.value))
            for item, raw in expired:
                key = {table.hash_key_attr: item.hash_key.to_json()}
                if table.range_key_attr:
                    key[table.range_key_attr] = item.range_key.to_json()
                with _lock:  # the stream record marked is the one this delete added
                    try:
                        backend.delete_item(
                            table.name,
                            key,
                            expression_attribute_names={"#ttl": attr},
                            expression_attribute_values={":ttl": {"N": raw}},
                            condition_expression="#ttl = :ttl",
                        )
                    except ConditionalCheckFailed:
                        continue  # changed meanwhile: no longer this expiry
                    live = backend.tables.get(table.name)
                    shard = live.stream_shard if live is not None else None
                    if shard is not None and shard.items:
                        shard.items[-1].record["userIdentity"] = dict(TTL_IDENTITY)
                deleted += 1
    return deleted


class TtlSweeper(threading.Thread):
    """Runs :func:`sweep` every :data:`INTERVAL_S` until ``stop`` is set."""

    def __init__(self, stop: threading.Event, interval_s: float = INTERVAL_S) -> None:
        super().__init__(name="ttl-sweeper", daemon=True)
        self.stop_event = stop
        self.interval_s = interval_s
        self.sweeps = 0

    def run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            try:
                if sweep():
                    log.debug("ttl: deleted expired items")
            except Exception:
                log.exception("ttl sweep failed")
            self.sweeps += 1
