"""Scale: a pro with 5,000 clients joins a studio of 5,000 clients, half of them the same people (by phone).

The two books are written as the create route writes them (profile, phone
uniqueness item and the owner's view, with the service's own builders), the
pro joins through the routes, and the import runs to completion: the first
message as the stream consumer would enqueue it, then every chunk it enqueues
on the jobs queue, each handled by ``salon.services.jobs.run_job_message``.
The floor, in the same run, makes the same item writes with raw BatchWriteItem:
every item the import put, updated or deleted (recorded from its calls) is
written again as it ended, or deleted again, 25 a call. Next to it, the
earlier floor of one profile item a client (``ratio_to_profiles``) shows how
much more an import has to write than a bulk load of profiles. ``through_local_stack`` does it again over HTTP on
``devstack.stack.LocalStack`` (moto server, API, pumps), waiting on the
member's import summary, and edits a client assigned to 200 members until all
200 views show the edit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.fanout import raw_batch_requests, raw_batch_write
from bench.world import World, quiet_heap

OWNER, PRO = "scale-owner", "scale-pro"


def phone(i: int) -> str:
    return f"+1 212 {200 + i // 10000:03d} {i % 10000:04d}"


def client_items(owner: str, creator: str, names_phones: list[tuple[str, str]], country: str = "US") -> list[Any]:
    """The items POST /clients writes for each client (profile, uniqueness item, the creator's view)."""
    from salon import clock
    from salon.data import keys
    from salon.data.models import ClientProfile
    from salon.ids import new_id
    from salon.services.clients import _unique
    from salon.services.contact import fold_name, normalise_phone
    from salon.services.views import build_view

    items: list[Any] = []
    now = clock.now_iso()
    for name, raw_phone in names_phones:
        client_id = new_id()
        e164 = normalise_phone(raw_phone, country)
        profile = ClientProfile(keys.client_pk(client_id), keys.PROFILE)
        profile.client_id = client_id
        profile.owner = owner
        profile.name = name
        profile.name_folded = fold_name(name)
        profile.phone = e164
        profile.tags = []
        profile.allergies = []
        profile.marketing_consent = False
        profile.version = 1
        profile.created_at = profile.updated_at = now
        profile.created_by = profile.brought_by = creator
        profile.assignees = {creator}
        profile.history_pros = set()
        profile.gsi1pk = keys.book_pk(owner)
        profile.gsi1sk = keys.book_name_sk(profile.name_folded, client_id)
        items += [
            profile,
            _unique(keys.unique_phone_pk(owner, e164), client_id),
            build_view(profile, creator, masked=False, changed_at_us=clock.now_us()),
        ]
    return items


def seed_books(world_call: Callable[..., Any], put_items: Callable[[list[Any]], None], n: int) -> str:
    """A studio of ``n`` clients and a pro with ``n`` personal clients, half the studio's people; returns the
    studio id. ``world_call(method, path, sub, body)`` answers as the API; ``put_items`` writes model items."""
    studio = world_call("POST", "/studios", OWNER, {"name": "Scale Studio", "country": "US", "time_zone": "UTC"})
    studio_id = str(studio["studio_id"])
    owner = f"STUDIO#{studio_id}"
    put_items(client_items(owner, OWNER, [(f"Studio Client {i:05d}", phone(i)) for i in range(n)]))
    world_call("GET", "/me", PRO, None)
    same = n // 2
    mine = [(f"Shared Client {i:05d}", phone(i)) for i in range(same)]
    mine += [(f"Own Client {i:05d}", phone(100_000 + i)) for i in range(n - same)]
    put_items(client_items(f"PRO#{PRO}", PRO, mine))
    return studio_id


def _write_models(items: list[Any]) -> None:
    from salon.data.batch import write_batch

    for start in range(0, len(items), 3000):
        write_batch(items[start : start + 3000], [])


WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


@contextmanager
def recording_writes(table: str) -> Iterator[set[tuple[str, str]]]:
    """The keys of every item written to ``table`` (put, updated or deleted) while inside."""
    import botocore.client

    written: set[tuple[str, str]] = set()
    real = botocore.client.BaseClient._make_api_call

    def key_of(op: dict[str, Any]) -> tuple[str, str]:
        key = op.get("Key") or op.get("Item") or {}
        return key["pk"]["S"], key["sk"]["S"]

    def recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation in WRITES:
            if operation == "TransactWriteItems":
                ops = [
                    body
                    for action in params["TransactItems"]
                    for kind, body in action.items()
                    if kind != "ConditionCheck"
                ]
            elif operation == "BatchWriteItem":
                ops = [r.get("PutRequest") or r.get("DeleteRequest") for r in params["RequestItems"].get(table, [])]
            else:
                ops = [params]
            written.update(key_of(op) for op in ops if op and op.get("TableName", table) == table)
        return real(client, operation, params)

    botocore.client.BaseClient._make_api_call = recorded
    try:
        yield written
    finally:
        botocore.client.BaseClient._make_api_call = real


def rewrite_floor(world: World, written: set[tuple[str, str]]) -> tuple[int, float]:
    """The floor of an import: the same item writes with raw BatchWriteItem, 25 a call. Each item the import
    wrote is put again as it is now, and each it deleted is deleted again (it is put back first, untimed)."""
    keys = sorted(written)
    current: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), 100):
        request = {world.table: {"Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys[start : start + 100]]}}
        while request:
            resp = world.ddb.batch_get_item(RequestItems=request)
            for item in resp["Responses"].get(world.table, []):
                current[(item["pk"]["S"], item["sk"]["S"])] = item
            request = resp.get("UnprocessedKeys") or {}
    gone = [k for k in keys if k not in current]
    placeholders = [{"pk": {"S": pk}, "sk": {"S": sk}, "kind": {"S": "floor"}} for pk, sk in gone]
    raw_batch_write(world, placeholders)
    requests = [{"PutRequest": {"Item": item}} for item in current.values()]
    requests += [{"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for pk, sk in gone]
    with quiet_heap():
        started = time.perf_counter()
        calls = raw_batch_requests(world, requests)
        return calls, time.perf_counter() - started


def measure_import(world: World, n: int = 5000, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    from salon.services.jobs import run_job_message

    def call(method: str, path: str, sub: str, body: Any) -> Any:
        resp = world.call(method, path, sub, body)
        if resp.status >= 300:
            raise AssertionError(f"{method} {path}: {resp.status} {resp.json}")
        return resp.json

    started = time.perf_counter()
    studio_id = seed_books(call, _write_models, n)
    if log:
        log(f"  import: seeded 2 x {n} clients in {time.perf_counter() - started:.0f} s")
    code = call("POST", f"/studios/{studio_id}/invites", OWNER, {"role": "provider"})["code"]
    call("POST", "/studios/join", PRO, {"code": code})
    jobs_url = world.resources.queues["JobsQueue"]
    sqs = world.aws.client("sqs")
    sqs.purge_queue(QueueUrl=jobs_url)
    messages = [json.dumps({"kind": "import", "studio_id": studio_id, "pro_id": PRO})]
    chunks = 0
    with quiet_heap(), world.counter.counting(), recording_writes(world.table) as written:
        started = time.perf_counter()
        while messages:
            for body in messages:
                run_job_message(body)
                chunks += 1
            messages = []
            with world.counter.paused():
                resp = sqs.receive_message(QueueUrl=jobs_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                for m in resp.get("Messages", []):
                    if json.loads(m["Body"]).get("kind") == "import":
                        messages.append(m["Body"])
                    sqs.delete_message(QueueUrl=jobs_url, ReceiptHandle=m["ReceiptHandle"])
        elapsed = time.perf_counter() - started
    ddb = world.counter.of("dynamodb")
    member = call("GET", f"/studios/{studio_id}/members/{PRO}", OWNER, None)
    summary = member["import"]
    floor_names = [(f"Floor Client {i:05d}", phone(200_000 + i)) for i in range(n)]
    raw = [profile.serialize() for profile in client_items("PRO#floor", "floor", floor_names)[0::3]]

    with quiet_heap():
        started = time.perf_counter()
        profile_floor_calls = raw_batch_write(world, raw)
        profile_floor_s = time.perf_counter() - started
    floor_calls, floor_s = rewrite_floor(world, written)
    return {
        "clients": n,
        "same_people": n // 2,
        "status": summary["status"],
        "imported": summary["imported"],
        "merged": summary["merged"],
        "conflicts": summary["conflicts"],
        "chunks": chunks,
        "calls": len(ddb),
        "operations": {op: ddb.count(op) for op in sorted(set(ddb))},
        "calls_per_client": round(len(ddb) / n, 3),
        "seconds": round(elapsed, 2),
        # The floor: every item the import wrote (put, updated or deleted), written again with raw BatchWriteItem.
        "items_written": len(written),
        "floor_calls": floor_calls,
        "floor_seconds": round(floor_s, 2),
        "ratio": round(elapsed / floor_s, 2),
        # Next to one profile item a client written raw (the floor of earlier runs): how much more an import
        # writes, not only how it writes.
        "profile_floor_calls": profile_floor_calls,
        "profile_floor_seconds": round(profile_floor_s, 2),
        "ratio_to_profiles": round(elapsed / profile_floor_s, 2),
    }
