"""Fan-out: every assigned pro's view follows the client's profile.

Runs in the stream consumer. Idempotent: a view is only written when it is
older than the profile's version, so duplicates and late, older records change
nothing. Personal flags are siblings of the view and never touched here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from salon import clock, metrics
from salon.data import keys
from salon.data.batch import batch_get, write_batch
from salon.data.models import ClientProfile, ClientTombstone, ClientView, Studio, TableItem
from salon.services.access import MASKED_ROLES
from salon.services.views import build_view
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


class FanoutRepository(Protocol):
    def member_roles(self, owner: str) -> dict[str, str]: ...

    def views(self, pro_ids: list[str], client_id: str) -> dict[str, ClientView | ClientTombstone]: ...

    def write(self, puts: list[TableItem], deletes: list[tuple[str, str]]) -> int: ...


class DynamoFanoutRepository:
    def member_roles(self, owner: str) -> dict[str, str]:
        if not owner.startswith("STUDIO#"):
            return {}
        try:
            studio = TableItem.get(owner, keys.STUDIO)
        except TableItem.DoesNotExist:
            return {}
        return dict(studio.member_roles.as_dict()) if isinstance(studio, Studio) and studio.member_roles else {}

    def views(self, pro_ids: list[str], client_id: str) -> dict[str, ClientView | ClientTombstone]:
        """Each pro's view of the client, or the tombstone that replaced it (same key, so its version counts)."""
        found = batch_get([(keys.pro_pk(p), keys.view_sk(client_id)) for p in pro_ids])
        return {
            item.pk.split("#", 1)[1]: item for item in found.values() if isinstance(item, ClientView | ClientTombstone)
        }

    def write(self, puts: list[TableItem], deletes: list[tuple[str, str]]) -> int:
        return write_batch(puts, deletes)


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


def fan_out(change: ProfileChange, repo: FanoutRepository = repository) -> int:
    """Bring every affected view up to ``change``; returns the number of write calls made."""
    new, old = change.new, change.old
    targets = set(new.assignees or set()) if new is not None else set()
    before = set(old.assignees or set()) if old is not None else set()
    removed = (before | change.earlier_assignees) - targets
    if not targets and not removed:
        return 0
    current = repo.views(sorted(targets | removed), change.client_id)
    roles = repo.member_roles(new.owner) if new is not None and targets else {}
    now = clock.now_us()
    puts: list[TableItem] = []
    deletes: list[tuple[str, str]] = []
    for pro_id in sorted(targets):
        assert new is not None
        masked = roles.get(pro_id) in MASKED_ROLES
        seen = current.get(pro_id)
        if seen is not None and int(seen.version) > change.version:
            continue  # a newer profile already reached this pro (late or repeated record)
        if isinstance(seen, ClientView) and int(seen.version) == change.version and bool(seen.masked) == masked:
            continue  # already up to date
        puts.append(build_view(new, pro_id, masked=masked, changed_at_us=now))
    for pro_id in sorted(removed):
        seen = current.get(pro_id)
        if seen is not None and (int(seen.version) > change.version or isinstance(seen, ClientTombstone)):
            continue  # gone already, or a newer profile gave this pro the client again
        # The tombstone takes the view's key: its version keeps a late, older record from bringing it back.
        puts.append(tombstone(pro_id, change.client_id, change.version, now))
    calls = repo.write(puts, deletes)
    metrics.count(metrics.FANOUT_WRITES, len(puts) + len(deletes))
    return calls
