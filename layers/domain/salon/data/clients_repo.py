"""Client records: reads and writes of profiles, uniqueness items and views."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from salon import clock
from salon.data import keys
from salon.data.batch import batch_get
from salon.data.connection import table_connection
from salon.data.models import (
    CheckIn,
    ClientAlias,
    ClientFlags,
    ClientProfile,
    ClientView,
    ProProfile,
    TableItem,
    UniqueContact,
)
from salon.data.tx import retry_conflicts


class DuplicateContact(Exception):
    """A client of the same book already has this phone or email."""

    def __init__(self, existing_client_id: str, field: str) -> None:
        super().__init__(existing_client_id)
        self.existing_client_id = existing_client_id
        self.field = field


@dataclass
class AccessRead:
    """What a read of one client needs, fetched in one BatchGetItem (two when the id is an alias)."""

    pro: ProProfile | None
    client: ClientProfile | None
    checkin_dates: set[str] = field(default_factory=set)


class ClientsRepository(Protocol):
    def get_pro(self, pro_id: str) -> ProProfile | None: ...

    def read_for_access(self, pro_id: str, client_id: str) -> AccessRead: ...

    def create_client(self, profile: ClientProfile, uniques: list[UniqueContact], views: list[ClientView]) -> None: ...

    def list_views(
        self, pro_id: str, limit: int, after_client_id: str | None, name_prefix: str | None = None
    ) -> ViewPage: ...


class DynamoClientsRepository:
    """The real repository, over the single table."""

    def get_pro(self, pro_id: str) -> ProProfile | None:
        try:
            item = TableItem.get(keys.pro_pk(pro_id), keys.PROFILE, consistent_read=True)
        except TableItem.DoesNotExist:
            return None
        return item if isinstance(item, ProProfile) else None

    def read_for_access(self, pro_id: str, client_id: str) -> AccessRead:
        """The caller's profile, the client's profile, its alias and its check-ins around today.

        Today's studio-local date is one of yesterday, today and tomorrow in
        UTC whatever the time zone, so all three are named and the caller's
        studio time zone picks one afterwards. An alias (a client merged away)
        costs a second read of the survivor.
        """
        found = batch_get([(keys.pro_pk(pro_id), keys.PROFILE), *_client_keys(client_id)], consistent=True)
        return read_access_items(pro_id, client_id, found)

    def create_client(self, profile: ClientProfile, uniques: list[UniqueContact], views: list[ClientView]) -> None:
        """Profile, uniqueness items and the creator's view in one transaction.

        A taken phone or email cancels the whole transaction; the uniqueness
        item that failed hands back the existing client's id (ALL_OLD), so the
        409 costs no further read.
        """
        items: list[TableItem] = [profile, *uniques, *views]

        def write() -> None:
            try:
                with TransactWrite(connection=table_connection()) as transaction:
                    transaction.save(profile, condition=TableItem.pk.does_not_exist())
                    for unique in uniques:
                        transaction.save(unique, condition=TableItem.pk.does_not_exist(), return_values=ALL_OLD)
                    for view in views:
                        transaction.save(view)
            except TransactWriteError as exc:
                reasons = exc.cancellation_reasons or []
                for item, reason in zip(items, reasons, strict=False):
                    if (
                        reason is not None
                        and reason.code == "ConditionalCheckFailed"
                        and isinstance(item, UniqueContact)
                    ):
                        existing = (reason.raw_item or {}).get("client_id", {}).get("S")
                        if existing:
                            field = "phone" if "#PHONE#" in item.pk else "email"
                            raise DuplicateContact(existing, field) from None
                raise  # another transaction on the same phone or email in flight is tried again

        retry_conflicts(write)

    def list_views(
        self, pro_id: str, limit: int, after_client_id: str | None, name_prefix: str | None = None
    ) -> ViewPage:
        """One Query of the pro's partition: up to ``limit`` views with their flags, and whether more follow.

        Flags siblings (``CLIENT#<cid>#FLAGS``) sort right after their view, so a
        page asks for twice the views plus one and stops at ``limit`` views. A
        name prefix filters views (flags always pass the filter and are dropped
        when their view did not).
        """
        start = None
        if after_client_id is not None:
            start = {"pk": {"S": keys.pro_pk(pro_id)}, "sk": {"S": keys.flags_sk(after_client_id)}}
        condition = None
        if name_prefix:
            condition = ClientView.name_folded.startswith(name_prefix) | ClientFlags.blocked.exists()
        results = TableItem.query(
            keys.pro_pk(pro_id),
            TableItem.sk.startswith("CLIENT#"),
            filter_condition=condition,
            limit=2 * limit + 1,
            page_size=2 * limit + 1,
            last_evaluated_key=start,
            consistent_read=True,  # the creator's view, written with the client (D1), is in the first answer
        )
        page = ViewPage()
        for item in results:
            if isinstance(item, ClientView):
                if len(page.views) == limit:
                    page.more = True
                    break
                page.views.append(item)
            elif isinstance(item, ClientFlags) and page.views and page.views[-1].client_id == item.client_id:
                page.flags[item.client_id] = item
        else:
            page.more = results.last_evaluated_key is not None
        return page


@dataclass
class ViewPage:
    views: list[ClientView] = field(default_factory=list)
    flags: dict[str, ClientFlags] = field(default_factory=dict)
    more: bool = False


def read_access_items(pro_id: str, client_id: str, found: dict[tuple[str, str], TableItem]) -> AccessRead:
    """What access is decided from, out of a BatchGetItem of the caller's profile and ``client_access_keys``
    (an alias costs a second read, of the survivor's keys)."""
    pro = found.get((keys.pro_pk(pro_id), keys.PROFILE))
    client = found.get((keys.client_pk(client_id), keys.PROFILE))
    alias = found.get((keys.client_pk(client_id), keys.ALIAS))
    if client is None and isinstance(alias, ClientAlias):
        client_id = alias.client_id
        found = {**found, **batch_get(_client_keys(client_id), consistent=True)}
        client = found.get((keys.client_pk(client_id), keys.PROFILE))
    checkins = {item.local_date for item in found.values() if isinstance(item, CheckIn) and item.client_id == client_id}
    return AccessRead(
        pro=pro if isinstance(pro, ProProfile) else None,
        client=client if isinstance(client, ClientProfile) else None,
        checkin_dates=checkins,
    )


def client_access_keys(client_id: str) -> list[tuple[str, str]]:
    """The client's items access is decided from: profile, alias, check-ins around today."""
    return _client_keys(client_id)


def _client_keys(client_id: str) -> list[tuple[str, str]]:
    today = clock.now().date()
    dates = [(today + dt.timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    pk = keys.client_pk(client_id)
    return [(pk, keys.PROFILE), (pk, keys.ALIAS), *((pk, keys.checkin_sk(d)) for d in dates)]


repository = DynamoClientsRepository()


class StaleVersion(Exception):
    pass


class ClientWrites:
    """Writes on an existing client: profile edits with their uniqueness items, assignment, flags, deletion."""

    def update_profile(
        self,
        profile: ClientProfile,
        fields: list[str],
        expected_version: int,
        old_uniques: list[str],
        new_uniques: list[UniqueContact],
        view: ClientView | None,
    ) -> None:
        """Only the edited fields are written (an assignment made meanwhile is kept), conditional on the
        version the caller read; uniqueness items are swapped in the same transaction, so a taken phone or
        email cancels everything."""
        from salon.data.tx import TransactionCancelled, Tx, n

        serialized = profile.serialize()
        names: dict[str, str] = {}
        values: dict[str, Any] = {":expected": n(expected_version)}
        sets, removes = [], []
        for i, name in enumerate([*fields, "version", "updated_at"]):
            names[f"#f{i}"] = name
            if name in serialized:
                values[f":v{i}"] = serialized[name]
                sets.append(f"#f{i} = :v{i}")
            else:
                removes.append(f"#f{i}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        tx = Tx()
        index = tx.update(
            profile.pk,
            profile.sk,
            expression,
            values=values,
            names=names,
            condition="version = :expected AND attribute_not_exists(deleted_at)",
        )
        unique_index: dict[int, UniqueContact] = {}
        for pk in old_uniques:
            tx.delete(pk, keys.UNIQUE)
        for unique in new_uniques:
            unique_index[tx.put(unique, condition="attribute_not_exists(pk)", return_old=True)] = unique
        if view is not None:
            tx.put(view)
        try:
            tx.run()
        except TransactionCancelled as exc:
            if exc.failed(index):
                raise StaleVersion() from None
            for i, unique in unique_index.items():
                if exc.failed(i):
                    existing = (exc.old_item(i) or {}).get("client_id", {}).get("S", "")
                    raise DuplicateContact(existing, "phone" if "#PHONE#" in unique.pk else "email") from None
            raise

    def add_assignee(
        self, client_id: str, owner: str, pro_id: str, *, stamp: tuple[str, str, str] | None = None
    ) -> None:
        """Assign ``pro_id``; ``stamp`` (who, why, when) is written with it for the audit trail."""
        from salon.data.tx import s, update_item

        expression = "ADD assignees :pro"
        values = {":pro": {"SS": [pro_id]}, ":owner": s(owner)}
        if stamp is not None:
            expression += " SET changed_by = :by, change_reason = :why, change_at = :at"
            values |= {":by": s(stamp[0]), ":why": s(stamp[1]), ":at": s(stamp[2])}
        update_item(
            keys.client_pk(client_id),
            keys.PROFILE,
            expression,
            values=values,
            condition="#owner = :owner AND attribute_not_exists(deleted_at)",
            names={"#owner": "owner"},
        )

    def count_duplicate_assignment(
        self, pro_id: str, studio_id: str, local_date: str, limit: int, expires_at: int
    ) -> bool:
        """Take one of the provider's ``limit`` walk-in assignments of the studio-local day: one conditional
        write, so concurrent registrations never pass the limit; False when the day's are used up. The item
        expires (TTL) once the day is over."""
        from salon.data.tx import claim_below

        return claim_below(
            keys.pro_pk(pro_id),
            keys.duplicate_assignments_sk(studio_id, local_date),
            "assignment_count",
            "assigned",
            limit,
            expires_at,
        )

    def get_profile(self, client_id: str) -> ClientProfile | None:
        """One client's profile (strongly consistent: it decides what a 409 may name)."""
        try:
            item = TableItem.get(keys.client_pk(client_id), keys.PROFILE, consistent_read=True)
        except TableItem.DoesNotExist:
            return None
        return item if isinstance(item, ClientProfile) else None

    def remove_assignee(self, client_id: str, owner: str, pro_id: str) -> None:
        from salon.data.tx import s, update_item

        update_item(
            keys.client_pk(client_id),
            keys.PROFILE,
            "DELETE assignees :pro",
            values={":pro": {"SS": [pro_id]}, ":owner": s(owner)},
            condition="#owner = :owner",
            names={"#owner": "owner"},
        )

    def mark_deleted(self, client_id: str, owner: str, version: int, now_iso: str) -> None:
        """Take the client out of every view at once (the fan-out sees no assignees); the stream turns the
        mark into a cascade job that removes its items, files and uniqueness items."""
        from salon.data.tx import n, s, update_item

        update_item(
            keys.client_pk(client_id),
            keys.PROFILE,
            "SET deleted_at = :now, version = :next, updated_at = :now REMOVE assignees",
            values={":now": s(now_iso), ":next": n(version + 1), ":v": n(version), ":owner": s(owner)},
            condition="version = :v AND #owner = :owner AND attribute_not_exists(deleted_at)",
            names={"#owner": "owner"},
        )

    def set_flags(self, flags: ClientFlags) -> None:
        flags.save()

    def feed(self, pro_id: str, after_sk: str, limit: int) -> tuple[list[TableItem], bool]:
        condition = TableItem.gsi2sk > after_sk if after_sk else None
        results = TableItem.feed_index.query(keys.feed_pk(pro_id), condition, limit=limit, page_size=limit)
        items = list(results)
        return items, results.last_evaluated_key is not None


writes = ClientWrites()
