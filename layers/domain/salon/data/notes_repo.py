"""Notes and formula versions: plain items of the client's collection (``CLIENT#<cid>``).

Every write of a note or a formula version adds its author to the client
profile's ``history_pros`` in the same transaction (``ADD``, conditional on the
profile existing), so a departure and its preview can read profiles only. The
profile's ``version`` is not bumped: nothing the app sees changed, and the
stream consumer skips a record whose version its views already hold.

A client's record holds at most ``NOTE_LIMIT`` notes and ``FORMULA_LIMIT`` formulas: the same
transaction adds one to the client's ``COUNTS`` item on condition the count is below the limit (never
a read, then a write), and deleting a note takes one off in its own transaction.

Each method makes exactly one DynamoDB call on its success path; the failure
paths of edit and delete make one more read to tell "no such note" from "not
yours", and a transaction cancelled by a concurrent write of the profile is
tried again (at most three attempts).
"""

from __future__ import annotations

from typing import Any, Protocol

from pynamodb.exceptions import UpdateError

from salon.data import keys, tx
from salon.data.connection import table_connection
from salon.data.models import ClientProfile, FormulaVersion, Note, TableItem, item_from_raw


class ClientGone(Exception):
    """The client's profile disappeared between the access read and the write: nothing was written."""


class NoteMissing(Exception):
    """No note with this id on this client."""


class NoteRefused(Exception):
    """The note exists but the write's author condition failed."""

    def __init__(self, author_id: str) -> None:
        super().__init__(author_id)
        self.author_id = author_id


class VersionTaken(Exception):
    """Another writer created this formula version first."""


class LimitReached(Exception):
    """The client's record holds as many notes (or formulas) as it may: nothing was written."""


NOTE_LIMIT = 500
FORMULA_LIMIT = 100


class NotesRepository(Protocol):
    def add_note(self, note: Note, profile: ClientProfile) -> None: ...

    def list_notes(self, client_id: str, limit: int, after_note_id: str | None) -> tuple[list[Note], bool]: ...

    def edit_note(self, client_id: str, note_id: str, author_id: str, body: str, updated_at: str) -> Note: ...

    def delete_note(self, client_id: str, note_id: str, only_author: str | None) -> None: ...

    def add_formula_version(self, formula: FormulaVersion, profile: ClientProfile) -> None: ...

    def latest_formula(self, client_id: str, formula_id: str) -> FormulaVersion | None: ...

    def list_formulas(
        self, client_id: str, limit: int, after: tuple[str, int] | None, history: bool
    ) -> tuple[list[FormulaVersion], bool]: ...


_LIMITS = {"note_count": NOTE_LIMIT, "formula_count": FORMULA_LIMIT}


def _conditional_failure(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


class DynamoNotesRepository:
    """The real repository, over the single table."""

    def _write_with_history(self, item: Note | FormulaVersion, profile: ClientProfile, count: str | None) -> None:
        """Put ``item`` only if its key is new, add its author to the profile's ``history_pros`` and, with
        ``count`` (``note_count``, ``formula_count``), one to that count of the client's ``COUNTS`` item on
        condition it is below the limit, in one transaction.

        On AWS a transaction that meets another write of the profile in flight is
        cancelled with ``TransactionConflict`` and nothing is written; it is tried
        again (``Tx.run``) before the caller is told to retry.
        """
        write = tx.Tx()
        write.put(item, condition="attribute_not_exists(pk)")
        gone = write.update(
            profile.pk,
            profile.sk,
            "ADD history_pros :author",
            values={":author": {"SS": [item.author_id]}},
            condition="attribute_exists(pk)",
        )
        limit = None
        if count is not None:
            limit = write.update(
                item.pk,
                keys.COUNTS,
                f"SET kind = :kind ADD {count} :one",
                values={":kind": tx.s("counts"), ":one": tx.n(1), ":max": tx.n(_LIMITS[count])},
                condition=f"attribute_not_exists({count}) OR {count} < :max",
            )
        try:
            write.run()
        except tx.TransactionCancelled as exc:
            if exc.failed(gone):
                raise ClientGone() from None
            if exc.failed(0):
                raise VersionTaken() from None
            if limit is not None and exc.failed(limit):
                raise LimitReached() from None
            raise

    def add_note(self, note: Note, profile: ClientProfile) -> None:
        self._write_with_history(note, profile, "note_count")

    def list_notes(self, client_id: str, limit: int, after_note_id: str | None) -> tuple[list[Note], bool]:
        """One Query, newest first: up to ``limit`` notes, and whether more follow."""
        start = keys.note_sk(after_note_id) if after_note_id else None
        items, cut = _query_once(keys.client_pk(client_id), keys.NOTE_PREFIX, limit + 1, start)
        notes = [item for item in items if isinstance(item, Note)]
        return notes[:limit], len(notes) > limit or cut

    def edit_note(self, client_id: str, note_id: str, author_id: str, body: str, updated_at: str) -> Note:
        """Set the body if the note exists and ``author_id`` wrote it; the note as it now is."""
        note = Note(keys.client_pk(client_id), keys.note_sk(note_id))
        try:
            note.update(
                actions=[Note.body.set(body), Note.updated_at.set(updated_at)],
                condition=Note.pk.exists() & (Note.author_id == author_id),
            )
        except UpdateError as exc:
            if _conditional_failure(exc):
                self._refusal(client_id, note_id)
            raise
        return note

    def delete_note(self, client_id: str, note_id: str, only_author: str | None) -> None:
        """Delete the note if it exists (and, when ``only_author`` is given, if they wrote it)."""
        write = tx.Tx()
        write.delete(
            keys.client_pk(client_id),
            keys.note_sk(note_id),
            condition="attribute_exists(pk)" + ("" if only_author is None else " AND author_id = :author"),
            values=None if only_author is None else {":author": tx.s(only_author)},
        )
        write.update(
            keys.client_pk(client_id),
            keys.COUNTS,
            "SET kind = :kind ADD note_count :minus",
            values={":kind": tx.s("counts"), ":minus": tx.n(-1)},
        )
        try:
            write.run()
        except tx.TransactionCancelled as exc:
            if exc.failed(0):
                self._refusal(client_id, note_id)
            raise

    def _refusal(self, client_id: str, note_id: str) -> None:
        """After a failed condition: raise why (the note is missing, or someone else wrote it)."""
        try:
            found = TableItem.get(keys.client_pk(client_id), keys.note_sk(note_id), consistent_read=True)
        except TableItem.DoesNotExist:
            raise NoteMissing() from None
        if not isinstance(found, Note):
            raise NoteMissing()
        raise NoteRefused(found.author_id)

    def add_formula_version(self, formula: FormulaVersion, profile: ClientProfile) -> None:
        """A new formula (version 1) counts toward ``FORMULA_LIMIT``; a change is bounded by its version
        number (``FORMULA_VERSION_LIMIT``, checked by the service: the version's key is the condition)."""
        self._write_with_history(formula, profile, "formula_count" if int(formula.version) == 1 else None)

    def latest_formula(self, client_id: str, formula_id: str) -> FormulaVersion | None:
        """The newest version of one formula (a strongly consistent Query of one item)."""
        items, _ = _query_once(keys.client_pk(client_id), keys.formula_prefix(formula_id), 1, None, consistent=True)
        found = items[0] if items else None
        return found if isinstance(found, FormulaVersion) else None

    def list_formulas(
        self, client_id: str, limit: int, after: tuple[str, int] | None, history: bool
    ) -> tuple[list[FormulaVersion], bool]:
        """One Query, newest formula first and each formula's newest version first.

        Without ``history`` only the first (newest) version of each formula is kept.
        A page may come back short with more to follow when the Query stopped
        at its item limit or DynamoDB's 1 MB page; the position it returns is
        always a whole formula's boundary in that mode, so the next page never
        starts with an older version of a formula already listed.
        """
        start = keys.formula_sk(after[0], after[1]) if after else None
        want = limit + 1 if history else min(1000, 5 * (limit + 1))
        items, cut = _query_once(keys.client_pk(client_id), keys.FORMULA_PREFIX, want, start)
        out: list[FormulaVersion] = []
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, FormulaVersion) or (not history and item.formula_id in seen):
                continue
            if len(out) == limit:
                return out, True
            out.append(item)
            seen.add(item.formula_id)
        return out, cut


def _query_once(
    pk: str, prefix: str, limit: int, exclusive_start_sk: str | None, *, consistent: bool = True
) -> tuple[list[TableItem], bool]:
    """One Query call, descending by sort key; the items and whether DynamoDB stopped before the end. Strongly
    consistent: a note or formula version written a moment ago is listed (read-your-writes, D1)."""
    params: dict[str, Any] = {
        "TableName": TableItem.Meta.table_name,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
        "ScanIndexForward": False,
        "Limit": limit,
        "ConsistentRead": consistent,
    }
    if exclusive_start_sk is not None:
        params["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": exclusive_start_sk}}
    resp = table_connection().client.query(**params)
    return [item_from_raw(raw) for raw in resp.get("Items", [])], "LastEvaluatedKey" in resp


repository = DynamoNotesRepository()
