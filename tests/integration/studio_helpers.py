"""Studio set-ups written straight into the emulator's table, for tests of studio visibility.

Use these when a test needs a studio, its members and its clients but is not a
test of the studio routes themselves (create, invite, join, assign): the
items are the ones those routes write, so what the API decides from them
(who sees a client, who is admin, who is masked, who was checked in today) is
the real behaviour.

    studio = make_studio(stack, admin=alice.sub, members={bob.sub: "provider", cara.sub: "assistant"})
    client_id = put_studio_client(stack, studio, assignees=[bob.sub])
    check_in(stack, studio, client_id)              # cara may read it today
    set_assignees(stack, client_id, [bob.sub, dan.sub])   # version bumped, so views fan out

What is written (table ``studio-local-RecordsTable``):
- ``STUDIO#<sid>`` / ``STUDIO``: name, country, time zone, plan, owner, ``member_roles``
  (the stream fan-out masks views by these roles);
- ``STUDIO#<sid>`` / ``MEMBER#<pro>`` for each member (role, ``status="active"``);
- ``PRO#<pro>`` / ``PROFILE`` for each member: ``studio_id``, ``role``,
  ``membership_status="active"``, ``studio_time_zone``, ``studio_country``, ``studio_plan``
  (the caller's access read uses these);
- ``CLIENT#<cid>`` / ``PROFILE`` owned by ``STUDIO#<sid>`` with ``assignees``;
- ``CLIENT#<cid>`` / ``CHECKIN#<studio-local date>`` (model ``CheckIn``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from ulid import ULID

from tests.integration.conftest import Stack

TABLE = "studio-local-RecordsTable"


@dataclass
class StudioSetup:
    studio_id: str
    time_zone: str
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return f"STUDIO#{self.studio_id}"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def studio_today(time_zone: str) -> str:
    """Today's date in the studio's time zone, as the API computes it."""
    return dt.datetime.now(ZoneInfo(time_zone)).date().isoformat()


def make_studio(
    stack: Stack,
    *,
    admin: str,
    members: dict[str, str] | None = None,
    time_zone: str = "UTC",
    country: str = "US",
    plan: str = "basic",
) -> StudioSetup:
    """A studio whose owner is ``admin`` (role admin), plus ``members`` (pro id -> role), all active."""
    studio = StudioSetup(str(ULID()), time_zone, {admin: "admin", **(members or {})})
    ddb = stack.client("dynamodb")
    ddb.put_item(
        TableName=TABLE,
        Item={
            "pk": _s(studio.owner),
            "sk": _s("STUDIO"),
            "kind": _s("studio"),
            "studio_id": _s(studio.studio_id),
            "name": _s("Test Studio"),
            "country": _s(country),
            "time_zone": _s(time_zone),
            "plan": _s(plan),
            "owner_id": _s(admin),
            "member_roles": {"M": {pro: _s(role) for pro, role in studio.roles.items()}},
            "admin_count": {"N": str(sum(1 for r in studio.roles.values() if r == "admin"))},
            "created_at": _s(_now()),
        },
    )
    for pro_id, role in studio.roles.items():
        put_member(stack, studio, pro_id, role, country=country, plan=plan)
    return studio


def put_member(
    stack: Stack, studio: StudioSetup, pro_id: str, role: str, *, country: str = "US", plan: str = "basic"
) -> None:
    """Make ``pro_id`` an active member with ``role`` (their PROFILE and the studio's MEMBER item)."""
    studio.roles[pro_id] = role
    ddb = stack.client("dynamodb")
    ddb.put_item(
        TableName=TABLE,
        Item={
            "pk": _s(f"PRO#{pro_id}"),
            "sk": _s("PROFILE"),
            "kind": _s("pro"),
            "plan": _s("basic"),
            "studio_id": _s(studio.studio_id),
            "role": _s(role),
            "membership_status": _s("active"),
            "studio_country": _s(country),
            "studio_time_zone": _s(studio.time_zone),
            "studio_plan": _s(plan),
        },
    )
    ddb.put_item(
        TableName=TABLE,
        Item={
            "pk": _s(studio.owner),
            "sk": _s(f"MEMBER#{pro_id}"),
            "kind": _s("member"),
            "studio_id": _s(studio.studio_id),
            "pro_id": _s(pro_id),
            "role": _s(role),
            "status": _s("active"),
            "joined_at": _s(_now()),
            "import_status": _s("done"),
        },
    )


def put_studio_client(
    stack: Stack,
    studio: StudioSetup,
    *,
    assignees: list[str],
    name: str = "Studio Client",
    created_by: str | None = None,
    phone: str | None = None,
) -> str:
    """A client of the studio's book (version 1) assigned to ``assignees``; returns its id."""
    client_id = str(ULID())
    creator = created_by or next(iter(studio.roles))
    item: dict[str, Any] = {
        "pk": _s(f"CLIENT#{client_id}"),
        "sk": _s("PROFILE"),
        "kind": _s("client"),
        "client_id": _s(client_id),
        "owner": _s(studio.owner),
        "name": _s(name),
        "name_folded": _s(name.casefold()),
        "marketing_consent": {"BOOL": False},
        "version": {"N": "1"},
        "created_at": _s(_now()),
        "updated_at": _s(_now()),
        "created_by": _s(creator),
        "brought_by": _s(creator),
        "gsi1pk": _s(f"BOOK#{studio.owner}"),
        "gsi1sk": _s(f"NAME#{name.casefold()}#{client_id}"),
    }
    if phone:
        item["phone"] = _s(phone)
    if assignees:
        item["assignees"] = {"SS": sorted(set(assignees))}
    stack.client("dynamodb").put_item(TableName=TABLE, Item=item)
    return client_id


def set_assignees(stack: Stack, client_id: str, assignees: list[str]) -> None:
    """Replace a client's assignees and bump its version, as an admin's assign or unassign does."""
    ddb = stack.client("dynamodb")
    if assignees:
        ddb.update_item(
            TableName=TABLE,
            Key={"pk": _s(f"CLIENT#{client_id}"), "sk": _s("PROFILE")},
            UpdateExpression="SET assignees = :a, updated_at = :t ADD version :one",
            ExpressionAttributeValues={":a": {"SS": sorted(set(assignees))}, ":t": _s(_now()), ":one": {"N": "1"}},
        )
    else:
        ddb.update_item(
            TableName=TABLE,
            Key={"pk": _s(f"CLIENT#{client_id}"), "sk": _s("PROFILE")},
            UpdateExpression="REMOVE assignees SET updated_at = :t ADD version :one",
            ExpressionAttributeValues={":t": _s(_now()), ":one": {"N": "1"}},
        )


def check_in(stack: Stack, studio: StudioSetup, client_id: str, local_date: str | None = None) -> None:
    """Record a check-in of the client on a studio-local date (today by default)."""
    day = local_date or studio_today(studio.time_zone)
    stack.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "pk": _s(f"CLIENT#{client_id}"),
            "sk": _s(f"CHECKIN#{day}"),
            "kind": _s("checkin"),
            "client_id": _s(client_id),
            "studio_id": _s(studio.studio_id),
            "local_date": _s(day),
            "appointment_ids": {"SS": [str(ULID())]},
        },
    )


def get_item(stack: Stack, pk: str, sk: str) -> dict[str, Any] | None:
    """One raw item of the table (strongly consistent), or None."""
    resp = stack.client("dynamodb").get_item(TableName=TABLE, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True)
    item: dict[str, Any] | None = resp.get("Item")
    return item


def set_pro_plan(stack: Stack, pro_id: str, plan: str) -> None:
    """A solo pro's plan (``PRO#<pro>`` / ``PROFILE.plan``), as an operator's plan change leaves it.

    An update, not a put: the pro's other attributes (studio membership...) are kept.
    """
    stack.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": _s(f"PRO#{pro_id}"), "sk": _s("PROFILE")},
        UpdateExpression="SET #kind = if_not_exists(#kind, :kind), #plan = :plan",
        ExpressionAttributeNames={"#kind": "kind", "#plan": "plan"},
        ExpressionAttributeValues={":kind": _s("pro"), ":plan": _s(plan)},
    )


# -- history and the Client Log (issue 6)
def set_blocked(stack: Stack, pro_id: str, client_id: str, blocked: bool = True) -> None:
    """The pro's personal flags on a client (``PRO#<pro>`` / ``CLIENT#<cid>#FLAGS``), as the block route writes them."""
    stack.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "pk": _s(f"PRO#{pro_id}"),
            "sk": _s(f"CLIENT#{client_id}#FLAGS"),
            "kind": _s("flags"),
            "client_id": _s(client_id),
            "blocked": {"BOOL": blocked},
            "changed_at": {"N": "0"},
        },
    )


def put_confirmed_upload(
    stack: Stack,
    client_id: str,
    *,
    profile: bool = False,
    uploaded_by: str = "someone",
    confirmed_at: str | None = None,
) -> str:
    """A confirmed file (``CLIENT#<cid>`` / ``UPLOAD#<uid>``), as the S3 event leaves it; returns its id."""
    upload_id = str(ULID())
    stack.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "pk": _s(f"CLIENT#{client_id}"),
            "sk": _s(f"UPLOAD#{upload_id}"),
            "kind": _s("upload"),
            "upload_id": _s(upload_id),
            "client_id": _s(client_id),
            "status": _s("confirmed"),
            "content_type": _s("image/jpeg"),
            "size": {"N": "1234"},
            "profile": {"BOOL": profile},
            "object_key": _s(f"clients/{client_id}/{upload_id}"),
            "uploaded_by": _s(uploaded_by),
            "system": {"BOOL": False},
            "created_at": _s(_now()),
            "confirmed_at": _s(confirmed_at or _now()),
        },
    )
    return upload_id


def put_alias(stack: Stack, old_client_id: str, survivor_id: str) -> None:
    """``CLIENT#<old>`` / ``ALIAS``: the old id was merged into ``survivor_id`` (as a join's merge leaves it)."""
    stack.client("dynamodb").put_item(
        TableName=TABLE,
        Item={
            "pk": _s(f"CLIENT#{old_client_id}"),
            "sk": _s("ALIAS"),
            "kind": _s("alias"),
            "client_id": _s(survivor_id),
        },
    )
