"""Low-level transactions for writes pynamodb's TransactWrite cannot express
(updates that create an item, ``if_not_exists``, map paths), with the reasons
of a cancellation handed back per item."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from salon.data.connection import table_connection
from salon.data.models import TableItem
from salon.data.retry import CONFLICT_CODES, THROTTLE_CODES, Throttled, WriteConflict, backoff
from salon.errors import AppError

T = TypeVar("T")
TRANSACTION_ATTEMPTS = 4
_RETRIED_REASONS = frozenset({"TransactionConflict", "ThrottlingError"})
# Throttled and WriteConflict are re-exported: services catch them from here.
__all__ = [
    "ConditionFailed",
    "Throttled",
    "TransactionCancelled",
    "Tx",
    "WriteConflict",
    "alias",
    "cancellation_codes",
    "data_error",
    "key",
    "n",
    "put_item",
    "retry_conflicts",
    "retryable",
    "s",
    "update_item",
]


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


def retryable(codes: list[str | None]) -> bool:
    """A cancellation no condition explains: only concurrent transactions and throttled items, worth retrying."""
    found = {code for code in codes if code not in (None, "None")}
    return bool(found) and found <= _RETRIED_REASONS


_retried = retryable


def retry_conflicts(write: Callable[[], T]) -> T:
    """Run ``write`` (one transaction). On AWS a transaction that meets another one on the same item is
    cancelled with ``TransactionConflict``, and one over an item's throughput with ``ThrottlingError``; either
    writes nothing. It is tried again a few times with backoff and jitter, then :class:`Throttled` (503) if a
    throttle was among the reasons, else :class:`WriteConflict` (409) tells the caller to retry. Anything else
    ``write`` raises (a condition that failed) goes through."""
    throttled = False
    for attempt in range(TRANSACTION_ATTEMPTS):
        try:
            return write()
        except Exception as exc:
            codes = cancellation_codes(exc)
            if not _retried(codes):
                raise
            throttled = throttled or "ThrottlingError" in codes
        if attempt + 1 < TRANSACTION_ATTEMPTS:
            time.sleep(backoff(attempt))
    raise Throttled() if throttled else WriteConflict()


def _client_error(exc: BaseException) -> ClientError | None:
    """The botocore error behind ``exc``: itself, or what pynamodb wrapped (``cause``, ``__cause__``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ClientError):
            return current
        seen.add(id(current))
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    return None


def data_error(exc: BaseException) -> AppError | None:
    """What a data-layer failure that escaped its retries means to a caller, or ``None`` for a real bug: a
    transaction conflict is 409 ``write_conflict``, a throttle (or a batch DynamoDB kept leaving unprocessed)
    503 ``throttled`` with ``Retry-After``. Used where HTTP answers are made (``salon.api``)."""
    if isinstance(exc, AppError):
        return exc
    error = _client_error(exc)
    code = error.response.get("Error", {}).get("Code") if error is not None else None
    reasons = cancellation_codes(error if error is not None else exc) if isinstance(exc, Exception) else []
    if code in THROTTLE_CODES or (_retried(reasons) and "ThrottlingError" in reasons):
        return Throttled()
    if code in CONFLICT_CODES or _retried(reasons):
        return WriteConflict()
    return None


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
        """Cancelled by a concurrent transaction (or a throttled item) rather than a condition: worth retrying."""
        return any(r.get("Code") in _RETRIED_REASONS for r in self.reasons)


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


def claim_below(pk: str, sk: str, kind: str, counter: str, limit: int, expires_at: int) -> bool:
    """Count one more on a capped counter item in one conditional UpdateItem (``counter < limit``), so
    concurrent claims can never all read a count below the limit and all go on; False when it is full.
    The item expires (TTL) at ``expires_at``."""
    try:
        update_item(
            pk,
            sk,
            f"SET kind = :kind, expires_at = :exp ADD {counter} :one",
            values={":kind": s(kind), ":exp": n(expires_at), ":one": n(1), ":limit": n(limit)},
            condition=f"attribute_not_exists({counter}) OR {counter} < :limit",
        )
    except ConditionFailed:
        return False
    return True
