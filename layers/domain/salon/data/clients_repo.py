"""Client records: reads and writes of profiles, uniqueness items and views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from salon.data import keys
from salon.data.connection import table_connection
from salon.data.models import ClientProfile, ClientView, ProProfile, TableItem, UniqueContact


class DuplicateContact(Exception):
    """A client of the same book already has this phone or email."""

    def __init__(self, existing_client_id: str, field: str) -> None:
        super().__init__(existing_client_id)
        self.existing_client_id = existing_client_id
        self.field = field


@dataclass
class AccessRead:
    """What a read of one client needs, fetched in one BatchGetItem."""

    pro: ProProfile | None
    client: ClientProfile | None


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
        wanted = [(keys.pro_pk(pro_id), keys.PROFILE), (keys.client_pk(client_id), keys.PROFILE)]
        found = {(i.pk, i.sk): i for i in TableItem.batch_get(wanted)}
        pro = found.get(wanted[0])
        client = found.get(wanted[1])
        return AccessRead(
            pro=pro if isinstance(pro, ProProfile) else None,
            client=client if isinstance(client, ClientProfile) else None,
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


repository = DynamoClientsRepository()
