"""Two fixes to moto's DynamoDB streams, applied to the embedded emulator only.

Seen with moto 5.2.5 (see tests/unit/test_moto_patches.py):
- A cancelled TransactWriteItems restores the table from a deep copy taken
  before it ran. The copy has its own stream shard, so every shard iterator
  handed out earlier keeps reading the old shard object: it sees stream
  records of writes that were rolled back, and none of the writes after.
- GetRecords, and other writes, can run while a transaction is half applied:
  they see records of writes about to be rolled back, and the rollback (a
  restore of the deep copy) silently discards a write made meanwhile.

The patch keeps the one shard object alive across a rollback (truncated to
its length before the transaction) and serialises transactions with writes
and reads of the stream, so the local stream shows exactly the committed
writes, in order, and no write is lost to another's rollback.

Two more, found under concurrent requests (an adversarial run: 500s and an emulator grown to 23 GB):
- moto keeps a table's items in a ``defaultdict``: a read of a missing key inserts an empty entry, so
  a transaction's deep copy of the table, running at the same time, died with "dictionary changed
  size during iteration" (a 500 to the app). Reads are serialised with writes too.
- moto deep-copies the whole table once per *action* of a TransactWriteItems, stream history
  included (every image ever written): quadratic time and memory as the table grows. The table is
  copied once per transaction, and the stream shard is not copied at all (the rollback above keeps
  the one shard and truncates it).

It also installs devstack/ddb_faults.py (lagging reads, transaction conflicts, throttles and
unprocessed batch items at the rates of DEVSTACK_FAULTS), inside the same lock.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.RLock()
_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    from devstack import ddb_faults

    ddb_faults.apply(_lock)  # first: its write log must run inside the lock taken below
    transact = DynamoDBBackend.transact_write_items
    get_records = DynamoDBStreamsBackend.get_records

    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models.table import StreamShard, Table

    StreamShard.__deepcopy__ = lambda self, memo: self  # type: ignore[attr-defined]
    real_copy = dynamodb_models.copy  # type: ignore[attr-defined]

    class _CopyEachTableOnce:
        """moto's ``copy`` module for one transaction: a table is deep-copied once, whatever its actions."""

        def __init__(self) -> None:
            self.tables: dict[int, Any] = {}

        def deepcopy(self, obj: Any, memo: Any = None) -> Any:
            if isinstance(obj, Table):
                if id(obj) not in self.tables:
                    self.tables[id(obj)] = real_copy.deepcopy(obj)
                return self.tables[id(obj)]
            return real_copy.deepcopy(obj, memo)

        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _lock:
            shards = {
                name: (table.stream_shard, len(table.stream_shard.items))
                for name, table in self.tables.items()
                if table.stream_shard is not None
            }
            dynamodb_models.copy = _CopyEachTableOnce()  # type: ignore[attr-defined,assignment]
            try:
                transact(self, transact_items)
            except Exception:
                for name, (shard, length) in shards.items():
                    del shard.items[length:]
                    if name in self.tables:
                        self.tables[name].stream_shard = shard
                raise
            finally:
                dynamodb_models.copy = real_copy  # type: ignore[attr-defined]

    def locked_get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        with _lock:
            return get_records(self, iterator_arn, limit)

    def serialised(method: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _lock:
                return method(self, *args, **kwargs)

        return wrapper

    for name in (
        "put_item",
        "update_item",
        "delete_item",
        "batch_write_item",
        "get_item",
        "batch_get_item",
        "query",
        "scan",
        "transact_get_items",
    ):
        setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = locked_get_records  # type: ignore[method-assign]
    _applied = True
