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

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _lock:
            shards = {
                name: (table.stream_shard, len(table.stream_shard.items))
                for name, table in self.tables.items()
                if table.stream_shard is not None
            }
            try:
                transact(self, transact_items)
            except Exception:
                for name, (shard, length) in shards.items():
                    del shard.items[length:]
                    if name in self.tables:
                        self.tables[name].stream_shard = shard
                raise

    def locked_get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        with _lock:
            return get_records(self, iterator_arn, limit)

    def serialised(method: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _lock:
                return method(self, *args, **kwargs)

        return wrapper

    for name in ("put_item", "update_item", "delete_item", "batch_write_item"):
        setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = locked_get_records  # type: ignore[method-assign]
    _applied = True
