"""Issue 16 over HTTP: nothing reaches a pro who is leaving, left or was demoted; throttles hold under
concurrency; a refused read costs what a missing one costs. Each test failed on the code before its fix."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from tests.integration.conftest import Api

pytestmark = pytest.mark.integration


def test_ten_concurrent_bad_invite_codes_get_429_after_the_fifth(pro: Callable[..., Api]) -> None:
    """SPEC (invites): failures are throttled per pro. The count is one conditional UpdateItem claimed before
    the code is looked at (``failures < 5``), so ten bad codes sent at once are five 404s and five 429s;
    a read of the count, then a write, let all ten be tried (ten 404s)."""
    eve = pro("eve")
    barrier = threading.Barrier(10)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        status = eve.post("/studios/join", json={"code": f"not-a-real-code-{i:04d}"}).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(statuses) == {404: 5, 429: 5}
    again = eve.post("/studios/join", json={"code": "not-a-real-code-9999"})
    assert again.status_code == 429
    assert again.json()["error"]["code"] == "too_many_attempts"


def test_a_redeemed_code_is_not_counted_as_a_failure(pro: Callable[..., Api]) -> None:
    """Each attempt is claimed before it is tried and a redeemed code gives its claim back in the join's own
    transaction: four bad codes and a good one leave room for one more bad code, not none."""
    owner, bea = pro("owner"), pro("bea")
    created = owner.post("/studios", json={"name": "Throttle", "country": "US", "time_zone": "UTC"})
    assert created.status_code == 201, created.text
    studio_id = created.json()["studio_id"]
    for i in range(4):
        assert bea.post("/studios/join", json={"code": f"bad-code-{i:04d}-xx"}).status_code == 404
    code = owner.post(f"/studios/{studio_id}/invites", json={"role": "provider"}).json()["code"]
    assert bea.post("/studios/join", json={"code": code}).status_code == 202
    assert bea.post("/studios/join", json={"code": "bad-code-0005-xx"}).status_code == 404
    assert bea.post("/studios/join", json={"code": "bad-code-0006-xx"}).status_code == 429
