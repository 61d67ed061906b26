"""Joining a studio: the pro's personal clients move into the studio's book, or merge into the studio
client who is the same person (matched by normalised phone first, then email).

Runs in the jobs worker, one chunk per message, and enqueues the next chunk.
Every step is idempotent: a move is conditional on the client still being
personal, a merge on the merged-away profile still existing, and the
counters are added in the same transactions, so a replayed or retried chunk
never moves, merges or counts anything twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from salon import clock, metrics
from salon.data import keys
from salon.data.batch import batch_get, write_batch
from salon.data.connection import table_connection
from salon.data.models import ClientProfile, ImportConflict, Member, MergeRecord, TableItem
from salon.data.tx import TransactionCancelled, Tx, n, s, update_item

logger = Logger(child=True)

CHUNK = 500  # personal clients a job message takes on: one Query page, BatchGetItems of their matches (D29)
MAX_ACTIONS = 100  # actions in one TransactWriteItems; each transaction also adds to the member's counters
CONTACT_FIELDS = ("name", "phone", "email", "birthday", "tags", "allergies", "marketing_consent")


@dataclass
class Plan:
    moves: list[ClientProfile] = field(default_factory=list)
    merges: list[tuple[ClientProfile, str, str | None]] = field(default_factory=list)  # (client, target, conflict)


def run_import_chunk(message: dict[str, Any]) -> None:
    from salon.services.jobs import enqueue

    studio_id, pro_id = message["studio_id"], message["pro_id"]
    member = _member(studio_id, pro_id)
    if member is None or member.status != "active" or member.import_status == "done":
        return
    if member.import_status == "pending":
        update_item(
            keys.studio_pk(studio_id),
            keys.member_sk(pro_id),
            "SET import_status = :running",
            values={":running": s("running"), ":pending": s("pending")},
            condition="import_status = :pending",
        )
    personal, more = _still_personal(pro_id)
    if not personal and more:
        enqueue("import", studio_id=studio_id, pro_id=pro_id)  # a full page of moved clients: the index lags
        return
    if not personal:
        update_item(
            keys.studio_pk(studio_id), keys.member_sk(pro_id), "SET import_status = :done", values={":done": s("done")}
        )
        logger.info("import done", extra={"studio_id": studio_id, "pro_id": pro_id})
        return
    plan = _plan(studio_id, personal)
    owner = keys.book_owner_for_studio(studio_id)
    for moves in _move_groups(plan.moves):
        _move(moves, studio_id, pro_id, owner)
    # The survivors are read once for the whole chunk; one merged into by a transaction is read again before
    # a later one merges into it (its version moved on).
    targets: dict[str, ClientProfile | None] = {}
    groups = _merge_groups(plan.merges)
    for index, target_group in enumerate(groups):
        wanted = target_group if index else plan.merges
        stale = sorted({target for _, target, _ in wanted if target not in targets})
        found = batch_get([(keys.client_pk(t), keys.PROFILE) for t in stale], consistent=True) if stale else {}
        for target in stale:
            item = found.get((keys.client_pk(target), keys.PROFILE))
            targets[target] = item if isinstance(item, ClientProfile) else None
        for client, target, _conflict in target_group:
            # Every write of a note, formula, photo, appointment or sale names its author in the profile's
            # history_pros: a client without any has no items to move, and costs no Query.
            if client.history_pros:
                _move_children(client.client_id, target)
        _merge(target_group, targets, studio_id, pro_id, owner)
        for _, target, _ in target_group:
            targets.pop(target, None)
    enqueue("import", studio_id=studio_id, pro_id=pro_id)


def _still_personal(pro_id: str) -> tuple[list[ClientProfile], bool]:
    """The next personal clients of the pro, as the base table holds them now, and whether the index may hold
    more. The book index (a GSI, eventually consistent on AWS) only names candidates: it can still list a
    client this import already moved or merged, whose studio uniqueness items now name the client itself, so
    planning from the index's copy would merge the client into itself and delete its notes and formulas. Each
    candidate's profile is read again with ConsistentRead and kept only while the pro still owns it (D40).
    When the index shows nothing left, it may not list yet a client registered just before the join: the pro's
    own views (written with each client, D1, and read consistently) are asked before the import is done."""
    personal_owner = keys.pro_pk(pro_id)
    candidates = [
        p.client_id
        for p in TableItem.book_index.query(
            keys.book_pk(personal_owner), TableItem.gsi1sk.startswith("NAME#"), limit=CHUNK, page_size=CHUNK
        )
        if isinstance(p, ClientProfile)
    ]
    personal = _owned_now(candidates, personal_owner)
    if personal or len(candidates) >= CHUNK:
        return personal, len(candidates) >= CHUNK
    return _viewed_as_personal(pro_id, personal_owner), False


def _owned_now(client_ids: list[str], owner: str) -> list[ClientProfile]:
    """The profiles of ``client_ids`` the owner still holds, read with ConsistentRead."""
    found = batch_get([(keys.client_pk(c), keys.PROFILE) for c in client_ids], consistent=True) if client_ids else {}
    owned = []
    for client_id in client_ids:
        item = found.get((keys.client_pk(client_id), keys.PROFILE))
        if isinstance(item, ClientProfile) and item.owner == owner and not getattr(item, "deleted_at", None):
            owned.append(item)
    return owned


def _viewed_as_personal(pro_id: str, owner: str) -> list[ClientProfile]:
    """Up to ``CHUNK`` clients the pro still owns, found through the views in the pro's own partition: consistent
    Query pages projected on the client id, each page's profiles read with ConsistentRead (:func:`_owned_now`).
    A moved client's view names the pro's book until the stream rewrites it, so the first views can all be of
    clients this import already moved: the pages go on until ``CHUNK`` owned clients are found or the views end
    (before: only the first ``CHUNK`` views were checked, and when they were all moved ones the import was marked
    done with the pro's other clients left in the personal book)."""
    conn = table_connection()
    params: dict[str, Any] = {
        "TableName": TableItem.Meta.table_name,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :views)",
        "FilterExpression": "#owner = :owner AND #kind = :view",
        "ProjectionExpression": "client_id",
        "ExpressionAttributeNames": {"#owner": "owner", "#kind": "kind"},
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.pro_pk(pro_id)},
            ":views": {"S": keys.view_sk("")},  # the views (and flags) prefix
            ":owner": {"S": owner},
            ":view": {"S": "view"},
        },
        "ConsistentRead": True,
    }
    owned: list[ClientProfile] = []
    while len(owned) < CHUNK:
        resp = conn.client.query(**params)
        owned += _owned_now([raw["client_id"]["S"] for raw in resp.get("Items", []) if "client_id" in raw], owner)
        if "LastEvaluatedKey" not in resp:
            break
        params["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return owned[:CHUNK]


def _member(studio_id: str, pro_id: str) -> Member | None:
    try:
        item = TableItem.get(keys.studio_pk(studio_id), keys.member_sk(pro_id), consistent_read=True)
    except TableItem.DoesNotExist:
        return None
    return item if isinstance(item, Member) else None


def _plan(studio_id: str, personal: list[ClientProfile]) -> Plan:
    """Match each client by phone first, then email, against the studio's uniqueness items."""
    owner = keys.book_owner_for_studio(studio_id)
    wanted: list[tuple[str, str]] = []
    for client in personal:
        if client.phone:
            wanted.append((keys.unique_phone_pk(owner, client.phone), keys.UNIQUE))
        if client.email:
            wanted.append((keys.unique_email_pk(owner, client.email), keys.UNIQUE))
    found = batch_get(wanted, consistent=True) if wanted else {}  # the previous chunk's moves included
    plan = Plan()
    for client in personal:
        by_phone = found.get((keys.unique_phone_pk(owner, client.phone), keys.UNIQUE)) if client.phone else None
        by_email = found.get((keys.unique_email_pk(owner, client.email), keys.UNIQUE)) if client.email else None
        phone_id = getattr(by_phone, "client_id", None)
        email_id = getattr(by_email, "client_id", None)
        if client.client_id in (phone_id, email_id):
            continue  # already in the studio's book (moved since it was read): never merged into itself
        if phone_id is None and email_id is None:
            plan.moves.append(client)
        elif phone_id is not None:
            conflict = email_id if email_id is not None and email_id != phone_id else None
            plan.merges.append((client, str(phone_id), conflict))
        else:
            plan.merges.append((client, str(email_id), None))
    return plan


def _move(clients: list[ClientProfile], studio_id: str, pro_id: str, owner: str) -> None:
    """Personal clients become studio clients with the same id, brought by the pro and assigned to them."""
    pending = list(clients)
    while pending:
        tx = Tx()
        first_action: list[int] = []
        now = clock.now_iso()
        for client in pending:
            first_action.append(len(tx))
            tx.update(
                client.pk,
                client.sk,
                "SET #owner = :owner, gsi1pk = :book, version = version + :one, updated_at = :now, brought_by = :pro "
                "ADD assignees :pros",
                values={
                    ":owner": s(owner),
                    ":book": s(keys.book_pk(owner)),
                    ":one": n(1),
                    ":now": s(now),
                    ":pro": s(pro_id),
                    ":pros": {"SS": [pro_id]},
                    ":personal": s(keys.pro_pk(pro_id)),
                },
                names={"#owner": "owner"},
                condition="#owner = :personal",
            )
            personal_owner = keys.pro_pk(pro_id)
            for value, builder in ((client.phone, keys.unique_phone_pk), (client.email, keys.unique_email_pk)):
                if value:
                    unique = _unique(builder(owner, value), client.client_id)
                    tx.put(unique, condition="attribute_not_exists(pk)")
                    tx.delete(builder(personal_owner, value), keys.UNIQUE)
        tx.update(keys.studio_pk(studio_id), keys.member_sk(pro_id), "ADD imported :k", values={":k": n(len(pending))})
        try:
            tx.run()
            return
        except TransactionCancelled as exc:
            if exc.conflict:
                raise  # a concurrent transaction: the message is retried
            # Drop the clients whose conditions failed (already moved, or their phone or email was just
            # taken in the studio: the next chunk sees them again and merges them) and retry the rest.
            bounds = [*first_action, len(tx) - 1]
            failed = {i for i in range(len(pending)) if any(exc.failed(a) for a in range(bounds[i], bounds[i + 1]))}
            if not failed:
                raise
            pending = [c for i, c in enumerate(pending) if i not in failed]


def _move_children(client_id: str, target_id: str) -> None:
    """Copy each item of the merged-away client under the survivor with the same sort key, then delete it.
    Idempotent puts first, deletes after, so an interrupted move only ever leaves copies, never losses."""
    conn = table_connection()
    raw_items: list[dict[str, Any]] = []
    start = None
    while True:
        resp = conn.client.query(
            TableName=TableItem.Meta.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.client_pk(client_id)}},
            ConsistentRead=True,  # a note written just before the merge is moved too, never left behind
            **({"ExclusiveStartKey": start} if start else {}),
        )
        raw_items += resp.get("Items", [])
        start = resp.get("LastEvaluatedKey")
        if not start:
            break
    children = [
        raw
        for raw in raw_items
        if raw["sk"]["S"] not in (keys.PROFILE, keys.ALIAS) and not raw["sk"]["S"].startswith("CHECKIN#")
    ]
    if not children:
        return
    copies = []
    for raw in children:
        if raw["sk"]["S"] == "QUOTA":
            continue  # the survivor's quota grows by the files moved, below
        copy = {**raw, "pk": {"S": keys.client_pk(target_id)}, "merged_from": {"S": client_id}}
        if "client_id" in copy:
            copy["client_id"] = {"S": target_id}
        copies.append(copy)
    write_batch(raw_puts=copies)
    uploads = sum(1 for c in copies if c["sk"]["S"].startswith("UPLOAD#"))
    if uploads:
        update_item(
            keys.client_pk(target_id),
            "QUOTA",
            "SET kind = if_not_exists(kind, :kind) ADD used :k",
            values={":kind": s("quota"), ":k": n(uploads)},
        )
    write_batch(deletes=[(raw["pk"]["S"], raw["sk"]["S"]) for raw in children])


def _contacts(client: ClientProfile) -> int:
    return sum(1 for value in (client.phone, client.email) if value)


def _move_actions(client: ClientProfile) -> int:
    """The profile's update, and for its phone and email a studio uniqueness item put and the personal one deleted."""
    return 1 + 2 * _contacts(client)


def _merge_actions(client: ClientProfile, conflict_id: str | None) -> int:
    """The survivor's update, the personal profile's delete, the alias and the merge record; for its phone and
    email the personal uniqueness item deleted and, at most, a studio one put (a filled field); the conflict."""
    return 4 + 2 * _contacts(client) + (1 if conflict_id else 0)


def _move_groups(moves: list[ClientProfile]) -> list[list[ClientProfile]]:
    """Moves in order, as many to a transaction as its actions allow (one is the member's counter)."""
    groups: list[list[ClientProfile]] = []
    used = MAX_ACTIONS
    for client in moves:
        cost = _move_actions(client)
        if used + cost > MAX_ACTIONS:
            groups.append([])
            used = 1
        groups[-1].append(client)
        used += cost
    return groups


def _merge_groups(
    merges: list[tuple[ClientProfile, str, str | None]],
) -> list[list[tuple[ClientProfile, str, str | None]]]:
    """Merges packed into transactions by their actions, with distinct survivors in each (a transaction
    touches an item once)."""
    groups: list[tuple[list[tuple[ClientProfile, str, str | None]], list[int]]] = []
    for merge in merges:
        cost = _merge_actions(merge[0], merge[2])
        for group, used in groups:
            if used[0] + cost <= MAX_ACTIONS and all(g[1] != merge[1] for g in group):
                group.append(merge)
                used[0] += cost
                break
        else:
            groups.append(([merge], [1 + cost]))
    return [group for group, _ in groups]


def _merge(  # noqa: PLR0915 - one transaction, built item by item, reads best in one place
    group: list[tuple[ClientProfile, str, str | None]],
    targets: dict[str, ClientProfile | None],
    studio_id: str,
    pro_id: str,
    owner: str,
) -> None:
    pending = list(group)
    while pending:
        tx = Tx()
        bounds: list[int] = []
        merged = conflicts = 0
        now = clock.now_iso()
        for client, target_id, conflict_id in pending:
            bounds.append(len(tx))
            target = targets.get(target_id)
            fill, conflicting = _fill(client, target)
            if conflict_id:
                fill.pop("email", None)  # that email belongs to another studio client
            sets = ["version = version + :one", "updated_at = :now"]
            version = int(target.version) if target is not None else 0
            values: dict[str, Any] = {
                ":one": n(1),
                ":now": s(now),
                ":pros": {"SS": [pro_id]},
                ":owner": s(owner),
                ":read": n(version),
            }
            names = {"#owner": "owner"}
            for i, (name, value) in enumerate(fill.items()):
                names[f"#f{i}"] = name
                values[f":f{i}"] = value
                sets.append(f"#f{i} = :f{i}")
            tx.update(
                keys.client_pk(target_id),
                keys.PROFILE,
                "SET " + ", ".join(sets) + " ADD assignees :pros",
                values=values,
                names=names,
                condition="#owner = :owner AND version = :read AND attribute_not_exists(deleted_at)",
            )
            tx.delete(
                client.pk,
                client.sk,
                condition="#owner = :personal",
                values={":personal": s(keys.pro_pk(pro_id))},
                names={"#owner": "owner"},
            )
            alias = TableItem.from_raw_data(
                {
                    "pk": {"S": client.pk},
                    "sk": {"S": keys.ALIAS},
                    "kind": {"S": "alias"},
                    "client_id": {"S": target_id},
                }
            )
            tx.put(alias)
            record = MergeRecord(keys.client_pk(target_id), keys.merge_sk(client.client_id))
            record.client_id = target_id
            record.merged_client_id = client.client_id
            record.pro_id = pro_id
            record.merged_at = now
            record.brought = {k: json.dumps(v) for k, v in _brought(client).items()}
            record.conflicting = {k: json.dumps(v) for k, v in conflicting.items()}
            tx.put(record)
            for value, builder in ((client.phone, keys.unique_phone_pk), (client.email, keys.unique_email_pk)):
                if value:
                    tx.delete(builder(keys.pro_pk(pro_id), value), keys.UNIQUE)
            for name, builder in (("phone", keys.unique_phone_pk), ("email", keys.unique_email_pk)):
                if name in fill:
                    tx.put(_unique(builder(owner, fill[name]["S"]), target_id), condition="attribute_not_exists(pk)")
            merged += 1
            if conflict_id:
                conflicts += 1
                item = ImportConflict(keys.studio_pk(studio_id), keys.conflict_sk(pro_id, client.client_id))
                item.pro_id = pro_id
                item.client_id = client.client_id
                item.linked_client_id = target_id
                item.other_client_id = conflict_id
                item.reason = "phone matched one studio client and email another; linked by phone"
                tx.put(item)
        tx.update(
            keys.studio_pk(studio_id),
            keys.member_sk(pro_id),
            "ADD merged :m, conflicts :c",
            values={":m": n(merged), ":c": n(conflicts)},
        )
        try:
            tx.run()
            metrics.count(metrics.CLIENTS_MERGED, merged)
            return
        except TransactionCancelled as exc:
            if exc.conflict:
                raise
            bounds.append(len(tx) - 1)
            failed = {i for i in range(len(pending)) if any(exc.failed(a) for a in range(bounds[i], bounds[i + 1]))}
            if not failed:
                raise
            pending = [m for i, m in enumerate(pending) if i not in failed]


def _brought(client: ClientProfile) -> dict[str, Any]:
    return {f: getattr(client, f) for f in CONTACT_FIELDS if getattr(client, f, None) not in (None, [], "")}


def _fill(client: ClientProfile, target: ClientProfile | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fields the studio record lacks, filled from the pro's; and the pro's values where the studio's won."""
    raw = client.serialize()
    fill: dict[str, Any] = {}
    conflicting: dict[str, Any] = {}
    for name in CONTACT_FIELDS:
        mine = getattr(client, name, None)
        if mine in (None, [], ""):
            continue
        theirs = getattr(target, name, None) if target is not None else None
        if theirs in (None, [], ""):
            fill[name] = raw[name]
        elif theirs != mine:
            conflicting[name] = mine
    if "name" in fill:
        fill["name_folded"] = raw["name_folded"]
    return fill, conflicting


def _unique(pk: str, client_id: str) -> TableItem:
    return TableItem.from_raw_data(
        {"pk": {"S": pk}, "sk": {"S": keys.UNIQUE}, "kind": {"S": "unique"}, "client_id": {"S": client_id}}
    )
