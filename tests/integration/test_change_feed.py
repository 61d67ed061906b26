"""The app's sync: replaying the change feed from any cursor it was given ends with the same list as a
fresh GET /me/clients, with writers committing concurrently and out of order."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.test_studios import _client, _join, _studio, _wait_import

MakePro = Callable[..., Api]


class App:
    """What the mobile app keeps: clients by id, applied from the feed in order."""

    def __init__(self) -> None:
        self.clients: dict[str, dict[str, Any]] = {}
        self.blocked: dict[str, bool] = {}

    def apply(self, change: dict[str, Any]) -> None:
        cid = change["client_id"]
        held = self.clients.get(cid)
        if change["op"] == "upsert":
            if held is None or change["version"] >= held["version"]:
                self.clients[cid] = change["client"]
        elif change["op"] == "delete":
            if held is not None and change["version"] >= held["version"]:
                del self.clients[cid]
        else:
            self.blocked[cid] = change["blocked"]

    def state(self) -> dict[str, tuple[str, int, bool]]:
        return {cid: (c["name"], c["version"], self.blocked.get(cid, False)) for cid, c in self.clients.items()}


def _sync(api: Api, app: App, cursor: str | None) -> str:
    while True:
        page = api.get("/me/changes", params={"since": cursor} if cursor else {}).json()
        for change in page["items"]:
            app.apply(change)
        cursor = page["cursor"]
        if not page["has_more"]:
            return str(cursor)


def _listed(api: Api) -> dict[str, tuple[str, int, bool]]:
    out: dict[str, tuple[str, int, bool]] = {}
    cursor = None
    while True:
        page = api.get("/me/clients", params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        out.update({c["client_id"]: (c["name"], c["version"], c["blocked"]) for c in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def test_replay_from_any_cursor_matches_the_list_under_concurrent_writers(stack: Stack, pro: MakePro) -> None:
    alice, bob = pro("alice"), pro("bob")
    studio_id = _studio(alice)["studio_id"]
    _wait_import(stack, alice, studio_id)
    _join(stack, alice, bob, studio_id)
    ids = [_client(alice, f"Client {i}", phone=unique_phone())["client_id"] for i in range(8)]
    own = [_client(bob, f"Bob's {i}", phone=unique_phone())["client_id"] for i in range(3)]
    stack.drain()

    snapshots: list[tuple[str, App]] = []
    app = App()
    snapshots.append((_sync(bob, app, None), _copy(app)))
    stop = threading.Event()
    rng = random.Random(7)

    def admin_work() -> None:
        while not stop.is_set():
            cid = rng.choice(ids)
            action = rng.random()
            if action < 0.4:
                alice.put(f"/studios/{studio_id}/clients/{cid}/assignees/{bob.sub}")
            elif action < 0.6:
                alice.delete(f"/studios/{studio_id}/clients/{cid}/assignees/{bob.sub}")
            else:
                etag = alice.get(f"/clients/{cid}").headers.get("ETag", '"0"')
                alice.patch(
                    f"/clients/{cid}",
                    json={"name": f"Client {cid[-4:]} {rng.randint(0, 99)}"},
                    headers={"If-Match": etag},
                )

    def bob_work() -> None:
        while not stop.is_set():
            cid = rng.choice(own)
            if rng.random() < 0.5:
                etag = bob.get(f"/clients/{cid}").headers.get("ETag", '"0"')
                bob.patch(f"/clients/{cid}", json={"tags": [str(rng.randint(0, 9))]}, headers={"If-Match": etag})
            else:
                (bob.put if rng.random() < 0.5 else bob.delete)(f"/clients/{cid}/block")

    with ThreadPoolExecutor(3) as pool:
        workers = [pool.submit(admin_work), pool.submit(admin_work), pool.submit(bob_work)]
        for _ in range(6):
            # The app syncs while writes are landing, keeping every cursor it is given.
            snapshots.append((_sync(bob, app, snapshots[-1][0]), _copy(app)))
        stop.set()
        for worker in workers:
            worker.result()
    stack.drain()
    truth = _listed(bob)
    assert truth, "bob should hold clients"
    for cursor, held in snapshots:
        replayed = _copy(held)
        _sync(bob, replayed, cursor)
        assert replayed.state() == truth
    fresh = App()
    _sync(bob, fresh, None)
    assert fresh.state() == truth


def _copy(app: App) -> App:
    other = App()
    other.clients = dict(app.clients)
    other.blocked = dict(app.blocked)
    return other


def test_a_cursor_older_than_the_retention_is_410(stack: Stack, pro: MakePro) -> None:
    from salon.schemas.common import encode_cursor

    bob = pro("bob")
    old = encode_cursor({"after": f"{1:017d}#", "w": "1"})
    resp = bob.get("/me/changes", params={"since": old})
    assert resp.status_code == 410
    assert resp.json()["error"]["code"] == "resync_required"
    assert bob.get("/me/changes", params={"since": "garbage!"}).status_code == 422
