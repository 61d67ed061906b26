"""Batch reads and writes with DynamoDB's limits (100 keys, 25 writes) and backoff on unprocessed items."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

from salon.data.connection import table_connection
from salon.data.models import TableItem
from salon.settings import get_settings

MAX_ATTEMPTS = 8


class UnprocessedItems(Exception):
    """DynamoDB kept refusing part of a batch; the caller's retry (the stream's) takes over."""


def _backoff(attempt: int) -> None:
    time.sleep(min(2.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto


def batch_get(keys: Sequence[tuple[str, str]], *, consistent: bool = False) -> dict[tuple[str, str], TableItem]:
    """Items by key, 100 keys a call, unprocessed keys retried with backoff; ``consistent`` reads strongly."""
    found: dict[tuple[str, str], TableItem] = {}
    for start in range(0, len(keys), 100):
        for item in TableItem.batch_get(list(keys[start : start + 100]), consistent_read=consistent):
            found[(item.pk, item.sk)] = item
    return found


def batch_get_projected(
    keys: Sequence[tuple[str, str]], attributes: Sequence[str], *, consistent: bool = False
) -> list[dict[str, Any]]:
    """Low-level items holding only ``attributes`` (and their keys), 100 keys a call, unprocessed keys retried
    with backoff. For reads that decide and never show: DynamoDB sends (and moto serializes) only what is asked.
    ``consistent`` reads strongly consistently (twice the read units)."""
    names = {f"#a{i}": name for i, name in enumerate(("pk", "sk", *attributes))}
    projection = ", ".join(names)
    client = table_connection().client
    table = TableItem.Meta.table_name
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {
            "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys[start : start + 100]],
            "ProjectionExpression": projection,
            "ExpressionAttributeNames": names,
        }
        if consistent:
            request["ConsistentRead"] = True
        for attempt in range(MAX_ATTEMPTS):
            resp = client.batch_get_item(RequestItems={table: request})
            found += resp.get("Responses", {}).get(table, [])
            pending = resp.get("UnprocessedKeys", {}).get(table, {}).get("Keys")
            if not pending:
                break
            request = {**request, "Keys": pending}
            _backoff(attempt)
        else:
            raise UnprocessedItems(f"{len(pending)} reads still unprocessed")
    return found


def write_batch(
    puts: Iterable[TableItem] = (),
    deletes: Iterable[tuple[str, str]] = (),
    raw_puts: Iterable[dict[str, Any]] = (),
) -> int:
    """Unconditional puts and deletes, 25 a call; returns the number of BatchWriteItem calls.
    ``raw_puts`` are low-level items written as they are (copies keep every attribute)."""
    size = get_settings().fanout_batch_size
    requests: list[dict[str, Any]] = [{"PutRequest": {"Item": item.serialize()}} for item in puts]
    requests += [{"PutRequest": {"Item": raw}} for raw in raw_puts]
    requests += [{"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for pk, sk in deletes]
    calls = 0
    client = table_connection().client
    table = TableItem.Meta.table_name
    for start in range(0, len(requests), size):
        chunk = requests[start : start + size]
        for attempt in range(MAX_ATTEMPTS):
            calls += 1
            resp = client.batch_write_item(RequestItems={table: chunk})
            chunk = resp.get("UnprocessedItems", {}).get(table, [])
            if not chunk:
                break
            _backoff(attempt)
        else:
            raise UnprocessedItems(f"{len(chunk)} writes still unprocessed")
    return calls
