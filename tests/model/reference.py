"""A pure-Python reference model of SPEC.md's rules for books, studios and notes.

No AWS, no HTTP: plain dictionaries that say what each pro must see after each action. The model-based
test (tests/unit/test_model_based.py) applies the same random actions here and to the real services and
compares after every step.

What it covers: personal books and studios; dedup by normalised phone, then email, within one book;
creating a studio (the creator's clients move in); invites and joins with moves and merges (the studio's
values win, missing fields are filled, a conflicting email is not copied, the old id resolves to the
survivor, notes move); profile edits (admins, assigned providers); assign, unassign; a member's delete
(unassigns them) and a solo pro's or an admin's delete (gone for everyone); block; notes (add, edit own,
delete own or any as an admin); role changes (masking); leaving (who keeps what, new personal ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MASKED_ROLES = ("apprentice", "assistant")


def _folded(name: str) -> str:
    """A name compared as a person reads it: case, accents and spacing ignored."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", name)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


@dataclass
class MClient:
    cid: str
    book: str  # "PRO#<pro>" or "STUDIO#<sid>"
    name: str
    phone: str | None
    email: str | None
    created_by: str
    brought_by: str
    assignees: set[str] = field(default_factory=set)
    deleted: bool = False
    alias_of: str | None = None  # merged away into this client
    history: set[str] = field(default_factory=set)  # pros who added notes here (kept after a delete)
    merged_by: dict[str, dict[str, str | None]] = field(default_factory=dict)  # pro -> values they brought

    @property
    def live(self) -> bool:
        return not self.deleted and self.alias_of is None


@dataclass
class MNote:
    note_id: str
    author: str
    body: str


@dataclass
class MStudio:
    sid: str
    owner: str
    members: dict[str, str] = field(default_factory=dict)  # pro -> role


@dataclass
class ViewRow:
    name: str
    phone: str | None
    email: str | None
    masked: bool
    blocked: bool


class Model:
    def __init__(self, pros: list[str]) -> None:
        self.pros = list(pros)
        self.studio_of: dict[str, str | None] = dict.fromkeys(pros)
        self.studios: dict[str, MStudio] = {}
        self.clients: dict[str, MClient] = {}
        self.notes: dict[str, dict[str, MNote]] = {}  # client id -> note id -> note
        self.blocked: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ who and where
    def role(self, pro: str) -> str | None:
        sid = self.studio_of[pro]
        return self.studios[sid].members[pro] if sid else None

    def book_of(self, pro: str) -> str:
        sid = self.studio_of[pro]
        return f"STUDIO#{sid}" if sid else f"PRO#{pro}"

    def resolve(self, cid: str) -> MClient | None:
        seen = 0
        client = self.clients.get(cid)
        while client is not None and client.alias_of is not None and seen < 10:
            client = self.clients.get(client.alias_of)
            seen += 1
        return client

    def visible(self, pro: str, cid: str) -> MClient | None:
        """The client a pro reaches through ``cid`` (an alias leads to its survivor), or None (404)."""
        client = self.resolve(cid)
        if client is None or client.deleted or client.book != self.book_of(pro):
            return None
        if self.studio_of[pro] is None or self.role(pro) == "admin" or pro in client.assignees:
            return client
        return None

    def can_edit(self, pro: str, client: MClient) -> bool:
        role = self.role(pro)
        return role is None or role == "admin" or (role == "provider" and pro in client.assignees)

    def masked(self, pro: str) -> bool:
        return self.role(pro) in MASKED_ROLES

    def views(self, pro: str) -> dict[str, ViewRow]:
        """What GET /me/clients must list: the pro's own live clients, or the studio clients assigned to them."""
        book = self.book_of(pro)
        in_studio = self.studio_of[pro] is not None
        masked = self.masked(pro)
        out = {}
        for c in self.clients.values():
            if not c.live or c.book != book or (in_studio and pro not in c.assignees):
                continue
            out[c.cid] = ViewRow(
                c.name, None if masked else c.phone, None if masked else c.email, masked, (pro, c.cid) in self.blocked
            )
        return out

    def studio_list(self, sid: str) -> dict[str, tuple[str, str | None, str | None]]:
        """What an admin's GET /studios/{sid}/clients must list."""
        return {
            c.cid: (c.name, c.phone, c.email) for c in self.clients.values() if c.live and c.book == f"STUDIO#{sid}"
        }

    def live_notes(self, cid: str) -> dict[str, MNote]:
        return self.notes.setdefault(cid, {})

    def duplicate_of(self, book: str, phone: str | None, email: str | None, exclude: str | None = None) -> list[str]:
        """Live clients of the book holding the phone (first) or the email."""
        found = []
        for field_name, value in (("phone", phone), ("email", email)):
            if value is None:
                continue
            for c in self.clients.values():
                if c.live and c.book == book and c.cid != exclude and getattr(c, field_name) == value:
                    found.append(c.cid)
        return found

    def check_unique(self) -> None:
        """The model's own invariant: no two live clients of a book share a phone or an email."""
        seen: set[tuple[str, str, str]] = set()
        for c in self.clients.values():
            if not c.live:
                continue
            for field_name in ("phone", "email"):
                value = getattr(c, field_name)
                if value is None:
                    continue
                key = (c.book, field_name, value)
                assert key not in seen, f"model holds two clients with {key}"
                seen.add(key)

    # ------------------------------------------------------------------ actions (after the API said yes)
    def create_client(self, pro: str, cid: str, name: str, phone: str | None, email: str | None) -> None:
        self.clients[cid] = MClient(cid, self.book_of(pro), name, phone, email, pro, pro, {pro})

    def duplicate_seen(self, pro: str, existing: str, name: str) -> bool:
        """Whether the 409 of a registration matching ``existing`` names it (SPEC "Client identity"): to a
        solo pro, an admin, a member assigned to it; and to a provider registering it under the same name,
        who is assigned to it now (the daily limit of 10 is beyond a sequence's few steps). Apprentices,
        assistants and a provider who gave another name get no id, and nothing changes."""
        client = self.clients[existing]
        role = self.role(pro)
        if self.studio_of[pro] is None or role == "admin" or pro in client.assignees:
            return True
        if role == "provider" and client.live and _folded(name) == _folded(client.name):
            client.assignees.add(pro)
            return True
        return False

    def edit(self, client: MClient, name: str | None, phone: str | None, email: str | None) -> None:
        if name is not None:
            client.name = name
        if phone is not None:
            client.phone = phone
        if email is not None:
            client.email = email

    def remove(self, pro: str, client: MClient) -> None:
        """DELETE /clients/{id}: a studio member is unassigned; a solo pro deletes."""
        if self.studio_of[pro] is not None:
            client.assignees.discard(pro)
        else:
            self.delete(client)

    def delete(self, client: MClient) -> None:
        client.deleted = True
        client.assignees = set()
        self.notes.pop(client.cid, None)

    def add_note(self, pro: str, client: MClient, note_id: str, body: str) -> None:
        self.live_notes(client.cid)[note_id] = MNote(note_id, pro, body)
        client.history.add(pro)

    def create_studio(self, pro: str, sid: str) -> None:
        self.studios[sid] = MStudio(sid, pro, {pro: "admin"})
        self._import(pro, sid)
        self.studio_of[pro] = sid

    def join(self, pro: str, sid: str, role: str) -> None:
        self.studios[sid].members[pro] = role
        self._import(pro, sid)
        self.studio_of[pro] = sid

    def _import(self, pro: str, sid: str) -> None:
        """The pro's personal clients move (same id) or merge into the studio's (phone first, then email)."""
        book = f"STUDIO#{sid}"
        personal = [c for c in self.clients.values() if c.live and c.book == f"PRO#{pro}"]
        # The plan is made against the studio's clients before any of these moves.
        plan: list[tuple[MClient, str | None, str | None]] = []
        for c in personal:
            by_phone = self.duplicate_of(book, c.phone, None)
            by_email = self.duplicate_of(book, None, c.email)
            phone_id = by_phone[0] if by_phone else None
            email_id = by_email[0] if by_email else None
            if phone_id is None and email_id is None:
                plan.append((c, None, None))
            elif phone_id is not None:
                plan.append((c, phone_id, email_id if email_id not in (None, phone_id) else None))
            else:
                plan.append((c, email_id, None))
        for c, target_id, conflict in plan:
            if target_id is None:
                c.book = book
                c.brought_by = pro
                c.assignees = {pro}
                continue
            target = self.clients[target_id]
            target.merged_by.setdefault(pro, {"name": c.name, "phone": c.phone, "email": c.email})
            if target.phone is None and c.phone is not None:
                target.phone = c.phone
            if target.email is None and c.email is not None and conflict is None:
                target.email = c.email
            target.assignees.add(pro)
            for note_id, note in self.notes.pop(c.cid, {}).items():
                self.live_notes(target.cid)[note_id] = note
            c.alias_of = target.cid
            c.assignees = set()

    def change_role(self, sid: str, pro: str, role: str) -> None:
        self.studios[sid].members[pro] = role

    def others_history(self, pro: str, client: MClient) -> bool:
        authors = {n.author for n in self.live_notes(client.cid).values()}
        return bool((client.history | authors) - {pro})

    def leave(self, pro: str) -> list[tuple[MClient, dict[str, str | None], dict[str, MNote]]]:
        """The pro leaves their studio. Returns the personal clients to create: (studio client, values, notes).
        Their ids are the API's to choose; the test learns them from the pro's list afterwards."""
        sid = self.studio_of[pro]
        assert sid is not None
        studio = self.studios[sid]
        del studio.members[pro]
        self.studio_of[pro] = None
        book = f"STUDIO#{sid}"
        to_create = []
        for c in list(self.clients.values()):
            if not c.live or c.book != book or pro not in c.assignees:
                continue
            mine = pro in (c.created_by, c.brought_by)
            merged = pro in c.merged_by
            studio_keeps = not mine or self.others_history(pro, c)
            pro_keeps = mine or merged or not studio_keeps
            if pro_keeps:
                values = (
                    c.merged_by[pro] if merged and not mine else {"name": c.name, "phone": c.phone, "email": c.email}
                )
                notes = {
                    i: MNote(n.note_id, n.author, n.body) for i, n in self.live_notes(c.cid).items() if n.author == pro
                }
                to_create.append((c, dict(values), notes))
            if studio_keeps:
                c.assignees.discard(pro)
            else:
                self.delete(c)
        return to_create

    def add_personal(self, pro: str, cid: str, values: dict[str, str | None], notes: dict[str, MNote]) -> None:
        client = MClient(
            cid, f"PRO#{pro}", str(values["name"]), values.get("phone"), values.get("email"), pro, pro, {pro}
        )
        if notes:
            client.history.add(pro)
        self.clients[cid] = client
        self.notes[cid] = notes
