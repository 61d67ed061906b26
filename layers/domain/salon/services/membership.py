"""A studio's shared book: the studio list, assignments and deleting a studio client."""

from __future__ import annotations

from salon import clock
from salon.data import keys
from salon.data.clients_repo import ClientsRepository, repository, writes
from salon.data.models import ClientProfile, TableItem
from salon.data.tx import ConditionFailed
from salon.errors import Conflict, Forbidden, NotFound
from salon.identity import Caller
from salon.schemas.clients import ClientPage
from salon.schemas.common import decode_cursor, encode_cursor
from salon.services.access import book_of, client_access
from salon.services.clients import list_my_clients, to_client
from salon.services.contact import fold_name


def list_studio_clients(
    caller: Caller,
    studio_id: str,
    limit: int,
    cursor: str | None,
    q: str | None,
    repo: ClientsRepository = repository,
) -> ClientPage:
    """Admins: the whole studio by name (one Query of the book index). Others: their assigned clients."""
    book = book_of(caller, repo.get_pro(caller.pro_id))
    if book.studio_id != studio_id:
        raise NotFound("No such studio.", code="studio_not_found")
    if book.role != "admin":
        return list_my_clients(caller, limit, cursor, q, repo)
    start = None
    if cursor:
        position = decode_cursor(cursor)
        if not position.get("sk", "").startswith("NAME#") or position.get("id", "")[:7] != "CLIENT#":
            from salon.errors import field_error

            raise field_error("query", "cursor", "Not a cursor this API gave out.")
        start = {
            "pk": {"S": position["id"]},
            "sk": {"S": keys.PROFILE},
            "gsi1pk": {"S": keys.book_pk(book.owner)},
            "gsi1sk": {"S": position["sk"]},
        }
    prefix = "NAME#" + (fold_name(q) if q else "")
    results = TableItem.book_index.query(
        keys.book_pk(book.owner),
        TableItem.gsi1sk.startswith(prefix),
        limit=limit,
        page_size=limit,
        last_evaluated_key=start,
    )
    profiles = [p for p in results if isinstance(p, ClientProfile) and not getattr(p, "deleted_at", None)]
    next_cursor = None
    if results.last_evaluated_key is not None:
        last = results.last_evaluated_key
        next_cursor = encode_cursor({"id": last["pk"]["S"], "sk": last["gsi1sk"]["S"]})
    return ClientPage(items=[to_client(p, book) for p in profiles], next_cursor=next_cursor)


def _admin_access(caller: Caller, studio_id: str, client_id: str, repo: ClientsRepository) -> ClientProfile:
    access = client_access(caller, client_id, repo)
    if access.book.studio_id != studio_id or access.client.owner != access.book.owner:
        raise NotFound("No such client.", code="client_not_found")
    if access.role != "admin":
        raise Forbidden("Only studio admins may do this.", code="admin_only")
    return access.client


def assign(caller: Caller, studio_id: str, client_id: str, pro_id: str, repo: ClientsRepository = repository) -> None:
    """Give a member the client; their view arrives through the stream."""
    profile = _admin_access(caller, studio_id, client_id, repo)
    member = repo.get_pro(pro_id)
    if member is None or member.studio_id != studio_id or member.membership_status != "active":
        raise NotFound("No such member.", code="member_not_found")
    try:
        writes.add_assignee(profile.client_id, profile.owner, pro_id)
    except ConditionFailed:
        raise NotFound("No such client.", code="client_not_found") from None


def unassign(caller: Caller, studio_id: str, client_id: str, pro_id: str, repo: ClientsRepository = repository) -> None:
    """Take a member off the client: their view is removed (a tombstone in their change feed)."""
    profile = _admin_access(caller, studio_id, client_id, repo)
    try:
        writes.remove_assignee(profile.client_id, profile.owner, pro_id)
    except ConditionFailed:
        raise NotFound("No such client.", code="client_not_found") from None


def delete_studio_client(caller: Caller, studio_id: str, client_id: str, repo: ClientsRepository = repository) -> None:
    """Admins delete a studio client: every view goes at once, then a job removes its notes, formulas,
    files (S3 objects too) and history. A client with an open package or gift card stays (409)."""
    profile = _admin_access(caller, studio_id, client_id, repo)
    time_zone = client_access(caller, client_id, repo).book.time_zone  # kept for the request: no second read
    if has_open_balance(profile.client_id, time_zone):
        raise Conflict("The client has an open package or gift-card balance.", code="open_balance")
    try:
        writes.mark_deleted(profile.client_id, profile.owner, int(profile.version), clock.now_iso())
    except ConditionFailed:
        raise Conflict("The client changed meanwhile; try again.", code="client_changed") from None


def _balance_today(time_zone: str | None) -> str:
    """The date a package's last day (``expires_on``, a date in the studio's time zone, D8) is compared with:
    today in ``time_zone``; where the zone is not known, the earliest date anywhere on Earth (UTC-12), so a
    package whose last day is not over somewhere is never taken for expired."""
    from salon.services.access import local_today

    return local_today(time_zone or "Etc/GMT+12")


def has_open_balance(client_id: str, time_zone: str | None = None) -> bool:
    """A package with sessions left (and not expired in the studio's time zone) or a gift card with a balance:
    one Query of the client's collection, filtered to packages and gift cards."""
    from salon.data.models import GiftCard, Package

    today = _balance_today(time_zone)
    from pynamodb.expressions.operand import Path

    # Key attributes cannot appear in a filter: packages and gift cards are told apart by their kind.
    items = TableItem.query(
        keys.client_pk(client_id), filter_condition=Path("kind").is_in("package", "giftcard"), consistent_read=True
    )
    return any(isinstance(i, Package | GiftCard) and _open(i, today) for i in items)


def open_balance_in(items: list[TableItem], time_zone: str | None = None) -> bool:
    """The same rule over items already read (a departure reads the client's whole collection)."""
    from salon.data.models import GiftCard, Package

    today = _balance_today(time_zone)
    return any(isinstance(i, Package | GiftCard) and _open(i, today) for i in items)


def _open(item: TableItem, today: str) -> bool:
    sessions = getattr(item, "sessions_left", None)
    if sessions is not None and int(sessions) > 0:
        expires = getattr(item, "expires_on", None)
        return not expires or str(expires) >= today
    balance = getattr(item, "balance", None)
    return balance is not None and int(balance) > 0
