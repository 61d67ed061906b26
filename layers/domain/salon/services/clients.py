"""Client rules: identity (dedup), reading with access checks, the caller's list."""

from __future__ import annotations

import datetime as dt

from salon import clock
from salon.data import keys
from salon.data.clients_repo import ClientsRepository, DuplicateContact, repository
from salon.data.models import ClientProfile, ClientView, UniqueContact
from salon.errors import Conflict, field_error
from salon.identity import Caller
from salon.ids import is_ulid, new_id
from salon.schemas.clients import Client, ClientCreate, ClientPage
from salon.schemas.common import decode_cursor, encode_cursor
from salon.schemas.me import Me
from salon.services.access import Book, book_of, client_access
from salon.services.contact import fold_name, normalise_email, normalise_phone
from salon.services.views import build_view
from salon.settings import get_settings


def who_am_i(caller: Caller, repo: ClientsRepository = repository) -> Me:
    pro = repo.get_pro(caller.pro_id)
    book = book_of(caller, pro, get_settings().default_country)
    return Me(
        pro_id=caller.pro_id,
        studio_id=book.studio_id,
        role=book.role,
        plan=(pro.plan if pro else "basic"),
    )


def create_client(caller: Caller, data: ClientCreate, repo: ClientsRepository = repository) -> Client:
    """Register a client in the caller's book; a duplicate phone or email is a 409 naming the existing id."""
    book = book_of(caller, repo.get_pro(caller.pro_id), get_settings().default_country)
    phone = normalise_phone(data.phone, book.country) if data.phone else None
    email = normalise_email(data.email) if data.email else None

    now = clock.now_iso()
    client_id = new_id()
    profile = ClientProfile(keys.client_pk(client_id), keys.PROFILE)
    profile.client_id = client_id
    profile.owner = book.owner
    profile.name = data.name
    profile.name_folded = fold_name(data.name)
    profile.phone = phone
    profile.email = email
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
    except DuplicateContact as dup:
        raise Conflict(
            f"A client with this {dup.field} is already in the book.",
            code="duplicate_client",
            details={"existing_client_id": dup.existing_client_id, "field": dup.field},
        ) from None
    return to_client(profile, book)


def get_client(caller: Caller, client_id: str, repo: ClientsRepository = repository) -> Client:
    access = client_access(caller, client_id, repo)
    return to_client(access.client, access.book)


def list_my_clients(caller: Caller, limit: int, cursor: str | None, repo: ClientsRepository = repository) -> ClientPage:
    after = _cursor_client_id(cursor) if cursor else None
    views, more = repo.list_views(caller.pro_id, limit, after)
    next_cursor = encode_cursor({"after": views[-1].client_id}) if more and views else None
    return ClientPage(items=[view_to_client(v) for v in views], next_cursor=next_cursor)


def _cursor_client_id(cursor: str) -> str:
    after = decode_cursor(cursor).get("after", "")
    if not is_ulid(after):
        raise field_error("query", "cursor", "Not a cursor this API gave out.")
    return after


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


def view_to_client(view: ClientView) -> Client:
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
        version=int(view.version),
        created_at=dt.datetime.fromisoformat(view.created_at),
        updated_at=dt.datetime.fromisoformat(view.updated_at),
        **_book_fields(view.owner),
    )
