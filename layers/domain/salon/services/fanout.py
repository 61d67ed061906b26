"""Fan-out: every assigned pro's view follows the client's profile.

Runs in the stream consumer. Idempotent: a view is only written when it is
older than the profile's version, so duplicates and late, older records change
nothing. Personal flags are siblings of the view and never touched here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from salon import clock, metrics
from salon.data import keys, tx
from salon.data.batch import batch_get_projected, write_batch
from salon.data.models import ClientProfile, ClientTombstone, TableItem
from salon.services.access import MASKED_ROLES
from salon.services.views import build_view, view_item_for
from salon.settings import get_settings


@dataclass
class ProfileChange:
    """One stream record of a client profile: the images before and after."""

    client_id: str
    old: ClientProfile | None
    new: ClientProfile | None
    earlier_assignees: set[str] = field(default_factory=set)
    """Pros assigned by earlier records of the same batch, which this newest record supersedes."""

    @property
    def version(self) -> int:
        if self.new is not None:
            return int(self.new.version)
        return int(self.old.version) + 1 if self.old is not None else 0


@dataclass(frozen=True)
class SeenView:
    """What a pro's view of the client (or the tombstone in its place) says: all fan-out reads to decide."""

    version: int
    masked: bool = False
    gone: bool = False


class FanoutRepository(Protocol):
    def read(self, owner: str | None, pro_ids: list[str], client_id: str) -> tuple[dict[str, str], dict[str, SeenView]]:
        """The member roles of ``owner`` when it is a studio (else none) and what each pro's view says."""
        ...

    def write(self, puts: list[dict[str, Any]], deletes: list[tuple[str, str]]) -> int: ...

    def replace_view(self, view: dict[str, Any], version: int, masked: bool, studio: str | None) -> bool:
        """Put ``view`` over the pro's view only if that view exists, is older than ``version`` and is masked as
        ``masked``, and, for a client of ``studio``, only while the pro is an active member of it in a role that
        sees what the view shows; whether it was written."""
        ...


# Only what the decision needs comes back: a view's version and masking, a tombstone's version, the roles.
_DECIDING = ("kind", "version", "masked", "member_roles")


class DynamoFanoutRepository:
    def read(self, owner: str | None, pro_ids: list[str], client_id: str) -> tuple[dict[str, str], dict[str, SeenView]]:
        wanted = [(keys.pro_pk(p), keys.view_sk(client_id)) for p in pro_ids]
        studio = (owner, keys.STUDIO) if owner and owner.startswith("STUDIO#") else None
        if studio is not None:
            wanted.insert(0, studio)  # the roles ride in the first BatchGetItem: no call of their own
        roles: dict[str, str] = {}
        seen: dict[str, SeenView] = {}
        # Consistent, always: an edit made after a leave or a demotion must find the roles that leave or demotion
        # wrote, and the writes below are unconditional, so a lagging read of the views (an older version than the
        # one there) would put an older image over a newer view. Same single call, twice the read units.
        for item in batch_get_projected(wanted, _DECIDING, consistent=True):
            kind = item.get("kind", {}).get("S")
            if kind == "studio":
                roles = {pro: role["S"] for pro, role in item.get("member_roles", {}).get("M", {}).items()}
            elif kind in ("view", "gone"):
                seen[item["pk"]["S"].split("#", 1)[1]] = SeenView(
                    version=int(item["version"]["N"]),
                    masked=bool(item.get("masked", {}).get("BOOL", False)),
                    gone=kind == "gone",
                )
        return roles, seen

    def write(self, puts: list[dict[str, Any]], deletes: list[tuple[str, str]]) -> int:
        return write_batch(raw_puts=puts, deletes=deletes)

    def replace_view(self, view: dict[str, Any], version: int, masked: bool, studio: str | None) -> bool:
        condition = "kind = :view AND masked = :masked AND version < :version"
        values = {":view": tx.s("view"), ":masked": {"BOOL": masked}, ":version": tx.n(version)}
        if studio is None:
            try:
                tx.put_item(view, condition, values)
            except tx.ConditionFailed:
                return False
            return True
        # One call still, but the member's item is checked in it: the leave turns ``status`` to leaving and a
        # demotion changes ``role`` in the same transaction as the pro's profile, so once either is committed no
        # put of this kind can land, whatever the order of the stream and the jobs (decision D31).
        write = tx.Tx()
        pro_id = view["pk"]["S"].split("#", 1)[1]
        write.check(
            studio,
            keys.member_sk(pro_id),
            "#status = :active AND #role IN (" + ", ".join(f":r{i}" for i in range(len(_SEE_CONTACTS))) + ")",
            values={":active": tx.s("active"), **{f":r{i}": tx.s(r) for i, r in enumerate(_SEE_CONTACTS)}},
            names={"#status": "status", "#role": "role"},
        )
        write.put_raw(view, condition, values)
        try:
            write.run()
        except tx.TransactionCancelled:
            return False
        return True


# The roles whose views show contact details (every other role's are masked).
_SEE_CONTACTS = ("admin", "provider")


repository = DynamoFanoutRepository()


def tombstone(pro_id: str, client_id: str, version: int, changed_at_us: int) -> TableItem:
    item = ClientTombstone(keys.pro_pk(pro_id), keys.view_sk(client_id))
    item.client_id = client_id
    item.version = version
    item.changed_at = changed_at_us
    item.gsi2pk = keys.feed_pk(pro_id)
    item.gsi2sk = keys.feed_sk(changed_at_us, client_id)
    item.expires_at = clock.now() + dt.timedelta(days=get_settings().feed_retention_days)
    return item


def _sole_pro_of_an_edit(change: ProfileChange, targets: set[str], removed: set[str]) -> str | None:
    """The one pro of a client whose edit changed neither its owner nor its assignees: the pro keeps the view
    they have, so it can be replaced in place. ``None`` for anything else."""
    old, new = change.old, change.new
    if old is None or new is None or removed or len(targets) != 1 or old.owner != new.owner:
        return None
    if set(old.assignees or set()) != targets:
        return None
    return next(iter(targets))


def fan_out(change: ProfileChange, repo: FanoutRepository = repository) -> int:
    """Bring every affected view up to ``change``; returns the number of write calls made."""
    new, old = change.new, change.old
    targets = set(new.assignees or set()) if new is not None else set()
    before = set(old.assignees or set()) if old is not None else set()
    removed = (before | change.earlier_assignees) - targets
    if not targets and not removed:
        return 0
    now = clock.now_us()
    pro_id = _sole_pro_of_an_edit(change, targets, removed)
    if pro_id is not None:
        assert new is not None
        # The view keeps the masking it has (role changes reach views through the re-fan job, which flips
        # ``masked``): one conditional put, no read. Anything else (no view yet, an apprentice's masked view,
        # this version already there) takes the read below.
        view = build_view(new, pro_id, masked=False, changed_at_us=now).serialize()
        studio = new.owner if new.owner.startswith("STUDIO#") else None
        if repo.replace_view(view, change.version, masked=False, studio=studio):
            metrics.count(metrics.FANOUT_WRITES, 1)
            return 1
    owner = new.owner if new is not None and targets else None
    roles, current = repo.read(owner, sorted(targets | removed), change.client_id)
    # Every pro's view is the same item but for its keys: built and serialized once per masking, then re-keyed.
    templates: dict[bool, dict[str, Any]] = {}
    puts: list[dict[str, Any]] = []
    studio_client = owner is not None and owner.startswith("STUDIO#")
    for pro_id in sorted(targets):
        assert new is not None
        if studio_client and pro_id not in roles:
            # Leaving (or gone): the leave removed the pro's role before this read (consistent), so nothing of
            # this edit reaches them. Their view is left as it is for the departure job, which splits the clients
            # it finds in the pro's views (a tombstone here would hide this client from it).
            continue
        masked = roles.get(pro_id) in MASKED_ROLES
        seen = current.get(pro_id)
        if seen is not None and seen.version > change.version:
            continue  # a newer profile already reached this pro (late or repeated record)
        if seen is not None and not seen.gone and seen.version == change.version and seen.masked == masked:
            continue  # already up to date
        if masked not in templates:
            templates[masked] = build_view(new, pro_id, masked=masked, changed_at_us=now).serialize()
        puts.append(view_item_for(templates[masked], pro_id))
    for pro_id in sorted(removed):
        seen = current.get(pro_id)
        if seen is not None and (seen.version > change.version or seen.gone):
            continue  # gone already, or a newer profile gave this pro the client again
        # The tombstone takes the view's key: its version keeps a late, older record from bringing it back.
        puts.append(tombstone(pro_id, change.client_id, change.version, now).serialize())
    calls = repo.write(puts, [])
    metrics.count(metrics.FANOUT_WRITES, len(puts))
    return calls
