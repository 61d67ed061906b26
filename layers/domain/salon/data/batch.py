"""Batch reads and writes with DynamoDB's limits (100 keys, 25 writes) and backoff on unprocessed items.

DynamoDB answers a batch it cannot fully serve (throughput, a partition's limits) with ``UnprocessedKeys`` /
``UnprocessedItems``, and asks for exponential backoff before sending them again
(https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html). pynamodb's own
``batch_get`` resends them at once, in a loop without bound; every batch here goes through :func:`_backoff` and
gives up after ``MAX_ATTEMPTS`` with :class:`UnprocessedItems`, a 503 ``throttled`` on a route.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from salon.data.connection import table_connection
from salon.data.models import TableItem
from salon.data.retry import Throttled, backoff
from salon.settings import get_settings

MAX_ATTEMPTS = 8


class UnprocessedItems(Throttled):
    """DynamoDB kept refusing part of a batch through every retry: a 503 on a route; in a job or the stream
    consumer the message's (the stream's) retry takes over."""


def _backoff(attempt: int) -> None:
    time.sleep(backoff(attempt))


def _get_pages(request: dict[str, Any], keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Low-level items of ``keys`` (100 a call; ``request`` holds the call's other parameters), unprocessed
    keys sent again with backoff."""
    client = table_connection().client
    table = TableItem.Meta.table_name
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        ask: dict[str, Any] = {
            **request,
            "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys[start : start + 100]],
        }
        for attempt in range(MAX_ATTEMPTS):
            resp = client.batch_get_item(RequestItems={table: ask})
            found += resp.get("Responses", {}).get(table, [])
            pending = resp.get("UnprocessedKeys", {}).get(table, {}).get("Keys")
            if not pending:
                break
            ask = {**ask, "Keys": pending}
            if attempt + 1 < MAX_ATTEMPTS:
                _backoff(attempt)
        else:
            raise UnprocessedItems(details={"unprocessed_reads": len(pending)})
    return found


def batch_get(keys: Sequence[tuple[str, str]], *, consistent: bool = False) -> dict[tuple[str, str], TableItem]:
    """Items by key, 100 keys a call, unprocessed keys retried with backoff; ``consistent`` reads strongly."""
    request: dict[str, Any] = {"ConsistentRead": True} if consistent else {}
    found: dict[tuple[str, str], TableItem] = {}
    for raw in _get_pages(request, keys):
        item = TableItem.from_raw_data(raw)
        found[(item.pk, item.sk)] = item
    return found


def batch_get_projected(
    keys: Sequence[tuple[str, str]], attributes: Sequence[str], *, consistent: bool = False
) -> list[dict[str, Any]]:
    """Low-level items holding only ``attributes`` (and their keys), 100 keys a call, unprocessed keys retried
    with backoff. For reads that decide and never show: DynamoDB sends (and moto serializes) only what is asked.
    ``consistent`` reads strongly consistently (twice the read units)."""
    names = {f"#a{i}": name for i, name in enumerate(("pk", "sk", *attributes))}
    request: dict[str, Any] = {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    if consistent:
        request["ConsistentRead"] = True
    return _get_pages(request, keys)


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
            if attempt + 1 < MAX_ATTEMPTS:
                _backoff(attempt)
        else:
            raise UnprocessedItems(details={"unprocessed_writes": len(chunk)})
    return calls
