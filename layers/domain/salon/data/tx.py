"""Low-level transactions for writes pynamodb's TransactWrite cannot express
(updates that create an item, ``if_not_exists``, map paths), with the reasons
of a cancellation handed back per item."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from salon.data.connection import table_connection
from salon.data.models import TableItem
from salon.errors import Conflict

T = TypeVar("T")
TRANSACTION_ATTEMPTS = 3


class WriteConflict(Conflict):
    """Every attempt met a concurrent transaction on one of the same items: nothing was written; the caller
    may retry. A 409 wherever it surfaces (services may word it for their route)."""

    code = "write_conflict"
    message = "Someone else is changing the same records right now; try again."


def cancellation_codes(exc: Exception) -> list[str | None]:
    """The per-item codes of a cancelled transaction, from botocore or pynamodb; empty for anything else."""
    if isinstance(exc, TransactionCancelled):
        return [reason.get("Code") for reason in exc.reasons]
    reasons = getattr(exc, "cancellation_reasons", None)  # pynamodb's TransactWriteError
    if reasons is not None:
        return [reason.code if reason is not None else None for reason in reasons]
    if isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "TransactionCanceledException":
        return [reason.get("Code") for reason in exc.response.get("CancellationReasons") or []]
    return []


def retry_conflicts(write: Callable[[], T]) -> T:
    """Run ``write`` (one transaction). On AWS a transaction that meets another one on the same item is
    cancelled with ``TransactionConflict`` and writes nothing: it is tried again a few times with jitter,
    then :class:`WriteConflict` tells the caller to retry. Anything else ``write`` raises goes through."""
    for attempt in range(TRANSACTION_ATTEMPTS):
        try:
            return write()
        except Exception as exc:
            codes = cancellation_codes(exc)
            if "TransactionConflict" not in codes or "ConditionalCheckFailed" in codes:
                raise
        time.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # noqa: S311 - jitter, not crypto
    raise WriteConflict()


class TransactionCancelled(Exception):
    """Some condition failed; ``reasons[i]`` is the code of item ``i`` (``None`` where it passed)."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__([r.get("Code") for r in reasons])
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index].get("Code") == "ConditionalCheckFailed"

    def old_item(self, index: int) -> dict[str, Any] | None:
        return self.reasons[index].get("Item") if index < len(self.reasons) else None

    @property
    def conflict(self) -> bool:
        """Cancelled by a concurrent transaction rather than a condition: worth retrying."""
        return any(r.get("Code") == "TransactionConflict" for r in self.reasons)


_KEYWORDS = {
    "SET",
    "ADD",
    "REMOVE",
    "DELETE",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "if_not_exists",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "list_append",
}
_WORD = re.compile(r"(?<![:#\w.])([A-Za-z_][A-Za-z0-9_]*)")


def alias(expression: str, names: dict[str, str]) -> str:
    """Every attribute name in an expression behind a ``#`` placeholder, so DynamoDB's long list of
    reserved words (name, owner, status, plan, role...) never gets in the way."""

    def replace(match: re.Match[str]) -> str:
        word = match.group(1)
        if word in _KEYWORDS:
            return word
        placeholder = f"#a_{word}"
        names[placeholder] = word
        return placeholder

    return _WORD.sub(replace, expression)


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


@dataclass
class Tx:
    """Collects up to 100 actions and runs them in one TransactWriteItems call."""

    actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def table(self) -> str:
        return str(TableItem.Meta.table_name)

    def put(
        self,
        item: TableItem,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
        return_old: bool = False,
    ) -> int:
        action: dict[str, Any] = {"TableName": self.table, "Item": item.serialize()}
        return self._add("Put", action, condition, values, names, return_old)

    def put_raw(self, item: dict[str, Any], condition: str | None = None, values: dict[str, Any] | None = None) -> int:
        """A Put of a low-level item, as serialized."""
        return self._add("Put", {"TableName": self.table, "Item": item}, condition, values, None, False)

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
        condition: str | None = None,
        return_old: bool = False,
    ) -> int:
        action: dict[str, Any] = {"TableName": self.table, "Key": key(pk, sk), "UpdateExpression": expression}
        return self._add("Update", action, condition, values, names, return_old)

    def delete(
        self,
        pk: str,
        sk: str,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> int:
        action: dict[str, Any] = {"TableName": self.table, "Key": key(pk, sk)}
        return self._add("Delete", action, condition, values, names, False)

    def check(
        self,
        pk: str,
        sk: str,
        condition: str,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> int:
        action: dict[str, Any] = {"TableName": self.table, "Key": key(pk, sk)}
        return self._add("ConditionCheck", action, condition, values, names, False)

    def _add(
        self,
        kind: str,
        action: dict[str, Any],
        condition: str | None,
        values: dict[str, Any] | None,
        names: dict[str, str] | None,
        return_old: bool,
    ) -> int:
        names = dict(names or {})
        if "UpdateExpression" in action:
            action["UpdateExpression"] = alias(action["UpdateExpression"], names)
        if condition:
            action["ConditionExpression"] = alias(condition, names)
        if values:
            action["ExpressionAttributeValues"] = values
        if names:
            action["ExpressionAttributeNames"] = names
        if return_old:
            action["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self.actions.append({kind: action})
        return len(self.actions) - 1

    def __len__(self) -> int:
        return len(self.actions)

    def run(self) -> None:
        """Commit the actions. A cancellation by concurrent transactions alone is tried again
        (:func:`retry_conflicts`); one a condition explains is :class:`TransactionCancelled`."""
        if not self.actions:
            return
        if len(self.actions) > 100:
            raise ValueError("a transaction holds at most 100 actions")
        retry_conflicts(self._run_once)

    def _run_once(self) -> None:
        try:
            table_connection().client.transact_write_items(TransactItems=self.actions)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise TransactionCancelled(exc.response.get("CancellationReasons", [])) from None
            raise


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class ConditionFailed(Exception):
    """A single conditional write found the item not as required."""


def update_item(
    pk: str,
    sk: str,
    expression: str,
    values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
    condition: str | None = None,
    return_new: bool = False,
) -> dict[str, Any]:
    """One UpdateItem (a transaction of one would cost twice the write)."""
    names = dict(names or {})
    params: dict[str, Any] = {
        "TableName": TableItem.Meta.table_name,
        "Key": key(pk, sk),
        "UpdateExpression": alias(expression, names),
    }
    if condition:
        params["ConditionExpression"] = alias(condition, names)
    if values:
        params["ExpressionAttributeValues"] = values
    if names:
        params["ExpressionAttributeNames"] = names
    if return_new:
        params["ReturnValues"] = "ALL_NEW"
    try:
        resp = table_connection().client.update_item(**params)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise ConditionFailed() from None
        raise
    return dict(resp.get("Attributes") or {})


def put_item(item: dict[str, Any], condition: str, values: dict[str, Any]) -> None:
    """One conditional PutItem of a low-level item; ``ConditionFailed`` when the condition does not hold."""
    names: dict[str, str] = {}
    try:
        table_connection().client.put_item(
            TableName=TableItem.Meta.table_name,
            Item=item,
            ConditionExpression=alias(condition, names),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise ConditionFailed() from None
        raise
