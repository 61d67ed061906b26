"""Client records: reads and writes of profiles, uniqueness items and views."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from salon.data import keys
from salon.data.batch import batch_get
from salon.data.connection import table_connection
from salon.data.models import CheckIn, ClientAlias, ClientProfile, ClientView, ProProfile, TableItem, UniqueContact


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

    def list_views(self, pro_id: str, limit: int, after_client_id: str | None) -> tuple[list[ClientView], bool]: ...


class DynamoClientsRepository:
    """The real repository, over the single table."""

    def get_pro(self, pro_id: str) -> ProProfile | None:
        try:
            item = TableItem.get(keys.pro_pk(pro_id), keys.PROFILE)
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
        pro_key = (keys.pro_pk(pro_id), keys.PROFILE)
        found = batch_get([pro_key, *_client_keys(client_id)])
        pro = found.get(pro_key)
        client = found.get((keys.client_pk(client_id), keys.PROFILE))
        alias = found.get((keys.client_pk(client_id), keys.ALIAS))
        if client is None and isinstance(alias, ClientAlias):
            client_id = alias.client_id
            found.update(batch_get(_client_keys(client_id)))
            client = found.get((keys.client_pk(client_id), keys.PROFILE))
        checkins = {
            item.local_date for item in found.values() if isinstance(item, CheckIn) and item.client_id == client_id
        }
        return AccessRead(
            pro=pro if isinstance(pro, ProProfile) else None,
            client=client if isinstance(client, ClientProfile) else None,
            checkin_dates=checkins,
        )

    def create_client(self, profile: ClientProfile, uniques: list[UniqueContact], views: list[ClientView]) -> None:
        """Profile, uniqueness items and the creator's view in one transaction.

        A taken phone or email cancels the whole transaction; the uniqueness
        item that failed hands back the existing client's id (ALL_OLD), so the
        409 costs no further read.
        """
        items: list[TableItem] = [profile, *uniques, *views]
        try:
            with TransactWrite(connection=table_connection()) as tx:
                tx.save(profile, condition=TableItem.pk.does_not_exist())
                for unique in uniques:
                    tx.save(unique, condition=TableItem.pk.does_not_exist(), return_values=ALL_OLD)
                for view in views:
                    tx.save(view)
        except TransactWriteError as exc:
            for item, reason in zip(items, exc.cancellation_reasons or [], strict=False):
                if reason is not None and reason.code == "ConditionalCheckFailed" and isinstance(item, UniqueContact):
                    existing = (reason.raw_item or {}).get("client_id", {}).get("S")
                    if existing:
                        field = "phone" if "#PHONE#" in item.pk else "email"
                        raise DuplicateContact(existing, field) from None
            raise

    def list_views(self, pro_id: str, limit: int, after_client_id: str | None) -> tuple[list[ClientView], bool]:
        """One Query of the pro's partition: up to ``limit`` views, and whether more follow.

        Flags siblings (``CLIENT#<cid>#FLAGS``) sort right after their view, so a
        page asks for twice the views plus one and stops at ``limit`` views.
        """
        start = None
        if after_client_id is not None:
            start = {"pk": {"S": keys.pro_pk(pro_id)}, "sk": {"S": keys.flags_sk(after_client_id)}}
        results = TableItem.query(
            keys.pro_pk(pro_id),
            TableItem.sk.startswith("CLIENT#"),
            limit=2 * limit + 1,
            page_size=2 * limit + 1,
            last_evaluated_key=start,
        )
        views: list[ClientView] = []
        more = False
        for item in results:
            if isinstance(item, ClientView):
                if len(views) == limit:
                    more = True
                    break
                views.append(item)
        else:
            more = results.last_evaluated_key is not None
        return views, more


def _client_keys(client_id: str) -> list[tuple[str, str]]:
    today = dt.datetime.now(dt.UTC).date()
    dates = [(today + dt.timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    pk = keys.client_pk(client_id)
    return [(pk, keys.PROFILE), (pk, keys.ALIAS), *((pk, keys.checkin_sk(d)) for d in dates)]


repository = DynamoClientsRepository()
