"""A package's ``expires_on`` is its last day in the studio's time zone (D8), wherever it is compared: selling,
redeeming, and the open-balance rule that keeps a client with sessions left from being deleted.

The clock is moved to 17:00 in Los Angeles, when UTC is already on the next day.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from devstack.template import Template
from tests.unit.test_import_in_progress import _call


def _at_la_evening(monkeypatch: pytest.MonkeyPatch) -> str:
    """Move ``salon.clock`` to 01:00 UTC tomorrow (17:00 today in Los Angeles, UTC-8 in winter); returns LA's date."""
    from zoneinfo import ZoneInfo

    from salon import clock

    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    target = dt.datetime.combine(tomorrow, dt.time(1, 0), tzinfo=dt.UTC)
    monkeypatch.setattr(clock, "_offset_s", target.timestamp() - time.time())
    local = target.astimezone(ZoneInfo("America/Los_Angeles")).date()
    assert local != target.date()  # the two calendars disagree right now
    return local.isoformat()


def _ok(aws: Template, method: str, path: str, sub: str, body: object = None) -> dict[str, object]:
    resp = _call(aws, method, path, sub, body)
    assert resp["statusCode"] < 300, resp
    return json.loads(resp["body"]) if resp.get("body") else {}


def test_a_package_on_its_last_local_day_is_open_while_utc_is_a_day_ahead(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    la_today = _at_la_evening(monkeypatch)
    studio = _ok(
        aws, "POST", "/studios", "olga", {"name": "Sunset", "country": "US", "time_zone": "America/Los_Angeles"}
    )
    studio_id = str(studio["studio_id"])
    cid = str(_ok(aws, "POST", "/clients", "olga", {"name": "Dee", "phone": "+1 415 555 2671"})["client_id"])
    sale = {
        "name": "5 blow-dries",
        "sessions": 5,
        "expires_on": la_today,
        "price": {"amount": 20000, "currency": "USD"},
    }
    package = _ok(aws, "POST", f"/clients/{cid}/packages", "olga", sale)
    assert package["expires_on"] == la_today  # its last day is today in the studio: sold

    # Deleting the client would throw away sessions the client may still use today: refused.
    refused = _call(aws, "DELETE", f"/studios/{studio_id}/clients/{cid}", "olga")
    assert refused["statusCode"] == 409, refused
    assert json.loads(refused["body"])["error"]["code"] == "open_balance"

    redeemed = _ok(aws, "POST", f"/clients/{cid}/packages/{package['package_id']}/redemptions", "olga", {})
    assert redeemed["sessions_left"] == 4

    yesterday = (dt.date.fromisoformat(la_today) - dt.timedelta(days=1)).isoformat()
    late = _call(aws, "POST", f"/clients/{cid}/packages", "olga", {**sale, "expires_on": yesterday})
    assert late["statusCode"] == 422, late


def test_without_a_known_zone_a_package_stays_open_until_its_last_day_ends_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A departure weighs a client's balance without the studio's zone at hand: a last day not over somewhere on
    Earth still counts as open, so a balance is never taken for expired."""
    from salon.data.models import Package
    from salon.services.membership import open_balance_in

    la_today = _at_la_evening(monkeypatch)
    package = Package("CLIENT#x", "PACKAGE#p")
    package.sessions_left = 2
    package.expires_on = la_today
    assert open_balance_in([package])
    assert open_balance_in([package], "America/Los_Angeles")
    assert not open_balance_in([package], "Europe/Paris")  # 02:00 tomorrow in Paris: its last day is over
