"""How long a pro with many studio clients takes to leave, through the local stack (``make dev`` in a
subprocess, moto behind it): ``python -m bench.departure [--clients 2000]``.

The studio, the invite and the join go through the API. The pro's studio clients are then written
straight into the emulator's table, as creating them would leave them (profile, uniqueness item, the
pro's view, one note by the pro; every other client also has a note by the owner, so the studio keeps
it), because creating 2,000 clients over HTTP would measure creation, not leaving. The figure is the
wall time from ``DELETE /studios/{sid}/members/{pro}`` to the member's status ``left``, with every
copy made, every studio record unassigned or marked deleted and the counters final.

Measured (2 CPUs, moto 5.2.5): 200 clients 50 s; 2,000 clients 40 min 42 s, of which 818 s in the
42 chunks themselves and the rest the same jobs queue running the 1,000 cascade deletes in between.
moto answers every Query by scanning the whole table, so each client's one Query costs O(table) here;
on DynamoDB a chunk is ~8 calls a client, 8 clients at a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import requests
from ulid import ULID

from devstack import tokens
from devstack.process import stack_process

ROOT = Path(__file__).resolve().parents[1]
TABLE = "studio-local-RecordsTable"


class Client:
    def __init__(self, url: str, key_dir: Path, sub: str) -> None:
        self.url, self.sub = url, sub
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {tokens.mint(sub, None, directory=key_dir)}"

    def call(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        resp = self.session.request(method, self.url + path, timeout=120, **kwargs)
        assert resp.status_code == status, (path, resp.status_code, resp.text)
        return resp.json() if resp.content else None


def drain(url: str, timeout_s: float = 60) -> None:
    requests.post(f"{url}/__devstack/drain", params={"timeout": timeout_s}, timeout=timeout_s + 5)


def seed(ddb: Any, studio_id: str, pro: str, owner: str, count: int) -> None:
    """``count`` studio clients created by ``pro`` and assigned to them; every other one has the owner's note."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    book = f"STUDIO#{studio_id}"
    items: list[dict[str, Any]] = []
    for i in range(count):
        cid = str(ULID())
        name = f"Client {i:05d}"
        phone = f"+1415{2000000 + i:07d}"
        shared = i % 2 == 1
        history = [pro, owner] if shared else [pro]
        items.append(
            {
                "pk": {"S": f"CLIENT#{cid}"},
                "sk": {"S": "PROFILE"},
                "kind": {"S": "client"},
                "client_id": {"S": cid},
                "owner": {"S": book},
                "name": {"S": name},
                "name_folded": {"S": name.casefold()},
                "phone": {"S": phone},
                "marketing_consent": {"BOOL": False},
                "version": {"N": "1"},
                "created_at": {"S": now},
                "updated_at": {"S": now},
                "created_by": {"S": pro},
                "brought_by": {"S": pro},
                "assignees": {"SS": [pro]},
                "history_pros": {"SS": history},
                "gsi1pk": {"S": f"BOOK#{book}"},
                "gsi1sk": {"S": f"NAME#{name.casefold()}#{cid}"},
            }
        )
        items.append(
            {
                "pk": {"S": f"BOOK#{book}#PHONE#{phone}"},
                "sk": {"S": "UNIQUE"},
                "kind": {"S": "unique"},
                "client_id": {"S": cid},
            }
        )
        items.append(
            {
                "pk": {"S": f"PRO#{pro}"},
                "sk": {"S": f"CLIENT#{cid}"},
                "kind": {"S": "view"},
                "client_id": {"S": cid},
                "owner": {"S": book},
                "name": {"S": name},
                "name_folded": {"S": name.casefold()},
                "phone": {"S": phone},
                "marketing_consent": {"BOOL": False},
                "version": {"N": "1"},
                "created_at": {"S": now},
                "updated_at": {"S": now},
                "masked": {"BOOL": False},
                "changed_at": {"N": "1"},
            }
        )
        for author in history:
            note_id = str(ULID())
            items.append(
                {
                    "pk": {"S": f"CLIENT#{cid}"},
                    "sk": {"S": f"NOTE#{note_id}"},
                    "kind": {"S": "note"},
                    "client_id": {"S": cid},
                    "note_id": {"S": note_id},
                    "author_id": {"S": author},
                    "body": {"S": f"{author} on {name}"},
                    "created_at": {"S": now},
                    "updated_at": {"S": now},
                }
            )
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        while chunk:
            chunk = ddb.batch_write_item(RequestItems={TABLE: chunk}).get("UnprocessedItems", {}).get(TABLE, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    args = parser.parse_args()
    key_dir = Path(tempfile.mkdtemp(prefix="bench-departure-"))
    with stack_process(key_dir) as running:
        url, emulator = running.url, running.emulator
        suffix = str(ULID())[-8:].lower()
        owner = Client(url, key_dir, f"owner-{suffix}")
        pro = Client(url, key_dir, f"leaver-{suffix}")
        studio_id = owner.call("POST", "/studios", 201, json={"name": "Bench Studio"})["studio_id"]
        code = owner.call("POST", f"/studios/{studio_id}/invites", 201, json={"role": "provider"})["code"]
        pro.call("POST", "/studios/join", 202, json={"code": code})
        drain(url)
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=emulator,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        seeded = time.monotonic()
        seed(ddb, studio_id, pro.sub, owner.sub, args.clients)
        print(f"seeded {args.clients} clients in {time.monotonic() - seeded:.1f} s")
        started = time.monotonic()
        pro.call("DELETE", f"/studios/{studio_id}/members/{pro.sub}", 202)
        while True:
            member = pro.call("GET", f"/studios/{studio_id}/members/{pro.sub}", 200)
            if member["status"] == "left":
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        departure = member["departure"]
        print(f"departure of {args.clients} clients: {elapsed:.1f} s wall time; {departure}", flush=True)
        drain(url)
        mine = pro.call("GET", "/me/clients", 200, params={"limit": 100})
        assert departure["kept_by_pro"] == args.clients, departure
        assert departure["left_with_pro"] == (args.clients + 1) // 2, departure
        assert all(c["book"] == "personal" for c in mine["items"]), "a studio client is still listed"


if __name__ == "__main__":
    main()
