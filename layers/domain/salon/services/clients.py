"""Client rules: identity (dedup), reading with access checks, the caller's list."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from typing import Any

from salon import clock, metrics
from salon.data import keys
from salon.data.clients_repo import ClientsRepository, DuplicateContact, StaleVersion, repository, writes
from salon.data.models import ClientFlags, ClientProfile, ClientTombstone, ClientView, UniqueContact
from salon.data.tx import ConditionFailed, WriteConflict
from salon.errors import (
    AppError,
    Conflict,
    Gone,
    PreconditionFailed,
    TooManyRequests,
    field_error,
)
from salon.http_input import if_match_versions
from salon.identity import Caller
from salon.ids import is_ulid, new_id
from salon.schemas.clients import Block, Change, ChangePage, Client, ClientCreate, ClientPage, ClientUpdate
from salon.schemas.common import decode_cursor, encode_cursor
from salon.schemas.me import Me
from salon.services.access import PROVIDER, Book, book_of, client_access, local_today
from salon.services.contact import fold_name, normalise_email, normalise_phone, require_visible_name
from salon.services.views import build_view
from salon.settings import get_settings


def who_am_i(caller: Caller, repo: ClientsRepository = repository) -> Me:
    pro = repo.get_pro(caller.pro_id)
    book = book_of(caller, pro, get_settings().default_country)
    return Me(
        pro_id=caller.pro_id,
        studio_id=book.studio_id,
        role=book.role,
        plan=book.plan,
    )


def create_client(caller: Caller, data: ClientCreate, repo: ClientsRepository = repository) -> Client:
    """Register a client in the caller's book; a duplicate phone or email is a 409 that names the existing
    client only to whoever may see it after the answer (SPEC "Client identity")."""
    name_folded = require_visible_name(data.name)
    book = book_of(caller, repo.get_pro(caller.pro_id), get_settings().default_country)
    phone = normalise_phone(data.phone, book.country) if data.phone else None
    email = normalise_email(data.email) if data.email else None

    now = clock.now_iso()
    client_id = new_id()
    profile = ClientProfile(keys.client_pk(client_id), keys.PROFILE)
    profile.client_id = client_id
    profile.owner = book.owner
    profile.name = data.name
    profile.name_folded = name_folded
    profile.phone = phone
    profile.email = email
    profile.phone_by = caller.pro_id if phone else None
    profile.email_by = caller.pro_id if email else None
    profile.changed_by, profile.change_reason, profile.change_at = _stamp(caller, "POST /clients")
    profile.birthday = data.birthday.isoformat() if data.birthday else None
    profile.tags = list(data.tags)
    profile.allergies = list(data.allergies)
    profile.marketing_consent = data.marketing_consent
    profile.version = 1
    profile.created_at = now
    profile.updated_at = now
    profile.created_by = caller.pro_id
    profile.brought_by = caller.pro_id
    profile.assignees = {caller.pro_id}
    profile.history_pros = set()
    profile.gsi1pk = keys.book_pk(book.owner)
    profile.gsi1sk = keys.book_name_sk(profile.name_folded, client_id)

    uniques = []
    if phone:
        uniques.append(_unique(keys.unique_phone_pk(book.owner, phone), client_id))
    if email:
        uniques.append(_unique(keys.unique_email_pk(book.owner, email), client_id))
    # The creator's own view is written in the same transaction, so their list
    # shows the client at once; everyone else's follows through the stream.
    view = build_view(profile, caller.pro_id, masked=book.masked, changed_at_us=clock.now_us())
    try:
        repo.create_client(profile, uniques, [view])
        metrics.count(metrics.CLIENTS_CREATED)
    except WriteConflict:
        raise Conflict("Someone is registering the same client right now; try again.", code="write_conflict") from None
    except DuplicateContact as dup:
        raise _duplicate_on_create(caller, book, dup, name_folded) from None
    return to_client(profile, book)


#: Walk-ins a provider may be assigned to per studio-local day by registering them again (SPEC).
DUPLICATE_ASSIGNMENTS_PER_DAY = 10
REGISTERED_DUPLICATE = "registered_duplicate"


def _stamp(caller: Caller, reason: str) -> tuple[str, str, str]:
    """Who and why of a write, and a mark of when (microseconds: unique per write of one client)."""
    return caller.pro_id, reason, str(clock.now_us())


def _duplicate_on_create(caller: Caller, book: Book, dup: DuplicateContact, name_folded: str) -> AppError:
    """The 409 of a registration whose phone or email is taken, naming the client only to a caller who may
    see it after the answer: a solo pro, an admin, a member already assigned to it, and a provider
    registering the same person under the same name (a walk-in), who is assigned to it now. Knowing a
    phone number or an email opens nothing else: apprentices, assistants and a provider who gave another
    name get no id (one read of the existing profile decides, on the 409 only)."""
    if book.is_admin:
        return _duplicate(dup)
    existing = writes.get_profile(dup.existing_client_id)
    if existing is None or existing.owner != book.owner or getattr(existing, "deleted_at", None):
        return _duplicate(dup, named=False)
    if caller.pro_id in (existing.assignees or set()):
        return _duplicate(dup)
    if book.role == PROVIDER and fold_name(existing.name) == name_folded:
        return _assign_walk_in(caller, book, dup)
    return _duplicate(dup, named=False)


def _assign_walk_in(caller: Caller, book: Book, dup: DuplicateContact) -> AppError:
    """Assign a provider to the walk-in they registered again, at most ``DUPLICATE_ASSIGNMENTS_PER_DAY`` a
    studio-local day (one conditional counter write; then 429), recorded for the audit trail."""
    assert book.studio_id is not None
    today = local_today(book.time_zone)
    if not writes.count_duplicate_assignment(
        caller.pro_id, book.studio_id, today, DUPLICATE_ASSIGNMENTS_PER_DAY, _day_over(today)
    ):
        limited = TooManyRequests(
            f"You were assigned {DUPLICATE_ASSIGNMENTS_PER_DAY} clients already in the studio today by registering"
            " them again; ask an admin to assign this one.",
            code="assignment_limit",
            details={"limit": DUPLICATE_ASSIGNMENTS_PER_DAY, "field": dup.field},
        )
        limited.retry_after = _seconds_to_midnight(book.time_zone)
        return limited
    try:
        writes.add_assignee(
            dup.existing_client_id, book.owner, caller.pro_id, stamp=_stamp(caller, REGISTERED_DUPLICATE)
        )
    except ConditionFailed:
        return _duplicate(dup, named=False)  # deleted meanwhile
    return _duplicate(dup)


def _seconds_to_midnight(time_zone: str) -> int:
    """Until the studio-local day ends (a new day, new walk-ins): the 429's ``Retry-After``."""
    from zoneinfo import ZoneInfo

    now = clock.now().astimezone(ZoneInfo(time_zone))
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), now.tzinfo)
    return max(1, int((midnight.astimezone(dt.UTC) - clock.now()).total_seconds()))  # in UTC: DST days too


def _day_over(local_date: str) -> int:
    """Epoch seconds when a studio-local day's counter may expire: two days after its UTC start, later than
    the end of that day in every time zone."""
    start = dt.datetime.fromisoformat(local_date).replace(tzinfo=dt.UTC)
    return int((start + dt.timedelta(days=2)).timestamp())


def get_client(caller: Caller, client_id: str, repo: ClientsRepository = repository) -> Client:
    access = client_access(caller, client_id, repo)
    return to_client(access.client, access.book)


def list_my_clients(
    caller: Caller, limit: int, cursor: str | None, q: str | None = None, repo: ClientsRepository = repository
) -> ClientPage:
    after = _cursor_client_id(cursor) if cursor else None
    page = repo.list_views(caller.pro_id, limit, after, fold_name(q) if q else None)
    next_cursor = encode_cursor({"after": page.views[-1].client_id}) if page.more and page.views else None
    items = [view_to_client(v, blocked=_blocked(page.flags.get(v.client_id))) for v in page.views]
    return ClientPage(items=items, next_cursor=next_cursor)


def _blocked(flags: ClientFlags | None) -> bool:
    return bool(flags is not None and flags.blocked)


def _cursor_client_id(cursor: str) -> str:
    after = decode_cursor(cursor).get("after", "")
    if not is_ulid(after):
        raise field_error("query", "cursor", "Not a cursor this API gave out.")
    return after


def _duplicate(dup: DuplicateContact, *, named: bool = True) -> Conflict:
    """The 409 of a taken phone or email; it names the client who has it only when ``named``."""
    if not named:
        return Conflict(
            f"A client with this {dup.field} is already in the book; ask an admin.",
            code="duplicate_client",
            details={"field": dup.field},
        )
    return Conflict(
        f"A client with this {dup.field} is already in the book.",
        code="duplicate_client",
        details={"existing_client_id": dup.existing_client_id, "field": dup.field},
    )


def _unique(pk: str, client_id: str) -> UniqueContact:
    item = UniqueContact(pk, keys.UNIQUE)
    item.client_id = client_id
    return item


def _book_fields(owner: str) -> dict[str, object]:
    if owner.startswith("STUDIO#"):
        return {"book": "studio", "studio_id": owner.split("#", 1)[1]}
    return {"book": "personal", "studio_id": None}


def to_client(profile: ClientProfile, book: Book) -> Client:
    masked = book.masked
    return Client(
        client_id=profile.client_id,
        name=profile.name,
        phone=None if masked else profile.phone,
        email=None if masked else profile.email,
        birthday=dt.date.fromisoformat(profile.birthday) if profile.birthday else None,
        tags=list(profile.tags or []),
        allergies=list(profile.allergies or []),
        marketing_consent=bool(profile.marketing_consent),
        masked=masked,
        version=int(profile.version),
        created_at=dt.datetime.fromisoformat(profile.created_at),
        updated_at=dt.datetime.fromisoformat(profile.updated_at),
        **_book_fields(profile.owner),
    )


def view_to_client(view: ClientView, *, blocked: bool = False) -> Client:
    return Client(
        client_id=view.client_id,
        name=view.name,
        phone=view.phone,
        email=view.email,
        birthday=dt.date.fromisoformat(view.birthday) if view.birthday else None,
        tags=list(view.tags or []),
        allergies=list(view.allergies or []),
        marketing_consent=bool(view.marketing_consent),
        masked=bool(view.masked),
        blocked=blocked,
        version=int(view.version),
        created_at=dt.datetime.fromisoformat(view.created_at),
        updated_at=dt.datetime.fromisoformat(view.updated_at),
        **_book_fields(view.owner),
    )


_EDITABLE = ("name", "phone", "email", "birthday", "tags", "allergies", "marketing_consent")


def parse_if_match(header: str | None) -> frozenset[int]:
    """The versions ``If-Match`` names (``"3"``, ``"3", "4"``, ``W/"3"`` or ``3``; decision D35): 428 when
    missing or ``*``, 412 when it names no version."""
    return if_match_versions(header)


def update_client(
    caller: Caller, client_id: str, data: ClientUpdate, if_match: str | None, repo: ClientsRepository = repository
) -> Client:
    """Edit the profile: admins, or providers assigned to the client; the version must be the one read."""
    access = client_access(caller, client_id, repo)
    access.require(access.can_edit, "Only admins and the client's providers edit the profile.")
    accepted = parse_if_match(if_match)
    profile = access.client
    if int(profile.version) not in accepted:
        raise PreconditionFailed(details={"current_version": int(profile.version)})
    expected = int(profile.version)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise field_error("body", "name", "A client keeps a name.")
    if "name" in changes:
        require_visible_name(changes["name"])
    book = access.book
    old_uniques, new_uniques = _contact_changes(profile, changes, book.country)
    remaining_phone = changes.get("phone", profile.phone)
    remaining_email = changes.get("email", profile.email)
    if not remaining_phone and not remaining_email:
        raise field_error("body", "phone", "A client needs a phone or an email.")
    fields = list(changes)
    for field in ("phone", "email"):
        if field in changes and changes[field] != getattr(profile, field):
            _keep_registrars_entry(profile, field, caller, fields)
            # A new value is the caller's own entry; a cleared one is no one's.
            setattr(profile, f"{field}_by", caller.pro_id if changes[field] else None)
            fields.append(f"{field}_by")
    for field, value in changes.items():
        setattr(profile, field, value.isoformat() if isinstance(value, dt.date) else value)
    profile.changed_by, profile.change_reason, profile.change_at = _stamp(caller, "PATCH /clients/{client_id}")
    fields += ["changed_by", "change_reason", "change_at"]
    if "name" in changes:
        profile.name_folded = fold_name(profile.name)
        profile.gsi1sk = keys.book_name_sk(profile.name_folded, profile.client_id)
        fields += ["name_folded", "gsi1sk"]
    profile.version = expected + 1
    profile.updated_at = clock.now_iso()
    view = None
    if access.assigned:
        view = build_view(profile, caller.pro_id, masked=book.masked, changed_at_us=clock.now_us())
    try:
        writes.update_profile(profile, fields, expected, old_uniques, new_uniques, view)
    except StaleVersion:
        raise PreconditionFailed() from None
    except DuplicateContact as dup:
        raise _duplicate(dup, named=_may_see(caller, book, dup.existing_client_id)) from None
    except WriteConflict:
        raise Conflict("Someone else is changing this client right now; try again.", code="write_conflict") from None
    return to_client(profile, book)


def _keep_registrars_entry(profile: ClientProfile, field: str, caller: Caller, fields: list[str]) -> None:
    """Someone else replaces or clears the phone or email the client's registrar entered: keep the
    registrar's value aside (``registrar_<field>``, the first one only), so a registrar who leaves as an
    apprentice or assistant keeps what they entered, never the value masked from them (SPEC "Leave")."""
    registrars = {profile.created_by, profile.brought_by} - {None}
    current, by = getattr(profile, field), getattr(profile, f"{field}_by", None)
    if by is None and int(profile.version) == 1:
        by = profile.brought_by or profile.created_by  # recorded before ``<field>_by`` existed, never edited
    if current and by in registrars and by != caller.pro_id and not getattr(profile, f"registrar_{field}", None):
        setattr(profile, f"registrar_{field}", current)
        fields.append(f"registrar_{field}")


def _may_see(caller: Caller, book: Book, client_id: str) -> bool:
    """Whether an edit's 409 may name the client holding the phone or email: admins and solo pros see every
    client of their book; anyone else only one they are assigned to (one read, on the 409 only)."""
    if book.is_admin:
        return True
    existing = writes.get_profile(client_id)
    return (
        existing is not None
        and existing.owner == book.owner
        and not getattr(existing, "deleted_at", None)
        and caller.pro_id in (existing.assignees or set())
    )


def _contact_changes(
    profile: ClientProfile, changes: dict[str, Any], country: str
) -> tuple[list[str], list[UniqueContact]]:
    """Normalise an edit's phone and email in place; the uniqueness items to delete and to claim."""
    old_uniques: list[str] = []
    new_uniques: list[UniqueContact] = []
    for field in ("phone", "email"):
        if field not in changes:
            continue
        raw = changes[field]
        value = (normalise_phone(raw, country) if field == "phone" else normalise_email(raw)) if raw else None
        changes[field] = value
        current = getattr(profile, field)
        if value == current:
            continue
        builder = keys.unique_phone_pk if field == "phone" else keys.unique_email_pk
        if current:
            old_uniques.append(builder(profile.owner, current))
        if value:
            new_uniques.append(_unique(builder(profile.owner, value), profile.client_id))
    return old_uniques, new_uniques


def remove_client(caller: Caller, client_id: str, repo: ClientsRepository = repository) -> None:
    """A solo pro deletes their client (cascading); a studio member only removes it from their own account."""
    access = client_access(caller, client_id, repo)
    profile = access.client
    if access.book.is_studio and profile.owner == access.book.owner:
        if access.assigned:
            with contextlib.suppress(ConditionFailed):
                writes.remove_assignee(profile.client_id, profile.owner, caller.pro_id)
        return
    try:
        writes.mark_deleted(profile.client_id, profile.owner, int(profile.version), clock.now_iso())
    except ConditionFailed:
        raise Conflict("The client changed meanwhile; try again.", code="client_changed") from None


def set_blocked(caller: Caller, client_id: str, blocked: bool, repo: ClientsRepository = repository) -> Block:
    """Block or unblock a client for the caller alone; the rest of the studio is unaffected."""
    access = client_access(caller, client_id, repo)
    access.require(access.can_edit, "Your role may not block clients.")
    now = clock.now_us()
    flags = ClientFlags(keys.pro_pk(caller.pro_id), keys.flags_sk(access.client_id))
    flags.client_id = access.client_id
    flags.blocked = blocked
    flags.changed_at = now
    flags.gsi2pk = keys.feed_pk(caller.pro_id)
    flags.gsi2sk = keys.feed_sk(now, access.client_id)
    writes.set_flags(flags)
    return Block(client_id=access.client_id, blocked=blocked)


def changes_since(caller: Caller, since: str | None, limit: int) -> ChangePage:
    """The caller's change feed: upserts, deletions and flag changes after the cursor.

    A cursor that ended a read re-reads a safety window behind it, so a write
    that committed after a later one is not missed; the app applies upserts by
    version, so seeing one twice changes nothing. A cursor older than the
    retention of tombstones answers 410: the app resyncs with GET /me/clients.
    """
    settings = get_settings()
    now = clock.now_us()
    after_sk = ""
    if since:
        position = decode_cursor(since, field="since")
        after_sk = position.get("after", "")
        if not _FEED_SK.match(after_sk):
            raise field_error("query", "since", "Not a cursor this API gave out.")
        at_us = int(after_sk.split("#", 1)[0])
        if at_us < now - settings.feed_retention_days * 86_400_000_000:
            raise Gone(
                "This cursor is older than the change feed keeps; read /me/clients again.", code="resync_required"
            )
        if position.get("w") == "1":
            after_sk = keys.feed_sk(max(0, at_us - settings.feed_safety_window_seconds * 1_000_000), "")
    items, more = writes.feed(caller.pro_id, after_sk, limit)
    out: list[Change] = []
    for item in items:
        changed = dt.datetime.fromtimestamp(int(item.gsi2sk.split("#", 1)[0]) / 1e6, tz=dt.UTC)
        if isinstance(item, ClientView):
            out.append(
                Change(
                    op="upsert",
                    client_id=item.client_id,
                    version=int(item.version),
                    client=view_to_client(item),
                    changed_at=changed,
                )
            )
        elif isinstance(item, ClientTombstone):
            out.append(Change(op="delete", client_id=item.client_id, version=int(item.version), changed_at=changed))
        elif isinstance(item, ClientFlags):
            out.append(Change(op="flags", client_id=item.client_id, blocked=bool(item.blocked), changed_at=changed))
    last = items[-1].gsi2sk if items else (after_sk or keys.feed_sk(0, ""))
    if not items and since:
        last = decode_cursor(since, field="since").get("after", last)
    cursor = encode_cursor({"after": str(last), "w": "0" if more else "1"})
    return ChangePage(items=out, cursor=cursor, has_more=more)


_FEED_SK = re.compile(r"^[0-9]{17}#[0-9A-Z]{0,26}$")
