"""History items of a client's collection: appointments (with their providers' slots), purchases,
packages and gift cards; and the one Query of the collection that the Client Log reads.

Every write here is a single call: one ``TransactWriteItems`` (a booking, an appointment action
that also touches slots or today's check-in, a sale with its ``history_pros`` update) or one
conditional ``UpdateItem`` (a redemption, a bare status change). Why a conditional write failed
comes back in the same call (``ReturnValuesOnConditionCheckFailure: ALL_OLD``), never from a
read-then-write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from salon.data import keys, tx
from salon.data.batch import batch_get
from salon.data.clients_repo import AccessRead, client_access_keys, read_access_items
from salon.data.connection import table_connection
from salon.data.models import (
    Appointment,
    GiftCard,
    Package,
    ProProfile,
    ProviderSlot,
    Purchase,
    TableItem,
    item_from_raw,
)

Raw = dict[str, Any]
_deserializer: list[Any] = []  # boto3's TypeDeserializer, made on first use: boto3 is not imported at cold start


# ------------------------------------------------------------------ outcomes
class ClientGone(Exception):
    """The client's profile left the book (or was deleted) after the access read: nothing written."""


class SlotTaken(Exception):
    """Another appointment of the provider holds one of the slots."""


class ClientBlocked(Exception):
    """The provider blocked this client."""


class ProviderNotMember(Exception):
    """The provider is not an active member of the caller's studio."""


class NotFoundItem(Exception):
    """No such appointment, purchase, package or gift card on this client."""


class StatusRefused(Exception):
    """The appointment is not in a status the action starts from."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class RedemptionRefused(Exception):
    """The package or gift card exists but its condition failed; ``item`` is its current state."""

    def __init__(self, item: TableItem) -> None:
        super().__init__(type(item).__name__)
        self.item = item


# ------------------------------------------------------------------ helpers
def _s(value: str) -> Raw:
    return {"S": value}


def _n(value: int) -> Raw:
    return {"N": str(value)}


def _key(pk: str, sk: str) -> Raw:
    return {"pk": _s(pk), "sk": _s(sk)}


def _table() -> str:
    return str(TableItem.Meta.table_name)


def _client() -> Any:
    return table_connection().client


@dataclass
class ProfileTouch:
    """The client's profile in a history write: the book it must still belong to, and the pros to add
    to ``history_pros`` (and ``assignees``). With nothing to add it is a ConditionCheck, so the
    profile is not rewritten (and not fanned out) by every sale."""

    client_id: str
    owner: str
    history_pros: frozenset[str] = frozenset()
    assign: frozenset[str] = frozenset()

    def action(self) -> Raw:
        key = _key(keys.client_pk(self.client_id), keys.PROFILE)
        names = {"#owner": "owner"}
        values: Raw = {":owner": _s(self.owner)}
        adds = []
        if self.history_pros:
            adds.append("history_pros :h")
            values[":h"] = {"SS": sorted(self.history_pros)}
        if self.assign:
            adds.append("assignees :a")
            values[":a"] = {"SS": sorted(self.assign)}
        common = {
            "TableName": _table(),
            "Key": key,
            "ConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if adds:
            return {"Update": {**common, "UpdateExpression": "ADD " + ", ".join(adds)}}
        return {"ConditionCheck": common}


def _put(item: TableItem, new: bool = True) -> Raw:
    action: Raw = {"TableName": _table(), "Item": item.serialize()}
    if new:
        action["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": action}


def _transact(actions: list[Raw]) -> list[dict[str, Any]] | None:
    """Run one transaction; ``None`` when it committed, else its cancellation reasons. A cancellation by
    concurrent transactions or throttled items alone (``TransactionConflict``, ``ThrottlingError``) is tried
    again (``tx.retry_conflicts``), then :class:`WriteConflict` (or ``Throttled``) tells the caller to retry."""
    if len(actions) > 100:
        raise ValueError("a transaction holds at most 100 actions")

    def write() -> list[dict[str, Any]] | None:
        try:
            _client().transact_write_items(TransactItems=actions)
        except ClientError as exc:
            codes = tx.cancellation_codes(exc)
            if not codes or tx.retryable(codes):
                raise
            return list(exc.response.get("CancellationReasons") or [])
        return None

    return tx.retry_conflicts(write)


def _failed(reasons: list[dict[str, Any]], index: int) -> bool:
    return index < len(reasons) and reasons[index].get("Code") == "ConditionalCheckFailed"


def _raise_unless_conditional(reasons: list[dict[str, Any]]) -> None:
    """A cancellation that no condition of the caller's explains (a concurrent transaction or a throttle beside
    a condition that does not decide): nothing was written, the app may retry (409 ``write_conflict``)."""
    raise tx.WriteConflict()


def plain(raw: Raw) -> dict[str, Any]:
    """A low-level item as plain Python values (numbers as ints where whole)."""
    if not _deserializer:
        from boto3.dynamodb.types import TypeDeserializer

        _deserializer.append(TypeDeserializer())
    out: dict[str, Any] = {}
    for name, value in raw.items():
        val = _deserializer[0].deserialize(value)
        out[name] = _plain_value(val)
    return out


def _plain_value(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_plain_value(v) for v in value}
    return value


# --------------------------------------------------------------- repository
class HistoryRepository(Protocol):
    def book(
        self,
        appointment: Appointment,
        slots: list[ProviderSlot],
        profile: ProfileTouch,
        check_provider_in_studio: str | None,
    ) -> None: ...

    def get_appointment(self, client_id: str, appointment_id: str) -> Appointment | None: ...

    def move_appointment(
        self,
        appointment: Appointment,
        to_status: str,
        from_statuses: tuple[str, ...],
        now: str,
        release_slots: bool,
        checkin_date: str | None,
        studio_id: str | None,
        checkin_expires_epoch: int | None,
    ) -> Appointment: ...

    def get_purchase(self, client_id: str, purchase_id: str) -> Purchase | None: ...

    def sell(self, item: Purchase | Package | GiftCard, profile: ProfileTouch) -> None: ...

    def redeem_session(self, client_id: str, package_id: str, today: str, now: str) -> Package: ...

    def redeem_gift_card(
        self, client_id: str, gift_card_id: str, amount: int, now: str, currency: str | None = None
    ) -> GiftCard: ...

    def client_items(self, client_id: str) -> list[Raw]: ...

    def caller_items(self, pro_id: str, client_id: str) -> tuple[ProProfile | None, bool]: ...

    def access_items(self, pro_id: str, client_id: str) -> tuple[AccessRead, bool]: ...


class DynamoHistoryRepository:
    """The real repository, over the single table."""

    # -- appointments
    def book(
        self,
        appointment: Appointment,
        slots: list[ProviderSlot],
        profile: ProfileTouch,
        check_provider_in_studio: str | None,
    ) -> None:
        """Appointment, profile (assign the provider, add to ``history_pros``), the provider's block
        flag, the provider's membership (when an admin books someone else) and every slot: one call."""
        provider = appointment.provider_id
        client_id = appointment.client_id
        actions: list[Raw] = [_put(appointment), profile.action()]
        actions.append(
            {
                "ConditionCheck": {
                    "TableName": _table(),
                    "Key": _key(keys.pro_pk(provider), keys.flags_sk(client_id)),
                    "ConditionExpression": "attribute_not_exists(pk) OR attribute_not_exists(blocked) OR blocked = :f",
                    "ExpressionAttributeValues": {":f": {"BOOL": False}},
                }
            }
        )
        member_index = None
        if check_provider_in_studio is not None:
            member_index = len(actions)
            actions.append(
                {
                    "ConditionCheck": {
                        "TableName": _table(),
                        "Key": _key(keys.pro_pk(provider), keys.PROFILE),
                        "ConditionExpression": "studio_id = :sid AND membership_status = :active",
                        "ExpressionAttributeValues": {":sid": _s(check_provider_in_studio), ":active": _s("active")},
                    }
                }
            )
        first_slot = len(actions)
        actions += [_put(slot) for slot in slots]
        reasons = _transact(actions)
        if reasons is None:
            return
        if _failed(reasons, 1):
            raise ClientGone()
        if member_index is not None and _failed(reasons, member_index):
            raise ProviderNotMember()
        if _failed(reasons, 2):
            raise ClientBlocked()
        if any(_failed(reasons, i) for i in range(first_slot, len(actions))):
            raise SlotTaken()
        _raise_unless_conditional(reasons)

    def get_appointment(self, client_id: str, appointment_id: str) -> Appointment | None:
        item = _get(Appointment, keys.client_pk(client_id), keys.appointment_sk(appointment_id))
        return item if isinstance(item, Appointment) else None

    def move_appointment(
        self,
        appointment: Appointment,
        to_status: str,
        from_statuses: tuple[str, ...],
        now: str,
        release_slots: bool,
        checkin_date: str | None,
        studio_id: str | None,
        checkin_expires_epoch: int | None,
    ) -> Appointment:
        """The status change, conditional on the status being one ``from_statuses``; in the same call
        the provider's slots are freed (cancel, no-show) or today's check-in item is written."""
        client_id = appointment.client_id
        pk, sk = keys.client_pk(client_id), keys.appointment_sk(appointment.appointment_id)
        froms = {f":from{i}": _s(s) for i, s in enumerate(from_statuses)}
        update = {
            "TableName": _table(),
            "Key": _key(pk, sk),
            "UpdateExpression": "SET #status = :to, updated_at = :now",
            "ConditionExpression": f"#status IN ({', '.join(froms)})",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":to": _s(to_status), ":now": _s(now), **froms},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        others: list[Raw] = []
        if release_slots:
            provider_pk = keys.pro_pk(appointment.provider_id)
            others += [
                {
                    "Delete": {
                        "TableName": _table(),
                        "Key": _key(provider_pk, slot),
                        "ConditionExpression": "attribute_not_exists(pk) OR appointment_id = :aid",
                        "ExpressionAttributeValues": {":aid": _s(appointment.appointment_id)},
                    }
                }
                for slot in appointment.slots or []
            ]
        if checkin_date is not None and studio_id is not None:
            others.append(
                {
                    "Update": {
                        "TableName": _table(),
                        "Key": _key(pk, keys.checkin_sk(checkin_date)),
                        "UpdateExpression": (
                            "SET kind = :kind, client_id = :cid, studio_id = :sid, local_date = :d, expires_at = :exp"
                            " ADD appointment_ids :aids"
                        ),
                        "ExpressionAttributeValues": {
                            ":kind": _s("checkin"),
                            ":cid": _s(client_id),
                            ":sid": _s(studio_id),
                            ":d": _s(checkin_date),
                            ":exp": _n(checkin_expires_epoch or 0),
                            ":aids": {"SS": [appointment.appointment_id]},
                        },
                    }
                }
            )
        if not others:
            try:
                _client().update_item(**update)
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    raise _status_refusal(exc.response.get("Item")) from None
                raise
        else:
            reasons = _transact([{"Update": update}, *others])
            if reasons is not None:
                if _failed(reasons, 0):
                    raise _status_refusal(reasons[0].get("Item"))
                _raise_unless_conditional(reasons)
        appointment.status = to_status
        appointment.updated_at = now
        return appointment

    # -- sales
    def get_purchase(self, client_id: str, purchase_id: str) -> Purchase | None:
        item = _get(Purchase, keys.client_pk(client_id), keys.purchase_sk(purchase_id))
        return item if isinstance(item, Purchase) else None

    def sell(self, item: Purchase | Package | GiftCard, profile: ProfileTouch) -> None:
        """The sale and the seller in the profile's ``history_pros`` (or a check that the client is
        still in the book), in one transaction."""
        reasons = _transact([_put(item), profile.action()])
        if reasons is None:
            return
        if _failed(reasons, 1):
            raise ClientGone()
        _raise_unless_conditional(reasons)

    def redeem_session(self, client_id: str, package_id: str, today: str, now: str) -> Package:
        """``sessions_left - 1`` only while some are left and the package has not expired."""
        raw = _update_or_refuse(
            keys.client_pk(client_id),
            keys.package_sk(package_id),
            "SET sessions_left = sessions_left - :one, last_redeemed_at = :now",
            "kind = :kind AND sessions_left > :zero AND (attribute_not_exists(expires_on) OR expires_on >= :today)",
            {
                ":one": _n(1),
                ":zero": _n(0),
                ":now": _s(now),
                ":today": _s(today),
                ":kind": _s("package"),
            },
        )
        item = item_from_raw(raw)
        assert isinstance(item, Package)
        return item

    def redeem_gift_card(
        self, client_id: str, gift_card_id: str, amount: int, now: str, currency: str | None = None
    ) -> GiftCard:
        """``balance - amount`` only while the balance covers it (and in the card's currency): never negative."""
        values = {":amount": _n(amount), ":now": _s(now), ":kind": _s("giftcard")}
        condition = "kind = :kind AND balance >= :amount"
        if currency is not None:
            condition += " AND currency = :currency"
            values[":currency"] = _s(currency)
        raw = _update_or_refuse(
            keys.client_pk(client_id),
            keys.gift_card_sk(gift_card_id),
            "SET balance = balance - :amount, last_redeemed_at = :now",
            condition,
            values,
        )
        item = item_from_raw(raw)
        assert isinstance(item, GiftCard)
        return item

    # -- the log
    def client_items(self, client_id: str) -> list[Raw]:
        """The client's whole item collection: one Query (further pages only past 1 MB)."""
        params: Raw = {
            "TableName": _table(),
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(keys.client_pk(client_id))},
            "ConsistentRead": True,  # a visit booked or a note written a moment ago is in the log
        }
        items: list[Raw] = []
        while True:
            resp = _client().query(**params)
            items += resp.get("Items", [])
            last = resp.get("LastEvaluatedKey")
            if not last:
                return items
            params["ExclusiveStartKey"] = last

    def caller_items(self, pro_id: str, client_id: str) -> tuple[ProProfile | None, bool]:
        """The caller's pro profile and whether they blocked the client: one BatchGetItem."""
        return _caller_items(pro_id, client_id)

    def access_items(self, pro_id: str, client_id: str) -> tuple[AccessRead, bool]:
        """The small items access is decided from, and whether the caller blocked the client: one
        BatchGetItem of the caller's profile and flags, the client's profile, alias and check-ins around
        today (a second one of the survivor's when the id was merged away)."""
        flags_key = (keys.pro_pk(pro_id), keys.flags_sk(client_id))
        found = batch_get(
            [flags_key, (keys.pro_pk(pro_id), keys.PROFILE), *client_access_keys(client_id)], consistent=True
        )
        flags = found.get(flags_key)
        return read_access_items(pro_id, client_id, found), bool(getattr(flags, "blocked", False))


def _caller_items(pro_id: str, client_id: str) -> tuple[ProProfile | None, bool]:
    pro_key = (keys.pro_pk(pro_id), keys.PROFILE)
    flags_key = (keys.pro_pk(pro_id), keys.flags_sk(client_id))
    found = batch_get([pro_key, flags_key], consistent=True)
    pro = found.get(pro_key)
    flags = found.get(flags_key)
    return (pro if isinstance(pro, ProProfile) else None), bool(getattr(flags, "blocked", False))


def _get(model: type[Any], pk: str, sk: str) -> Any:
    try:
        item = TableItem.get(pk, sk, consistent_read=True)
    except TableItem.DoesNotExist:
        return None
    return item if isinstance(item, model) else None


def _status_refusal(old: Raw | None) -> Exception:
    if not old:
        return NotFoundItem()
    return StatusRefused(str(plain(old).get("status", "")))


def _update_or_refuse(pk: str, sk: str, expression: str, condition: str, values: Raw) -> Raw:
    try:
        resp = _client().update_item(
            TableName=_table(),
            Key=_key(pk, sk),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        old = exc.response.get("Item")
        if not old:
            raise NotFoundItem() from None
        try:
            item = item_from_raw(old)
        except Exception:
            raise NotFoundItem() from None
        raise RedemptionRefused(item) from None
    return dict(resp["Attributes"])


repository = DynamoHistoryRepository()
