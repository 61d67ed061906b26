"""Faster moto for the scale benchmarks only: TransactWriteItems' rollback snapshot and Query.

moto 5.2 takes ``copy.deepcopy`` of the whole table for every action of a
transaction, so a transaction on a table of 30,000 items copies it up to 100
times: an import of 5,000 clients would run for hours. The patch hands moto a
snapshot that shares every item the transaction does not touch (they are not
changed by it) and deep-copies only the ones it names. What a cancelled
transaction restores is the same; only the time differs. Query gets the
same treatment, and its sort of the partition runs on plain strings (below);
reads answer without moto's model-driven serializer and project top-level
attributes without a round trip through plain JSON; update expressions and
conditions are parsed once and validated without moto's deep copies;
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
    _update_expressions()
    _conditions()
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    models.copy = types.SimpleNamespace(deepcopy=snapshot, copy=copy.copy)  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _applied.append(True)


def _update_expressions() -> None:
    """moto spends ~2 ms on an update expression where a put costs 0.3 ms (DynamoDB charges them alike): it
    parses the text twice, deep-copies the tree for its validator and walks it with ``isinstance`` checks on
    abstract classes, five times. Here the parsed tree is kept by expression text (nothing changes it: the
    validator works on a copy), the copy is made node by node, each node class's step is chosen once, and the
    three validators that look only at the tree's shape, the names and the table's keys (never at values or
    the item) run once for each such combination. The same errors come out for the same requests."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    make = UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]
    parsed: dict[str, Any] = {}

    def cached_make(cls: Any, expression: str) -> Any:
        tree = parsed.get(expression)
        if tree is None:
            tree = parsed[expression] = make(cls, expression)  # a bad expression raises: nothing kept
        return tree

    class _Unusual(Exception):
        pass

    def clone(node: Any, parent: Any) -> Any:
        state = node.__dict__
        if state.keys() != {"type", "children", "parent"}:
            raise _Unusual
        new = object.__new__(node.__class__)
        children = state["children"]
        if children is not None:
            copied = []
            for child in children:
                if isinstance(child, Node):
                    copied.append(clone(child, new))
                elif child is None or type(child) in (str, int):
                    copied.append(child)
                else:
                    raise _Unusual
            children = copied
        new.__dict__ = {"type": state["type"], "children": children, "parent": parent}
        return new

    def validator_init(
        self: Any,
        expression: Any,
        expression_attribute_names: Any,
        expression_attribute_values: Any,
        item: Any,
        table: Any,
    ) -> None:
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.source = expression
        try:
            if expression.parent is not None:
                raise _Unusual
            self.node_to_validate = clone(expression, None)
        except _Unusual:
            self.node_to_validate = copy.deepcopy(expression)

    steps: dict[type, dict[type, int]] = {}
    node_classes: dict[type, bool] = {}

    def traverse(self: Any, root: Any) -> Any:
        """moto's depth-first walk, in the same order with the same hooks, without rebuilding its map of
        steps twice a node or asking abstract classes about every node."""
        mapping = self._processing_map()
        classes, functions = list(mapping), list(mapping.values())
        chosen = steps.setdefault(type(self), {})
        before_child = self.pre_processing_of_child

        def step_of(cls: type) -> int:
            index = chosen.get(cls)
            if index is None:
                index = chosen[cls] = next((i for i, c in enumerate(classes) if issubclass(cls, c)), -1)
            return index

        def walk(node: Any, child_id: int = -1) -> Any:
            cls = type(node)
            is_node = node_classes.get(cls)
            if is_node is None:
                is_node = node_classes[cls] = issubclass(cls, Node)
            if is_node:
                parent = node.parent
                if node.children is not None:
                    for i, child in enumerate(node.children):
                        before_child(node, i)
                        walk(child, i)
                index = step_of(cls)
                if index >= 0:
                    node = functions[index](node)
                    node.parent = parent
                    if parent:
                        parent.children[child_id] = node
            return node

        return walk(root)

    shape_only = (
        validators.ActionCountValidator,
        validators.OverlappingPathsValidator,
        validators.UpdateHashRangeKeyValidator,
    )
    passed: dict[tuple[int, str, tuple[str, ...]], Any] = {}

    def validate(self: Any) -> Any:
        key = None
        if isinstance(self, validators.UpdateExpressionValidator):
            try:
                names = repr(self.expression_attribute_names)
                key = (id(self.source), names, tuple(self.table.table_key_attrs))
            except (TypeError, ValueError):
                key = None
        node = self.node_to_validate
        for processor in self.processors:
            if key is not None and key in passed and isinstance(processor, shape_only):
                continue
            node = processor.traverse(node)
        if key is not None:
            passed[key] = self.source  # holds the tree, so its id is never reused by another
        return node

    UpdateExpressionParser.make = classmethod(cached_make)  # type: ignore[method-assign,assignment]
    validators.Validator.__init__ = validator_init  # type: ignore[method-assign]
    validators.Validator.validate = validate  # type: ignore[method-assign]
    DepthFirstTraverser.traverse = traverse  # type: ignore[method-assign]


def _conditions() -> None:
    """A transaction's action has its condition parsed three times (the request's check, the transaction's,
    the write's own). The parsed condition is kept by its expression, names and values (it is not changed
    once built; the values are copied when kept), with the placeholders it used, which moto checks after."""
    from moto.dynamodb import comparisons

    parse = comparisons.ConditionExpressionParser.parse
    kept: dict[tuple[str, str, str], tuple[Any, list[Any], list[Any]]] = {}

    def cached_parse(self: Any) -> Any:
        if not self.condition_expression:
            return parse(self)
        try:
            key = (
                self.condition_expression,
                repr(self.expression_attribute_names),
                repr(self.expression_attribute_values),
            )
        except (TypeError, ValueError):
            return parse(self)
        hit = kept.get(key)
        if hit is None:
            fresh = comparisons.ConditionExpressionParser(
                self.condition_expression,
                copy.deepcopy(self.expression_attribute_names),
                copy.deepcopy(self.expression_attribute_values),
            )
            op = parse(fresh)
            hit = kept[key] = (op, list(fresh.expr_attr_names_found), list(fresh.expr_attr_values_found))
            if len(kept) > 50_000:
                kept.clear()
        op, names, values = hit
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return op

    comparisons.ConditionExpressionParser.parse = cached_parse  # type: ignore[method-assign]
