"""Lambda's execution model on the local stack: concurrent requests never read each other's events.

A Lambda execution environment processes one request at a time
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html); Powertools relies on it,
keeping the current event on a class attribute every resolver of the process shares
(``BaseRouter.current_event``). A local stack that runs concurrent invocations as threads of one process
answers one caller with another's identity, path or body (wrong 404s and 422s, a note acknowledged and
lost). devstack.workers runs each invocation alone in a worker process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.integration.conftest import Api, Stack, unique_phone

THREADS = 40
ROUNDS = 3


def test_concurrent_requests_of_different_callers_and_routes_each_get_their_own_answer(
    stack: Stack, pro: Callable[..., Api]
) -> None:
    pros = [pro(f"conc{i}") for i in range(8)]
    own: dict[str, list[tuple[str, str]]] = {}
    for who in pros:
        for n in range(2):
            name = f"Own {who.sub} {n}"
            resp = who.post("/clients", json={"name": name, "phone": unique_phone()})
            assert resp.status_code == 201, resp.text
            own.setdefault(who.sub, []).append((resp.json()["client_id"], name))
    barrier = threading.Barrier(THREADS)
    wrong: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            wrong.append(what)

    def caller(i: int) -> None:
        who = pros[i % len(pros)]
        other = pros[(i + 3) % len(pros)]
        barrier.wait()
        for r in range(ROUNDS):
            kind = (i + r) % 4
            if kind == 0:
                resp = who.get("/me")
                check(
                    resp.status_code == 200 and resp.json().get("pro_id") == who.sub,
                    f"GET /me {who.sub}: {resp.status_code} {resp.text[:200]}",
                )
            elif kind == 1:
                name = f"New {who.sub} {i} {r}"
                # An idempotent POST: the idempotency layer reads the event, writes its record, then the route
                # reads the event again (a window with I/O in it, where another request could be resolved).
                resp = who.post(
                    "/clients",
                    json={"name": name, "phone": unique_phone()},
                    headers={"Idempotency-Key": f"{who.sub}-{i}-{r}"},
                )
                body: Any = resp.json() if resp.content else {}
                check(
                    resp.status_code == 201 and body.get("name") == name,
                    f"POST /clients {name}: {resp.status_code} {resp.text[:200]}",
                )
                if resp.status_code == 201:
                    again = who.get(f"/clients/{body['client_id']}")
                    check(
                        again.status_code == 200 and again.json().get("name") == name,
                        f"GET new {name}: {again.status_code} {again.text[:200]}",
                    )
            elif kind == 2:
                client_id, name = own[who.sub][r % 2]
                resp = who.get(f"/clients/{client_id}")
                check(
                    resp.status_code == 200
                    and resp.json().get("client_id") == client_id
                    and resp.json().get("name") == name,
                    f"GET own {client_id} by {who.sub}: {resp.status_code} {resp.text[:200]}",
                )
            else:
                client_id, _ = own[other.sub][r % 2]
                resp = who.get(f"/clients/{client_id}")
                check(
                    resp.status_code == 404,
                    f"GET {other.sub}'s {client_id} by {who.sub}: {resp.status_code} {resp.text[:200]}",
                )

    with ThreadPoolExecutor(THREADS) as threads:
        for f in [threads.submit(caller, i) for i in range(THREADS)]:
            f.result()
    assert not wrong, f"{len(wrong)} wrong answers of {THREADS * ROUNDS}: {wrong[:5]}"
