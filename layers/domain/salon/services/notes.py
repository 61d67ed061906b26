"""Notes and colour formulas on a client.

Who may see them is who may see the client (``client_access``, read once per
request before routing); who may add, edit and delete is decided by
``ClientAccess`` in ``salon.services.access``. The writes carry the same rules
as conditions, so a note that changed hands or vanished in between is never
written by the wrong person.
"""

from __future__ import annotations

import datetime as dt

from salon import clock, metrics
from salon.data import keys, notes_repo
from salon.data import models as m
from salon.data.notes_repo import (
    ClientGone,
    LimitReached,
    NoteMissing,
    NoteRefused,
    NotesRepository,
    VersionTaken,
    repository,
)
from salon.data.tx import WriteConflict
from salon.errors import Conflict, NotFound, field_error
from salon.identity import Caller
from salon.ids import is_ulid, new_id
from salon.schemas.common import decode_cursor, encode_cursor
from salon.schemas.notes import Formula, FormulaPage, FormulaWrite, Note, NoteCreate, NotePage, NoteUpdate
from salon.services.access import ClientAccess, client_access

#: The most notes and formulas a client's record holds (counted by the writes themselves, notes_repo).
NOTE_LIMIT = notes_repo.NOTE_LIMIT
FORMULA_LIMIT = notes_repo.FORMULA_LIMIT
#: The most versions one formula keeps (its versions are its history; a record never grows without bound).
FORMULA_VERSION_LIMIT = 50

NOT_ALLOWED_TO_ADD = "Your role may add notes and formulas only on clients assigned to you or checked in today."


def _writable(caller: Caller, client_id: str) -> ClientAccess:
    access = client_access(caller, client_id)
    access.require(access.can_write_notes, NOT_ALLOWED_TO_ADD)
    return access


def _client_gone() -> NotFound:
    return NotFound("No such client.", code="client_not_found")


def _busy() -> Conflict:
    return Conflict("The client is being changed by someone else right now; try again.", code="write_conflict")


def _note_limit() -> Conflict:
    return Conflict(
        f"This client has {NOTE_LIMIT} notes, as many as a record keeps; delete one to add another.",
        code="note_limit_reached",
        details={"limit": NOTE_LIMIT},
    )


def _formula_limit(message: str, limit: int) -> Conflict:
    return Conflict(message, code="formula_limit_reached", details={"limit": limit})


def _note_not_found() -> NotFound:
    return NotFound("No such note on this client.", code="note_not_found")


# ------------------------------------------------------------------ notes


def add_note(caller: Caller, client_id: str, data: NoteCreate, repo: NotesRepository = repository) -> Note:
    access = _writable(caller, client_id)
    now = clock.now_iso()
    note_id = new_id()
    note = m.Note(keys.client_pk(access.client_id), keys.note_sk(note_id))
    note.client_id = access.client_id
    note.note_id = note_id
    note.author_id = caller.pro_id
    note.body = data.body
    note.created_at = now
    note.updated_at = now
    try:
        repo.add_note(note, access.client)
        metrics.count(metrics.NOTES_ADDED)
    except ClientGone:
        raise _client_gone() from None
    except LimitReached:
        raise _note_limit() from None
    except WriteConflict:
        raise _busy() from None
    return to_note(note)


def list_notes(
    caller: Caller, client_id: str, limit: int, cursor: str | None, repo: NotesRepository = repository
) -> NotePage:
    access = client_access(caller, client_id)
    after = _cursor_id(cursor) if cursor else None
    notes, more = repo.list_notes(access.client_id, limit, after)
    next_cursor = encode_cursor({"after": notes[-1].note_id}) if more and notes else None
    return NotePage(items=[to_note(n) for n in notes], next_cursor=next_cursor)


def edit_note(
    caller: Caller, client_id: str, note_id: str, data: NoteUpdate, repo: NotesRepository = repository
) -> Note:
    access = client_access(caller, client_id)
    # Only the author edits: the write's condition names the caller as author.
    try:
        note = repo.edit_note(access.client_id, note_id, caller.pro_id, data.body, clock.now_iso())
    except NoteMissing:
        raise _note_not_found() from None
    except NoteRefused as refused:
        access.require(access.can_edit_note(refused.author_id), "Only the note's author may edit it.")
        raise Conflict("The note changed while it was being edited; try again.") from None
    return to_note(note)


def delete_note(caller: Caller, client_id: str, note_id: str, repo: NotesRepository = repository) -> None:
    """Delete a note for everyone who sees the client (it is one item)."""
    access = client_access(caller, client_id)
    only_author = None if access.can_delete_any_note else caller.pro_id
    try:
        repo.delete_note(access.client_id, note_id, only_author)
    except NoteMissing:
        raise _note_not_found() from None
    except NoteRefused as refused:
        access.require(access.can_delete_note(refused.author_id), "Only the note's author or an admin may delete it.")
        raise Conflict("The note changed while it was being deleted; try again.") from None


def to_note(note: m.Note) -> Note:
    return Note(
        note_id=note.note_id,
        client_id=note.client_id,
        body=note.body,
        author_id=note.author_id,
        created_at=dt.datetime.fromisoformat(note.created_at),
        updated_at=dt.datetime.fromisoformat(note.updated_at),
    )


# --------------------------------------------------------------- formulas


def add_formula(caller: Caller, client_id: str, data: FormulaWrite, repo: NotesRepository = repository) -> Formula:
    access = _writable(caller, client_id)
    now = clock.now_iso()
    formula = _version(access.client_id, new_id(), 1, data, caller.pro_id, created_by=caller.pro_id, created_at=now)
    try:
        repo.add_formula_version(formula, access.client)
    except ClientGone:
        raise _client_gone() from None
    except WriteConflict:
        raise _busy() from None
    except LimitReached:
        raise _formula_limit(
            f"This client has {FORMULA_LIMIT} formulas, as many as a record keeps; change one instead.", FORMULA_LIMIT
        ) from None
    return to_formula(formula)


def change_formula(
    caller: Caller, client_id: str, formula_id: str, data: FormulaWrite, repo: NotesRepository = repository
) -> Formula:
    """Write the next version; the earlier ones stay as they were, with their author and time.

    Two changes made at once from the same version both aim at the same next
    version: the write is conditional on that key being new, so the second
    gets 409 ``formula_version_conflict`` and nothing of it is written.
    """
    access = _writable(caller, client_id)
    latest = repo.latest_formula(access.client_id, formula_id)
    if latest is None:
        raise NotFound("No such formula on this client.", code="formula_not_found")
    if int(latest.version) >= FORMULA_VERSION_LIMIT:
        # The next version's key is the write's condition, so concurrent changes cannot pass this together.
        raise _formula_limit(
            f"This formula has {FORMULA_VERSION_LIMIT} versions, as many as it keeps; add a new formula instead.",
            FORMULA_VERSION_LIMIT,
        )
    formula = _version(
        access.client_id,
        formula_id,
        int(latest.version) + 1,
        data,
        caller.pro_id,
        created_by=latest.created_by,
        created_at=latest.created_at,
    )
    try:
        repo.add_formula_version(formula, access.client)
    except ClientGone:
        raise _client_gone() from None
    except WriteConflict:
        raise _busy() from None
    except VersionTaken:
        raise Conflict(
            "Someone changed this formula at the same time; read it again and retry.",
            code="formula_version_conflict",
            details={"version": int(formula.version)},
        ) from None
    return to_formula(formula)


def list_formulas(
    caller: Caller,
    client_id: str,
    limit: int,
    cursor: str | None,
    history: bool = False,
    repo: NotesRepository = repository,
) -> FormulaPage:
    access = client_access(caller, client_id)
    after = _formula_cursor(cursor, history) if cursor else None
    formulas, more = repo.list_formulas(access.client_id, limit, after, history)
    next_cursor = None
    if more and formulas:
        last = formulas[-1]
        position = {"after": last.formula_id, "mode": "history" if history else "current"}
        if history:
            position["version"] = str(int(last.version))
        next_cursor = encode_cursor(position)
    return FormulaPage(items=[to_formula(f) for f in formulas], next_cursor=next_cursor)


def _version(
    client_id: str,
    formula_id: str,
    version: int,
    data: FormulaWrite,
    author_id: str,
    *,
    created_by: str,
    created_at: str,
) -> m.FormulaVersion:
    item = m.FormulaVersion(keys.client_pk(client_id), keys.formula_sk(formula_id, version))
    item.client_id = client_id
    item.formula_id = formula_id
    item.version = version
    item.name = data.name
    item.body = data.body
    item.author_id = author_id
    item.created_by = created_by
    item.created_at = created_at
    item.updated_at = clock.now_iso()
    return item


def to_formula(item: m.FormulaVersion) -> Formula:
    return Formula(
        formula_id=item.formula_id,
        client_id=item.client_id,
        version=int(item.version),
        name=item.name,
        body=item.body,
        author_id=item.author_id,
        created_by=item.created_by,
        created_at=dt.datetime.fromisoformat(item.created_at),
        updated_at=dt.datetime.fromisoformat(item.updated_at),
    )


# ---------------------------------------------------------------- cursors


def _bad_cursor() -> Exception:
    return field_error("query", "cursor", "Not a cursor this API gave out.")


def _cursor_id(cursor: str) -> str:
    after = decode_cursor(cursor).get("after", "")
    if not is_ulid(after):
        raise _bad_cursor()
    return after


def _formula_cursor(cursor: str, history: bool) -> tuple[str, int]:
    """The position after which the next page starts: a whole formula, or one version with history."""
    position = decode_cursor(cursor)
    after = position.get("after", "")
    if not is_ulid(after) or position.get("mode") != ("history" if history else "current"):
        raise _bad_cursor()
    if not history:
        return after, 0  # below every version of that formula
    version = position.get("version", "")
    if not version.isdigit() or not 1 <= int(version) < 10**keys.FORMULA_VERSION_DIGITS:
        raise _bad_cursor()
    return after, int(version)
