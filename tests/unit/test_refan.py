"""The re-fan after a role change converges with the stream consumer writing the same views (moto in-process)."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.template import Template
from salon.data import keys
from salon.data.models import ClientProfile, ClientTombstone, ClientView, ProProfile, TableItem

STUDIO = "01JD00000000000000000RSTUD"
PRO = "apprentice-ana"
CLIENT = "01JD00000000000000000RCLNT"


def _seed() -> ClientProfile:
    pro = ProProfile(keys.pro_pk(PRO), keys.PROFILE)
    pro.studio_id = STUDIO
    pro.role = "apprentice"  # was provider: the views are still unmasked
    pro.membership_status = "active"
    pro.save()
    profile = ClientProfile(keys.client_pk(CLIENT), keys.PROFILE)
    profile.client_id = CLIENT
    profile.owner = keys.studio_pk(STUDIO)
    profile.name = profile.name_folded = "Ana"
    profile.phone = "+14155552671"
    profile.version = 2
    profile.created_at = profile.updated_at = "2026-01-01T00:00:00.000Z"
    profile.created_by = "olga"
    profile.assignees = {PRO}
    profile.save()
    from salon.services.views import build_view

    build_view(profile, PRO, masked=False, changed_at_us=1).save()
    return profile


def test_a_profile_edited_while_the_refan_writes_ends_in_the_newer_view(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refan reads v2; a pro edits the client (v3) and the consumer writes the v3 view; refan then writes its
    v2 view over it. No later record comes: only refan itself can bring the v3 view back."""
    from salon.data.batch import write_batch
    from salon.services import maintenance
    from salon.services.views import build_view

    profile = _seed()
    calls: list[int] = []

    def racing_write_batch(**kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:  # between refan's read and its write: the edit and the consumer's v3 view
            profile.version = 3
            profile.phone = "+14155550000"
            profile.save()
            write_batch(puts=[build_view(profile, PRO, masked=False, changed_at_us=2)])
        return write_batch(**kwargs)

    monkeypatch.setattr(maintenance, "write_batch", racing_write_batch)
    maintenance.refan_member({"pro_id": PRO})

    view = TableItem.get(keys.pro_pk(PRO), keys.view_sk(CLIENT), consistent_read=True)
    assert isinstance(view, ClientView)
    assert (int(view.version), view.masked, view.phone, view.email) == (3, True, None, None)


def test_a_pro_unassigned_while_the_refan_writes_is_left_with_the_tombstone(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.data.batch import write_batch
    from salon.services import maintenance
    from salon.services.fanout import tombstone

    profile = _seed()
    calls: list[int] = []

    def racing_write_batch(**kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:  # the client goes to someone else and the consumer removes this pro's view
            profile.version = 3
            profile.assignees = {"someone-else"}
            profile.save()
            write_batch(puts=[tombstone(PRO, CLIENT, 3, 2)])
        return write_batch(**kwargs)

    monkeypatch.setattr(maintenance, "write_batch", racing_write_batch)
    maintenance.refan_member({"pro_id": PRO})

    item = TableItem.get(keys.pro_pk(PRO), keys.view_sk(CLIENT), consistent_read=True)
    assert isinstance(item, ClientTombstone)
    assert int(item.version) == 3


def test_a_profile_that_keeps_moving_fails_the_chunk_for_its_retry(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.data.batch import write_batch
    from salon.services import maintenance

    profile = _seed()

    def always_racing(**kwargs: Any) -> int:
        profile.version += 1
        profile.save()
        return write_batch(**kwargs)

    monkeypatch.setattr(maintenance, "write_batch", always_racing)
    with pytest.raises(maintenance.RefanRaced):
        maintenance.refan_member({"pro_id": PRO})


def test_a_demotion_while_a_refan_writes_ends_masked_at_once(aws: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-fan (of an earlier promotion) reads the pro as a provider; the pro is demoted to apprentice and the
    client edited before its write lands: the page is redone with the new role in the same run, so no
    unmasked view of data written after the demotion stays (decision D31). Before: the page stayed unmasked
    until the message's retry (or, before D31, until the demotion's own re-fan, which could run first)."""
    from salon.data.batch import write_batch
    from salon.services import maintenance

    profile = _seed()
    pro = TableItem.get(keys.pro_pk(PRO), keys.PROFILE, consistent_read=True)  # the test's own read of what _seed wrote
    pro.role = "provider"  # the promotion this re-fan is for
    pro.save()
    calls: list[int] = []

    def demoting_write_batch(**kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:  # the demotion and an edit commit between the re-fan's read and its write
            pro.role = "apprentice"
            pro.save()
            profile.version = 3
            profile.phone = "+14155550001"
            profile.save()
        return write_batch(**kwargs)

    monkeypatch.setattr(maintenance, "write_batch", demoting_write_batch)
    maintenance.refan_member({"pro_id": PRO})
    view = TableItem.get(keys.pro_pk(PRO), keys.view_sk(CLIENT), consistent_read=True)
    assert isinstance(view, ClientView)
    assert view.masked is True
    assert view.phone is None
    assert int(view.version) == 3
