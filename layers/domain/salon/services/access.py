"""Who may see which client, decided in one place and before anything else.

An HTTP function reads a client's access once per request (one BatchGetItem:
the caller's profile, the client's profile, its alias and today's check-ins);
the handler factory does it before routing and validation, so a caller who
may not see a client gets the same 404 as for a client that does not exist,
never a validation, plan or limit error that would reveal it. Services then
ask :func:`client_access` again and get the same result without another read.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from salon import clock
from salon.data import keys
from salon.data.clients_repo import ClientsRepository, repository
from salon.data.models import ClientProfile, ProProfile
from salon.errors import Forbidden, NotFound
from salon.identity import Caller
from salon.settings import get_settings

MASKED_ROLES = frozenset({"apprentice", "assistant"})
ADMIN = "admin"
PROVIDER = "provider"


@dataclass(frozen=True)
class Book:
    """The book a caller works in: a studio's while a member, else their own."""

    owner: str
    country: str
    studio_id: str | None
    role: str | None
    time_zone: str = "UTC"
    plan: str = "basic"

    @property
    def is_studio(self) -> bool:
        return self.studio_id is not None

    @property
    def masked(self) -> bool:
        return self.role in MASKED_ROLES

    @property
    def is_admin(self) -> bool:
        return not self.is_studio or self.role == ADMIN


def book_of(caller: Caller, pro: ProProfile | None, default_country: str | None = None) -> Book:
    country = default_country or get_settings().default_country
    if pro is not None and pro.studio_id and pro.membership_status == "active":
        return Book(
            owner=keys.book_owner_for_studio(pro.studio_id),
            country=pro.studio_country or country,
            studio_id=pro.studio_id,
            role=pro.role,
            time_zone=pro.studio_time_zone or "UTC",
            plan=pro.studio_plan or "basic",
        )
    return Book(
        owner=keys.book_owner_for_pro(caller.pro_id),
        country=country,
        studio_id=None,
        role=None,
        plan=(pro.plan if pro is not None and pro.plan else "basic"),
    )


def local_today(time_zone: str) -> str:
    """Today's date in a studio's time zone, ``YYYY-MM-DD``."""
    from zoneinfo import ZoneInfo

    return clock.now().astimezone(ZoneInfo(time_zone)).date().isoformat()


@dataclass(frozen=True)
class ClientAccess:
    """What the caller may do with one client they may see."""

    caller: Caller
    pro: ProProfile | None
    book: Book
    client: ClientProfile
    assigned: bool
    checked_in_today: bool = False
    requested_id: str = ""

    @property
    def awaiting_import(self) -> bool:
        """A personal client of a pro who joined a studio, not yet moved by the import."""
        return self.book.is_studio and self.client.owner == keys.pro_pk(self.caller.pro_id)

    @property
    def client_id(self) -> str:
        return str(self.client.client_id)

    @property
    def masked(self) -> bool:
        return self.book.masked

    @property
    def role(self) -> str | None:
        return self.book.role

    @property
    def can_edit(self) -> bool:
        """Edit the profile, block, sell: admins, and providers assigned to the client."""
        return self.book.is_admin or (self.role == PROVIDER and self.assigned)

    @property
    def can_write_notes(self) -> bool:
        """Add notes and formulas: admins, assigned members, and apprentices and assistants on a
        client checked in today (as for the log)."""
        return self.book.is_admin or self.assigned or (self.masked and self.checked_in_today)

    def can_edit_note(self, author_id: str) -> bool:
        """Edit a note: its author only, whatever their role."""
        return author_id == self.caller.pro_id

    @property
    def can_delete_any_note(self) -> bool:
        """Admins delete any note of a client they see; everyone else only their own."""
        return self.book.is_admin

    def can_delete_note(self, author_id: str) -> bool:
        """Delete a note: its author, or an admin for any note."""
        return self.can_delete_any_note or author_id == self.caller.pro_id

    @property
    def can_manage_files(self) -> bool:
        """Upload or delete files: admins, and providers assigned to the client."""
        return self.book.is_admin or (self.role == PROVIDER and self.assigned)

    @property
    def can_sell(self) -> bool:
        """Sell products, packages and gift cards, and redeem them: as for editing the profile."""
        return self.can_edit

    @property
    def can_book(self) -> bool:
        """Book appointments at all: admins (for any active member) and providers (for themselves)."""
        return self.book.is_admin or self.role == PROVIDER

    def can_book_for(self, provider_id: str) -> bool:
        """Book, check in, complete, cancel or mark missed an appointment served by ``provider_id``.

        A solo pro's book has one member, themselves; a studio admin may name any member (the
        booking's transaction checks the member is active in the studio).
        """
        if self.book.is_admin:
            return self.book.is_studio or provider_id == self.caller.pro_id
        return self.role == PROVIDER and provider_id == self.caller.pro_id

    @property
    def is_admin(self) -> bool:
        """A solo pro is the admin of their own book."""
        return self.book.is_admin

    def require(self, allowed: bool, message: str = "Your role may not do this.") -> None:
        """403 when the caller may see the client but not do this to it."""
        if not allowed:
            raise Forbidden(message)


def visible(caller: Caller, book: Book, client: ClientProfile | None, *, checked_in_today: bool = False) -> bool:
    if client is None or getattr(client, "deleted_at", None):
        return False
    if client.owner == keys.pro_pk(caller.pro_id):
        return True  # the pro's own personal client (a member's, until the import moves it)
    if client.owner != book.owner:
        return False
    if not book.is_studio or book.role == ADMIN:
        return True
    if caller.pro_id in (client.assignees or set()):
        return True
    return book.role in MASKED_ROLES and checked_in_today


def require_visible(caller: Caller, book: Book, client: ClientProfile | None) -> ClientProfile:
    """The client if the caller may see it; otherwise the same 404 as a client that does not exist."""
    if client is None or not visible(caller, book, client):
        raise NotFound("No such client.", code="client_not_found")
    return client


_scope: ContextVar[dict[tuple[str, str], ClientAccess] | None] = ContextVar("client_access_scope", default=None)


def begin_request() -> None:
    """Forget what the previous request read (one Lambda instance serves one request at a time)."""
    _scope.set({})


def client_access(caller: Caller, client_id: str, repo: ClientsRepository = repository) -> ClientAccess:
    """The caller's access to a client, read once per request; 404 when they may not see it."""
    cache = _scope.get()
    if cache is not None and (caller.pro_id, client_id) in cache:
        return cache[(caller.pro_id, client_id)]
    read = repo.read_for_access(caller.pro_id, client_id)
    book = book_of(caller, read.pro)
    checked_in = book.is_studio and local_today(book.time_zone) in read.checkin_dates
    if read.client is None or not visible(caller, book, read.client, checked_in_today=checked_in):
        raise NotFound("No such client.", code="client_not_found")
    client = read.client
    access = ClientAccess(
        caller=caller,
        pro=read.pro,
        book=book,
        client=client,
        assigned=caller.pro_id in (client.assignees or set()),
        checked_in_today=checked_in,
        requested_id=client_id,
    )
    if cache is not None:
        cache[(caller.pro_id, client_id)] = access
    return access


def seed_access(
    caller: Caller,
    client_id: str,
    pro: ProProfile | None,
    client: ClientProfile | None,
    checkin_dates: set[str],
) -> ClientAccess:
    """Decide access from items a route read itself (the Client Log's Query and profile read) and
    keep it for the request, as :func:`client_access` would; 404 when the caller may not see it."""
    book = book_of(caller, pro)
    checked_in = book.is_studio and local_today(book.time_zone) in checkin_dates
    if client is None or not visible(caller, book, client, checked_in_today=checked_in):
        raise NotFound("No such client.", code="client_not_found")
    access = ClientAccess(
        caller=caller,
        pro=pro,
        book=book,
        client=client,
        assigned=caller.pro_id in (client.assignees or set()),
        checked_in_today=checked_in,
        requested_id=client_id,
    )
    cache = _scope.get()
    if cache is not None:
        cache[(caller.pro_id, client_id)] = access
    return access
