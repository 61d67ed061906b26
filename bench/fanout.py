"""Fan-out: one edit of a client assigned to N members, through the stream consumer, next to raw BatchWriteItem.

For each N a studio with N members (its ``member_roles``) and a client
assigned to all of them whose views already exist (version 1). The stream
function's handler gets one Lambda-shaped MODIFY record (old and new images,
as ``events/stream-profile-modify.json``) and brings the N views to version 2.
The floor, in the same run, writes the same N view items with plain
BatchWriteItem calls of 25. ``ratio`` is the consumer's time over the floor's.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bench.world import World, quiet_heap

STUDIO = "01JD0000000000000000BENCH0"


def _client_item(client_id: str, members: list[str], version: int, name: str) -> dict[str, Any]:
    return {
        "pk": {"S": f"CLIENT#{client_id}"},
        "sk": {"S": "PROFILE"},
        "kind": {"S": "client"},
        "client_id": {"S": client_id},
        "owner": {"S": f"STUDIO#{STUDIO}"},
        "name": {"S": name},
        "name_folded": {"S": name.lower()},
        "phone": {"S": "+14155552671"},
        "email": {"S": "ana@example.com"},
        "marketing_consent": {"BOOL": False},
        "version": {"N": str(version)},
        "created_at": {"S": "2026-11-24T02:40:00.000Z"},
        "updated_at": {"S": f"2026-11-24T02:4{version}:00.000Z"},
        "created_by": {"S": members[0]},
        "brought_by": {"S": members[0]},
        "assignees": {"SS": members},
        "gsi1pk": {"S": f"BOOK#STUDIO#{STUDIO}"},
        "gsi1sk": {"S": f"NAME#{name.lower()}#{client_id}"},
    }


def _record(old: dict[str, Any] | None, new: dict[str, Any], sequence: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ApproximateCreationDateTime": int(time.time()),
        "Keys": {"pk": new["pk"], "sk": new["sk"]},
        "NewImage": new,
        "SequenceNumber": f"{sequence:021d}",
        "SizeBytes": 512,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        data["OldImage"] = old
    return {
        "eventID": f"bench{sequence}",
        "eventName": "MODIFY" if old is not None else "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": data,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/bench/stream/2026-11-24T00:00:00.000",
    }


def _put_studio(world: World, members: list[str]) -> None:
    world.ddb.put_item(
        TableName=world.table,
        Item={
            "pk": {"S": f"STUDIO#{STUDIO}"},
            "sk": {"S": "STUDIO"},
            "kind": {"S": "studio"},
            "studio_id": {"S": STUDIO},
            "name": {"S": "Fan-out studio"},
            "country": {"S": "US"},
            "time_zone": {"S": "UTC"},
            "plan": {"S": "premium"},
            "owner_id": {"S": members[0]},
            "admin_count": {"N": "1"},
            "member_roles": {"M": {m: {"S": "admin" if i == 0 else "provider"} for i, m in enumerate(members)}},
        },
    )
    # The first member's item: a one-pro edit's single call checks it (decision D31).
    world.ddb.put_item(
        TableName=world.table,
        Item={
            "pk": {"S": f"STUDIO#{STUDIO}"},
            "sk": {"S": f"MEMBER#{members[0]}"},
            "kind": {"S": "member"},
            "studio_id": {"S": STUDIO},
            "pro_id": {"S": members[0]},
            "role": {"S": "admin"},
            "status": {"S": "active"},
        },
    )


def _views(world: World, members: list[str], client_id: str) -> list[dict[str, Any]]:
    keys = [{"pk": {"S": f"PRO#{m}"}, "sk": {"S": f"CLIENT#{client_id}"}} for m in members]
    out: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        resp = world.ddb.batch_get_item(RequestItems={world.table: {"Keys": keys[start : start + 100]}})
        out += resp["Responses"][world.table]
    return out


def raw_batch_write(world: World, items: list[dict[str, Any]]) -> int:
    """The floor: the same items with BatchWriteItem, 25 a call, unprocessed items retried."""
    return raw_batch_requests(world, [{"PutRequest": {"Item": item}} for item in items])


def raw_batch_requests(world: World, requests: list[dict[str, Any]]) -> int:
    """Put and delete requests with BatchWriteItem as they are, 25 a call, unprocessed ones retried."""
    calls = 0
    for start in range(0, len(requests), 25):
        pending = requests[start : start + 25]
        while pending:
            calls += 1
            resp = world.ddb.batch_write_item(RequestItems={world.table: pending})
            pending = resp.get("UnprocessedItems", {}).get(world.table, [])
    return calls


def measure(world: World, sizes: tuple[int, ...] = (1, 10, 100, 1000), repeats: int = 5) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    sequence = 1
    for n in sizes:
        members = [f"fan{n}m{i:04d}" for i in range(n)]
        _put_studio(world, members)
        client_id = f"01JD{n:06d}000000000000FAN0"[:26]
        consumer_s: list[float] = []
        floor_s: list[float] = []
        ops: list[str] = []
        written = 0
        for r in range(repeats):
            v = 2 * r + 1
            v1 = _client_item(client_id, members, v, f"Ana {v}")
            v2 = _client_item(client_id, members, v + 1, f"Ana {v + 1}")
            world.ddb.put_item(TableName=world.table, Item=v2)
            world.invoke("StreamFunction", {"Records": [_record(None, v1, sequence)]})  # views at version v
            sequence += 1
            event = {"Records": [_record(v1, v2, sequence)]}
            sequence += 1
            with quiet_heap(), world.counter.counting():
                started = time.perf_counter()
                result = world.invoke("StreamFunction", event)
                consumer_s.append(time.perf_counter() - started)
            if result.get("batchItemFailures"):
                raise AssertionError(f"fan-out to {n} failed: {result}")
            ops = world.counter.of("dynamodb")
            views = _views(world, members, client_id)
            written = sum(1 for view in views if int(view["version"]["N"]) == v + 1)
            if written != n:
                raise AssertionError(f"fan-out to {n} reached {written} views")
            with quiet_heap():
                started = time.perf_counter()
                floor_calls = raw_batch_write(world, views)
                floor_s.append(time.perf_counter() - started)
        consumer, floor = min(consumer_s), min(floor_s)
        writes = sum(1 for op in ops if op in ("BatchWriteItem", "PutItem", "UpdateItem", "TransactWriteItems"))
        out[str(n)] = {
            "members": n,
            "views_updated": written,
            "calls": len(ops),
            "write_calls": writes,
            "operations": {op: ops.count(op) for op in sorted(set(ops))},
            "target_calls": math.ceil(n / 25) + math.ceil(n / 100) + 2,
            "ms": round(consumer * 1000, 1),
            "floor_calls": floor_calls,
            "floor_ms": round(floor * 1000, 1),
            "ratio": round(consumer / floor, 2),
        }
    return out
