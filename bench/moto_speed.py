"""Faster moto for the scale benchmarks only: TransactWriteItems' rollback snapshot and Query.

moto 5.2 takes ``copy.deepcopy`` of the whole table for every action of a
transaction, so a transaction on a table of 30,000 items copies it up to 100
times: an import of 5,000 clients would run for hours. The patch hands moto a
snapshot that shares every item the transaction does not touch (they are not
changed by it) and deep-copies only the ones it names. What a cancelled
transaction restores is the same; only the time differs. Query gets the
same treatment, and its sort of the partition runs on plain strings (below);
reads answer without moto's model-driven serializer and project top-level
attributes without a round trip through plain JSON;
``tests/unit/test_moto_speed.py`` checks that answers do not change. Applied
on top of ``devstack.moto_patches`` (which keeps the stream shard across a
rollback).
"""

from __future__ import annotations

import copy
import threading
import types
from collections import defaultdict
from typing import Any

_state = threading.local()
_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})


def _plain(value: Any) -> bool:
    """JSON as it is: no None, bytes, dates or other objects a model-driven serializer would convert or drop."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, str | int | float | bool)


_applied: list[bool] = []


def apply() -> None:
    if _applied:
        return
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    from devstack import moto_patches

    moto_patches.apply()
    real_deepcopy = copy.deepcopy
    transact = models.DynamoDBBackend.transact_write_items

    def snapshot(obj: Any, memo: Any = None) -> Any:
        touched = getattr(_state, "touched", None)
        if touched is None or not isinstance(obj, Table):
            return real_deepcopy(obj, memo)
        taken = _state.taken
        if obj.name in taken:  # moto asks once per action; nothing has changed in between
            return taken[obj.name]
        clone = copy.copy(obj)
        items = obj.items.copy()  # a dict copy keeps the stored hashes: no key is hashed again
        for key in touched.get(obj.name, []):
            if obj.hash_key_attr not in key:
                continue
            hash_key = DynamoType(key[obj.hash_key_attr])
            if obj.range_key_attr is not None:
                if hash_key not in items:
                    continue
                items[hash_key] = ranged = dict(items[hash_key])  # a put may add a range key under it
                range_key = DynamoType(key.get(obj.range_key_attr, {}))
                if range_key in ranged:
                    ranged[range_key] = real_deepcopy(ranged[range_key])
            elif hash_key in items:
                items[hash_key] = real_deepcopy(items[hash_key])
        clone.items = items
        taken[obj.name] = clone
        return clone

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        touched: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for action in transact_items:
            _, op = next(iter(action.items()))
            touched[op.get("TableName", "")].append(op.get("Key") or op.get("Item") or {})
        _state.touched, _state.taken = touched, {}
        try:
            transact(self, transact_items)
        finally:
            _state.touched, _state.taken = None, {}

    table_query = Table.query
    table_sorted_items = Table.sorted_items
    query_lock = threading.Lock()

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        """moto's Query looks at every item of the table (and compares keys slowly): hand it the items of the
        queried partition instead, found by plain value comparison. Its own filtering, sorting and paging run
        unchanged on them, so the result is the same."""
        hash_key = args[0] if args else kwargs.get("hash_key")
        index_name = kwargs.get("index_name") or (args[7] if len(args) > 7 else None)
        if hash_key is None or self.range_key_attr is None:
            return table_query(self, *args, **kwargs)
        if index_name:
            index = next((i for i in self.all_indexes() if i.name == index_name), None)
            hash_attrs = [k["AttributeName"] for k in (index.schema if index else []) if k["KeyType"] == "HASH"]
            if len(hash_attrs) != 1:
                return table_query(self, *args, **kwargs)
            name, value = hash_attrs[0], hash_key.value

            def subset() -> list[Any]:
                out = []
                for ranged in self.items.values():
                    for item in ranged.values():
                        attr = item.attrs.get(name)
                        if attr is not None and attr.value == value:
                            out.append(item)
                return out
        else:

            def subset() -> list[Any]:
                return list(self.items.get(hash_key, {}).values())

        def sorted_items(hash_attrs: list[str], range_attrs: list[str | None], items: list[Any]) -> list[Any]:
            """moto sorts the whole partition by tuples of DynamoType (a Python comparison each) before it stops
            at Limit: a page of a 5,000-client book sorted 5,000 items. String keys sort the same as plain
            strings, so they are sorted as such (in C); anything else goes to moto's own sort."""
            attrs = self._generate_attr_to_sort_by(hash_attrs, range_attrs)
            if all(item.attrs[a].type == "S" for item in items for a in attrs):
                items.sort(key=lambda item: tuple(item.attrs[a].value for a in attrs))
                return items
            return table_sorted_items(self, hash_attrs, range_attrs, items)

        with query_lock:
            self.all_items = subset
            self.sorted_items = sorted_items
            try:
                return table_query(self, *args, **kwargs)
            finally:
                del self.all_items
                del self.sorted_items

    from moto.dynamodb.responses import DynamoResult

    serialize = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        """moto writes a read's answer through its generic, model-driven serializer, which costs more than
        the read itself (90 of 130 ms for a Query page of 25 clients). DynamoDB's JSON protocol answers with
        the result as it is, so a plain result (strings, numbers, booleans, lists, maps) is dumped directly;
        anything else goes through moto's serializer."""
        if context.operation_model.name in _READS and isinstance(self.result, dict) and _plain(self.result):
            serializer = context.serializer_class(operation_model=context.operation_model)
            resp = serializer._serialized_result_to_response(
                serializer._create_default_response(), self.result, context.operation_model.output_shape, self.result
            )
            return resp["status_code"], resp["headers"], resp["body"]
        return serialize(self, context)

    from moto.dynamodb.models.dynamo_type import Item

    project = Item.project

    def project_top_level(self: Any, projection_expressions: list[list[str]]) -> Any:
        """moto projects by turning the whole item into plain JSON and back (a new DynamoType for every value):
        a BatchGetItem of 11 views projected to four attributes cost what writing them did. Top-level names
        are picked from the item as they are; paths into maps or lists go to moto's own projection."""
        if not all(len(path) == 1 and "[" not in path[0] for path in projection_expressions):
            return project(self, projection_expressions)
        result = Item(hash_key=self.hash_key, range_key=self.range_key, attrs={})
        for (name,) in projection_expressions:
            if name in self.attrs:
                result.attrs[name] = self.attrs[name]
        return result

    Item.project = project_top_level  # type: ignore[method-assign]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    models.copy = types.SimpleNamespace(deepcopy=snapshot, copy=copy.copy)  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _applied.append(True)
