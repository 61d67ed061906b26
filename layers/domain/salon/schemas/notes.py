"""Notes and colour formulas: what the app sends and gets back."""

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from salon.schemas.common import ApiModel, ShortText

NOTE_MAX_CHARS = 10_000
FORMULA_MAX_CHARS = 10_000

NoteText = Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX_CHARS)]
FormulaText = Annotated[str, StringConstraints(min_length=1, max_length=FORMULA_MAX_CHARS)]


class NoteCreate(ApiModel):
    body: NoteText = Field(description="1 to 10,000 characters (surrounding whitespace is trimmed).")


class NoteUpdate(ApiModel):
    body: NoteText = Field(description="The new text, 1 to 10,000 characters; only the author may edit.")


class Note(ApiModel):
    note_id: str
    client_id: str
    body: str
    author_id: str = Field(description="The pro who wrote the note.")
    created_at: dt.datetime
    updated_at: dt.datetime


class NotePage(ApiModel):
    items: list[Note] = Field(description="Newest first.")
    next_cursor: str | None = None


class FormulaWrite(ApiModel):
    """A new formula, or the next version of one (name and body both given each time)."""

    name: ShortText
    body: FormulaText


class Formula(ApiModel):
    formula_id: str
    client_id: str
    version: int = Field(description="1 for a new formula; each change adds the next version.")
    name: str
    body: str
    author_id: str = Field(description="The pro who wrote this version.")
    created_by: str = Field(description="The pro who wrote version 1.")
    created_at: dt.datetime = Field(description="When version 1 was written.")
    updated_at: dt.datetime = Field(description="When this version was written.")


class FormulaPage(ApiModel):
    items: list[Formula] = Field(
        description="Newest formula first; with history, every version of each formula, newest version first."
    )
    next_cursor: str | None = None
