"""DynamoDB as AWS serves it, not as moto does: lagging reads, transaction conflicts, throttles and
unprocessed batch items, at the rates of :mod:`devstack.faults`. Patched into the embedded moto
server only (moto runs in the local stack's own process).

What AWS does, and what is emulated here:

- Read consistency (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html):
  global secondary indexes are always eventually consistent; base-table reads without
  ``ConsistentRead`` may miss a recent write. Every write is logged with the item's image before
  it and two moments it becomes visible: to index reads after a lag drawn between half and all
  of ``gsi_lag_ms``, to eventually consistent base-table reads after one drawn between half and
  all of ``read_lag_ms`` (never earlier than the key's previous write, so a key's writes show in
  order). A lagged read runs moto's own Query/Scan/GetItem logic over the table as it was for
  that reader: each key changed by a write not yet visible answers its image before the oldest
  such write. Pagination, Limit, projections and Select COUNT are moto's, over that state.
  ``ConsistentRead=true`` on a GSI is a ValidationException (moto already answers AWS's).
- Transaction conflicts (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html,
  "Transaction conflict handling"): moto applies a transaction at once, so "in flight" is
  emulated as the :data:`TX_WINDOW_S` after it committed. A PutItem/UpdateItem/DeleteItem on such
  an item fails at rate ``conflict`` with TransactionConflictException; a TransactWriteItems
  overlapping one is cancelled at that rate with a ``TransactionConflict`` reason for each
  overlapping action and ``None`` for the others. Nothing of it is written.
- Throttling (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TroubleshootingThrottling.html):
  on-demand tables without a maximum throughput throttle on hot key ranges with
  ProvisionedThroughputExceededException and a ``ThrottlingReasons`` list
  (``TableReadKeyRangeThroughputExceeded`` ...); a transaction is cancelled with a
  ``ThrottlingError`` reason. botocore retries these itself (legacy and standard modes); it
  does not retry TransactionConflictException nor TransactionCanceledException.
- Unprocessed batch items (BatchWriteItem / BatchGetItem API reference): a batch call answers
  part of its requests in UnprocessedItems / UnprocessedKeys, a random part (never all of them:
  when nothing can be processed AWS answers ProvisionedThroughputExceededException, which is
  ``throttle``'s business).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from devstack import faults

TX_WINDOW_S = 0.1  # how long a committed transaction's items count as "in flight"
THROTTLE_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your "
    "table or index so please try again shortly. If exceptions persist, check if you have a hot key: "
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)
CONFLICT_MESSAGE = "Transaction is ongoing for the item"
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"

_local = threading.local()  # .views: {table name: "gsi" | "read"} while a read handler runs; .pending: tx entries
_log_lock = threading.Lock()


@dataclass
class _Entry:
    key: tuple[Any, Any]
    before: Any  # moto Item (a copy) or None
    visible: dict[str, float]  # "gsi" / "read" -> monotonic time the write shows to that reader


_logs: dict[str, deque[_Entry]] = {}
_last_visible: dict[tuple[str, tuple[Any, Any]], dict[str, float]] = {}
_inflight: dict[tuple[str, str], float] = {}  # (table, key) -> monotonic time it stops being in flight


def _lags() -> dict[str, float]:
    return {"gsi": faults.rate("gsi_lag_ms") / 1000.0, "read": faults.rate("read_lag_ms") / 1000.0}


def reset() -> None:
    """Forget every logged write and transaction (tests)."""
    with _log_lock:
        _logs.clear()
        _last_visible.clear()
        _inflight.clear()


def caught_up_at() -> float:
    """The monotonic time from which every write logged so far shows to every lagging reader (now or
    earlier when none is pending): a drain that steps pumps by hand waits until then, not a whole lag."""
    with _log_lock:
        return max((max(e.visible.values()) for log in _logs.values() for e in log), default=0.0)


# --- the write log and the lagged views -------------------------------------------------------


def _record(table_name: str, key: tuple[Any, Any], before: Any) -> None:
    lags = _lags()
    if not any(lags.values()):
        return
    now = time.monotonic()
    visible = {
        kind: now + lag * (0.5 + 0.5 * faults.draw("gsi_lag_ms" if kind == "gsi" else "read_lag_ms"))
        for kind, lag in lags.items()
    }
    entry = _Entry(key, before, visible)
    pending = getattr(_local, "pending", None)
    if pending is not None:  # inside a transaction: logged only if it commits
        pending.append((table_name, entry))
        return
    _append(table_name, entry, now)


def _append(table_name: str, entry: _Entry, now: float) -> None:
    with _log_lock:
        last = _last_visible.get((table_name, entry.key))
        if last:
            for kind in entry.visible:
                entry.visible[kind] = max(entry.visible[kind], last.get(kind, 0.0))
        _last_visible[(table_name, entry.key)] = dict(entry.visible)
        log = _logs.setdefault(table_name, deque())
        log.append(entry)
        while log and max(log[0].visible.values()) < now:
            old = log.popleft()
            seen = _last_visible.get((table_name, old.key))
            if seen is not None and max(seen.values()) < now:
                del _last_visible[(table_name, old.key)]


def _invisible(table_name: str, kind: str) -> dict[tuple[Any, Any], Any]:
    """Keys whose latest writes a ``kind`` reader cannot see yet -> the image it sees instead."""
    now = time.monotonic()
    out: dict[tuple[Any, Any], Any] = {}
    with _log_lock:
        log = _logs.get(table_name)
        if not log:
            return out
        for entry in reversed(log):  # newest first: the oldest invisible write's image wins
            if now < entry.visible[kind]:
                out[entry.key] = entry.before
    return out


def _view_kind(table: Any) -> str | None:
    views = getattr(_local, "views", None)
    return views.get(table.name) if views else None


def _item_key(item: Any) -> tuple[Any, Any]:
    return (item.hash_key, item.range_key)


def _sort_key(item: Any) -> Any:
    return (item.hash_key, item.range_key) if item.range_key else item.hash_key


# --- errors as AWS answers them ---------------------------------------------------------------


def _throttled(table: Any, write: bool, index: str | None = None) -> Exception:
    from moto.dynamodb.exceptions import DynamodbException

    error_type = ERROR_PREFIX + "ProvisionedThroughputExceededException"
    err = DynamodbException(error_type, THROTTLE_MESSAGE)
    resource = table.table_arn if table is not None else ""
    kind = "Index" if index else "Table"
    if index:
        resource = f"{resource}/index/{index}"
    reason = f"{kind}{'Write' if write else 'Read'}KeyRangeThroughputExceeded"
    err.description = json.dumps(
        {
            "__type": error_type,
            "message": THROTTLE_MESSAGE,
            "ThrottlingReasons": [{"reason": reason, "resource": resource}],
        }
    )
    return err


def _conflict() -> Exception:
    from moto.dynamodb.exceptions import DynamodbException

    return DynamodbException(ERROR_PREFIX + "TransactionConflictException", CONFLICT_MESSAGE)


def _cancelled(reasons: list[tuple[str, str] | None]) -> Exception:
    from moto.dynamodb.exceptions import TransactionCanceledException

    return TransactionCanceledException([(r[0], r[1], None) if r else (None, None, None) for r in reasons])


# --- helpers over a handler's request ---------------------------------------------------------


def _get_table(handler: Any, name: str | None) -> Any:
    if not name:
        return None
    try:
        return handler.dynamodb_backend.get_table(name)
    except Exception:  # moto answers the missing table itself
        return None


def _key_str(table: Any, attrs: dict[str, Any]) -> str:
    parts = [attrs.get(table.hash_key_attr)]
    if table.range_key_attr:
        parts.append(attrs.get(table.range_key_attr))
    return json.dumps(parts, sort_keys=True)


def _tx_targets(handler: Any, items: list[dict[str, Any]]) -> list[tuple[str, str] | None]:
    out: list[tuple[str, str] | None] = []
    for action in items:
        _, op = next(iter(action.items()))
        table = _get_table(handler, op.get("TableName"))
        if table is None:
            out.append(None)
            continue
        attrs = op.get("Item") if "Item" in op else op.get("Key") or {}
        out.append((table.name, _key_str(table, attrs)))
    return out


def _in_flight(target: tuple[str, str] | None, now: float) -> bool:
    if target is None:
        return False
    with _log_lock:
        until = _inflight.get(target)
        if until is not None and until < now:
            del _inflight[target]
            return False
        return until is not None


def _mark_in_flight(targets: list[tuple[str, str] | None]) -> None:
    if faults.rate("conflict") <= 0:
        return
    now = time.monotonic()
    with _log_lock:
        for stale in [t for t, until in _inflight.items() if until < now]:
            del _inflight[stale]
        for target in targets:
            if target is not None:
                _inflight[target] = now + TX_WINDOW_S


def _subset(n: int) -> set[int]:
    """A random non-empty, proper subset of range(n) (n >= 2), drawn from ``unprocessed``'s stream."""
    chosen = {i for i in range(n) if faults.draw("unprocessed") < 0.5}
    if not chosen:
        chosen = {int(faults.draw("unprocessed") * n)}
    if len(chosen) == n:
        chosen.discard(int(faults.draw("unprocessed") * n))
    return chosen


# --- the patches ------------------------------------------------------------------------------

_applied = False
READS = {"get_item": False, "batch_get_item": False, "query": False, "scan": False, "transact_get_items": False}
WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")


def apply(lock: Any) -> None:
    """Patch moto's DynamoDB backend and handler. ``lock`` serialises every write (devstack.moto_patches)."""
    global _applied
    if _applied:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    _patch_backend_writes(DynamoDBBackend)
    _patch_table_reads(Table)
    _patch_handlers(DynamoHandler, lock)
    _applied = True


def _patch_backend_writes(backend_cls: Any) -> None:
    """Log each write's before-image (a transaction's only when it commits)."""

    def logged(method: Any, key_of: Any) -> Any:
        def wrapper(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            table = self.tables.get(table_name)
            if table is None or not any(_lags().values()):
                return method(self, table_name, *args, **kwargs)
            try:
                hash_value, range_value = key_of(self, table, args, kwargs)
            except Exception:  # moto reports the bad key itself
                return method(self, table_name, *args, **kwargs)
            before = copy.deepcopy(table.get_item(hash_value, range_value))
            result = method(self, table_name, *args, **kwargs)
            _record(table.name, (hash_value, range_value), before)
            return result

        return wrapper

    def put_key(self: Any, table: Any, args: Any, kwargs: Any) -> Any:
        attrs = args[0] if args else kwargs["item_attrs"]
        return self.get_keys_value(table, attrs)

    def keyed(self: Any, table: Any, args: Any, kwargs: Any) -> Any:
        key = args[0] if args else kwargs["key"]
        return self.get_keys_value(table, key)

    backend_cls.put_item = logged(backend_cls.put_item, put_key)
    backend_cls.update_item = logged(backend_cls.update_item, keyed)
    backend_cls.delete_item = logged(backend_cls.delete_item, keyed)

    transact = backend_cls.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        _local.pending = []
        try:
            transact(self, transact_items)
            now = time.monotonic()
            for table_name, entry in _local.pending:
                _append(table_name, entry, now)
        finally:
            _local.pending = None

    backend_cls.transact_write_items = transact_write_items


def _patch_table_reads(table_cls: Any) -> None:
    """While a lagged read runs, the table answers as that reader sees it."""
    all_items = table_cls.all_items
    get_item = table_cls.get_item

    def lagged_all_items(self: Any) -> list[Any]:
        kind = _view_kind(self)
        items = all_items(self)
        if kind is None:
            return items  # type: ignore[no-any-return]
        changed = _invisible(self.name, kind)
        if not changed:
            return items  # type: ignore[no-any-return]
        faults.count("gsi_lag_ms" if kind == "gsi" else "read_lag_ms")
        by_key = {_item_key(i): i for i in items}
        for key, before in changed.items():
            if before is None:
                by_key.pop(key, None)
            else:
                by_key[key] = before
        return sorted(by_key.values(), key=_sort_key)

    def lagged_has_idx_items(self: Any, index_name: str) -> list[Any]:
        idx = self.get_index(index_name)
        cols = {i["AttributeName"] for i in idx.schema}
        return [i for i in self.all_items() if cols.issubset(set(i.attrs))]

    def lagged_get_item(self: Any, hash_key: Any, range_key: Any = None, projection_expression: Any = None) -> Any:
        kind = _view_kind(self)
        if kind is not None:
            changed = _invisible(self.name, kind)
            key = (hash_key, range_key if self.has_range_key else None)
            if key in changed:
                faults.count("read_lag_ms")
                before = changed[key]
                if before is not None and projection_expression:
                    return before.project(projection_expression)
                return before
        return get_item(self, hash_key, range_key, projection_expression)

    table_cls.all_items = lagged_all_items
    table_cls.has_idx_items = lagged_has_idx_items
    table_cls.get_item = lagged_get_item


def _read_views(handler: Any, op: str) -> dict[str, str]:
    body = handler.body
    lags = _lags()
    views: dict[str, str] = {}
    if op == "batch_get_item":
        for name, request in (body.get("RequestItems") or {}).items():
            table = _get_table(handler, name)
            if table is not None and lags["read"] and not request.get("ConsistentRead"):
                views[table.name] = "read"
        return views
    table = _get_table(handler, body.get("TableName"))
    if table is None:
        return views
    index = body.get("IndexName")
    if index and index in {i.name for i in table.global_indexes}:
        if lags["gsi"]:
            views[table.name] = "gsi"
    elif lags["read"] and not body.get("ConsistentRead"):
        views[table.name] = "read"
    return views


def _patch_handlers(handler_cls: Any, lock: Any) -> None:
    for op in READS:
        setattr(handler_cls, op, _read_handler(getattr(handler_cls, op), op, lock))
    for op in WRITES:
        setattr(handler_cls, op, _write_handler(getattr(handler_cls, op), op))


def _maybe_throttle(handler: Any, op: str, write: bool) -> None:
    if not faults.hit("throttle"):
        return
    body = handler.body
    if op in ("transact_write_items", "transact_get_items"):
        items = body.get("TransactItems") or []
        culprit = int(faults.draw("throttle") * max(1, len(items)))
        raise _cancelled(
            [("ThrottlingError", THROTTLE_MESSAGE) if i == culprit else None for i in range(max(1, len(items)))]
        )
    name = body.get("TableName") or next(iter(body.get("RequestItems") or {}), None)
    raise _throttled(_get_table(handler, name), write, body.get("IndexName"))


def _read_handler(method: Any, op: str, lock: Any) -> Any:
    def wrapper(self: Any) -> Any:
        _maybe_throttle(self, op, write=False)
        if op == "batch_get_item":
            return _batch_get(self, method, lock)
        views = _read_views(self, op) if op != "transact_get_items" else {}
        if not views:
            return method(self)
        with lock:  # the log and the table must agree while the reader's view is built
            _local.views = views
            try:
                return method(self)
            finally:
                _local.views = None

    return wrapper


def _batch_get(handler: Any, method: Any, lock: Any) -> Any:
    requests = handler.body.get("RequestItems") or {}
    keys = [(name, i) for name, req in requests.items() for i in range(len(req.get("Keys") or []))]
    unprocessed: dict[str, Any] = {}
    if len(keys) > 1 and faults.hit("unprocessed"):
        chosen = {keys[i] for i in _subset(len(keys))}
        kept: dict[str, Any] = {}
        for name, req in requests.items():
            held = [k for i, k in enumerate(req["Keys"]) if (name, i) in chosen]
            rest = [k for i, k in enumerate(req["Keys"]) if (name, i) not in chosen]
            if held:
                unprocessed[name] = {**req, "Keys": held}
            if rest:
                kept[name] = {**req, "Keys": rest}
        handler.body["RequestItems"] = kept
    views = _read_views(handler, "batch_get_item")
    with lock:
        _local.views = views
        try:
            result = method(handler)
        finally:
            _local.views = None
    if unprocessed:
        doc = result.result
        doc["UnprocessedKeys"] = unprocessed
        for name in unprocessed:
            doc.setdefault("Responses", {}).setdefault(name, [])
    return result


def _write_handler(method: Any, op: str) -> Any:
    def wrapper(self: Any) -> Any:
        _maybe_throttle(self, op, write=True)
        body = self.body
        now = time.monotonic()
        if op == "transact_write_items":
            targets = _tx_targets(self, body.get("TransactItems") or [])
            overlapping = [_in_flight(t, now) for t in targets]
            if any(overlapping) and faults.hit("conflict"):
                raise _cancelled([("TransactionConflict", CONFLICT_MESSAGE) if o else None for o in overlapping])
            result = method(self)
            _mark_in_flight(targets)
            return result
        if op == "batch_write_item":
            return _batch_write(self, method)
        table = _get_table(self, body.get("TableName"))
        if table is not None:
            attrs = body.get("Item") if op == "put_item" else body.get("Key")
            target = (table.name, _key_str(table, attrs or {}))
            if _in_flight(target, now) and faults.hit("conflict"):
                raise _conflict()
        return method(self)

    return wrapper


def _batch_write(handler: Any, method: Any) -> Any:
    requests = handler.body.get("RequestItems") or {}
    flat = [(name, i) for name, reqs in requests.items() for i in range(len(reqs))]
    unprocessed: dict[str, list[Any]] = {}
    if len(flat) > 1 and faults.hit("unprocessed"):
        chosen = {flat[i] for i in _subset(len(flat))}
        kept: dict[str, list[Any]] = {}
        for name, reqs in requests.items():
            for i, req in enumerate(reqs):
                (unprocessed if (name, i) in chosen else kept).setdefault(name, []).append(req)
        handler.body["RequestItems"] = kept
    result = method(handler)
    if unprocessed:
        result.result["UnprocessedItems"] = unprocessed
    return result
