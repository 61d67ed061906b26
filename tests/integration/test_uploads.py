"""Files and photos over HTTP on the local stack: presigned POSTs, real multipart uploads to the
emulator's S3, confirmation by the bucket's events, thumbnails, the 20-file limit under concurrency.

The emulator's S3 enforces POST policies, signatures and expiries as AWS does (devstack/s3_rules.py):
objects outside a grant are refused by S3 itself; objects inside it whose content lies (magic bytes,
a corrupt image), or objects that reach a key another way, must be thrown out by the S3 event path."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
from PIL import Image
from ulid import ULID

from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.studio_helpers import (
    TABLE,
    check_in,
    get_item,
    make_studio,
    put_studio_client,
    set_pro_plan,
)

BUCKET = "studio-local-uploads-123456789012"


# ------------------------------------------------------------------ helpers


def image_bytes(fmt: str, size: tuple[int, int] = (800, 600), color: str = "teal") -> bytes:
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 40):  # some detail, so encoders have work to do
        for y in range(0, size[1], 40):
            image.putpixel((x, y), (255, 255, 0))
    out = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif = pytest.importorskip("pillow_heif")
        pillow_heif.register_heif_opener()
    image.save(out, format=fmt)
    return out.getvalue()


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def padded(body: bytes, size: int) -> bytes:
    """``body`` grown to exactly ``size`` bytes (decoders ignore what follows the image): what a grant allows."""
    assert len(body) <= size
    return body + b"\0" * (size - len(body))


def other_bytes(body: bytes) -> bytes:
    """Another JPEG-looking body of the same length (a second POST that a reused grant still allows)."""
    return body[:3] + bytes(255 - b for b in body[3:])


def premium_client(stack: Stack, pro: Callable[..., Api], name: str = "ana") -> tuple[Api, str]:
    """A solo pro on the premium plan and one client of theirs."""
    owner = pro(name)
    set_pro_plan(stack, owner.sub, "premium")
    resp = owner.post("/clients", json={"name": "Photo Client", "phone": unique_phone()})
    assert resp.status_code == 201, resp.text
    return owner, resp.json()["client_id"]


def ask(api: Api, client_id: str, content_type: str, size: int, **extra: Any) -> requests.Response:
    return api.post(f"/clients/{client_id}/uploads", json={"content_type": content_type, "size": size, **extra})


def send_file(grant: dict[str, Any], body: bytes, content_type: str | None = None) -> requests.Response:
    """The app's multipart POST straight to S3 with the grant's url and fields (optionally lying about the type).

    The emulator's S3 enforces the POST policy as AWS does (devstack/s3_rules.py): a body or type outside the
    grant is refused there."""
    fields = dict(grant["fields"])
    if content_type is not None:
        fields["Content-Type"] = content_type
    return requests.post(grant["url"], data=fields, files={"file": ("upload", body)}, timeout=30)


def post_file(grant: dict[str, Any], body: bytes, content_type: str | None = None) -> requests.Response:
    """``send_file`` that S3 must accept."""
    resp = send_file(grant, body, content_type)
    assert resp.status_code in (200, 201, 204), resp.text
    return resp


def upload(stack: Stack, api: Api, client_id: str, content_type: str, body: bytes, **extra: Any) -> dict[str, Any]:
    """Ask, POST the bytes, wait for the S3 event; the grant."""
    resp = ask(api, client_id, content_type, len(body), **extra)
    assert resp.status_code == 201, resp.text
    grant: dict[str, Any] = resp.json()
    post_file(grant, body)
    stack.drain()
    return grant


def files(api: Api, client_id: str) -> list[dict[str, Any]]:
    resp = api.get(f"/clients/{client_id}/uploads")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def used(stack: Stack, client_id: str) -> int:
    item = get_item(stack, f"CLIENT#{client_id}", "QUOTA")
    return int(item["used"]["N"]) if item and "used" in item else 0


def set_used(stack: Stack, client_id: str, value: int) -> None:
    """What the join's merge leaves when it adds moved files to the survivor's counter."""
    stack.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"CLIENT#{client_id}"}, "sk": {"S": "QUOTA"}},
        UpdateExpression="SET used = :u, #kind = :kind",
        ExpressionAttributeNames={"#kind": "kind"},
        ExpressionAttributeValues={":u": {"N": str(value)}, ":kind": {"S": "quota"}},
    )


def live_object(stack: Stack, key: str) -> bool:
    try:
        stack.client("s3").head_object(Bucket=BUCKET, Key=key)
    except stack.client("s3").exceptions.ClientError:
        return False
    return True


def policy_of(grant: dict[str, Any]) -> dict[str, Any]:
    raw = grant["fields"]["policy"]
    doc: dict[str, Any] = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    return doc


# -------------------------------------------------------------------- tests


def test_the_presigned_post_is_tight(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    before = dt.datetime.now(dt.UTC)
    resp = ask(owner, client_id, "image/jpeg", 123_456, filename="after.jpg")
    after = dt.datetime.now(dt.UTC)  # a cold worker can take seconds on a loaded machine
    assert resp.status_code == 201, resp.text
    grant = resp.json()
    key = f"clients/{client_id}/{grant['upload_id']}"
    assert grant["fields"]["key"] == key
    assert grant["fields"]["Content-Type"] == "image/jpeg"
    policy = policy_of(grant)
    conditions = policy["conditions"]
    assert {"key": key} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert ["content-length-range", 123_456, 123_456] in conditions
    assert {"bucket": BUCKET} in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    expiration = dt.datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert before + dt.timedelta(minutes=10, seconds=-1) < expiration <= after + dt.timedelta(minutes=10, seconds=1)
    expires_at = dt.datetime.fromisoformat(grant["expires_at"].replace("Z", "+00:00"))
    assert abs((expires_at - expiration).total_seconds()) <= 1
    assert used(stack, client_id) == 1


def test_bad_requests_are_422_and_take_no_slot(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    for body, field in (
        ({"content_type": "image/gif", "size": 10}, "content_type"),
        ({"content_type": "image/png", "size": 10 * 1024 * 1024 + 1}, "size"),
        ({"content_type": "image/png", "size": 0}, "size"),
        ({"content_type": "image/png", "size": 10, "filename": "../x"}, "filename"),
        ({"content_type": "image/png", "size": 10, "bucket": "other"}, "bucket"),
    ):
        resp = owner.post(f"/clients/{client_id}/uploads", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert field in json.dumps(resp.json()["error"]["details"])
    resp = ask(owner, client_id, "application/pdf", 10, profile=True)
    assert resp.status_code == 422
    assert used(stack, client_id) == 0


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [("image/jpeg", "JPEG"), ("image/png", "PNG"), ("image/webp", "WEBP"), ("image/heic", "HEIF")],
)
def test_a_real_upload_is_confirmed_thumbnailed_listed_and_downloaded(
    stack: Stack, pro: Callable[..., Api], content_type: str, fmt: str
) -> None:
    owner, client_id = premium_client(stack, pro)
    body = image_bytes(fmt)
    grant = upload(stack, owner, client_id, content_type, body, filename="colour.img")
    (item,) = files(owner, client_id)
    assert item["upload_id"] == grant["upload_id"]
    assert item["content_type"] == content_type
    assert item["size"] == len(body)
    assert item["filename"] == "colour.img"
    assert item["uploaded_by"] == owner.sub
    assert item["profile"] is False
    expires = dt.datetime.fromisoformat(item["urls_expire_at"].replace("Z", "+00:00"))
    assert expires <= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5, seconds=1)
    assert "Expires=300" in item["download_url"] or "X-Amz-Expires=300" in item["download_url"]

    download = requests.get(item["download_url"], timeout=30)
    assert download.status_code == 200
    assert download.content == body  # byte for byte

    thumb = requests.get(item["thumbnail_url"], timeout=30)
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.format == "JPEG"
        assert max(image.size) == 320
    assert live_object(stack, f"clients/{client_id}/{grant['upload_id']}.thumb.jpg")
    assert used(stack, client_id) == 1


def test_a_pdf_is_confirmed_without_a_thumbnail(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    grant = upload(stack, owner, client_id, "application/pdf", PDF, filename="consent.pdf")
    (item,) = files(owner, client_id)
    assert item["upload_id"] == grant["upload_id"]
    assert item["thumbnail_url"] is None
    assert requests.get(item["download_url"], timeout=30).content == PDF
    assert not live_object(stack, f"clients/{client_id}/{grant['upload_id']}.thumb.jpg")


def _truncated_jpeg() -> bytes:
    good = image_bytes("JPEG", (1200, 900))
    return good[: len(good) // 3]


@pytest.mark.parametrize(
    ("case", "declared", "body", "sent_type"),
    [
        ("bigger than declared", "image/png", None, None),
        ("another content type", "image/png", "png", "image/jpeg"),
        ("magic bytes of another type", "image/jpeg", "png", None),
        ("magic bytes of no allowed type", "application/pdf", "text", None),
        ("a corrupt image", "image/jpeg", "truncated", None),
    ],
)
def test_bad_objects_are_deleted_and_free_their_slot(
    stack: Stack, pro: Callable[..., Api], case: str, declared: str, body: str | None, sent_type: str | None
) -> None:
    owner, client_id = premium_client(stack, pro)
    png = image_bytes("PNG", (64, 64))
    data = {
        None: png,
        "png": png,
        "text": b"hello, not a pdf at all....",
        "truncated": _truncated_jpeg(),
    }[body]
    size = len(data) // 2 if case == "bigger than declared" else len(data)
    resp = ask(owner, client_id, declared, size)
    assert resp.status_code == 201, resp.text
    grant = resp.json()
    assert used(stack, client_id) == 1
    key = f"clients/{client_id}/{grant['upload_id']}"
    if case in ("bigger than declared", "another content type"):
        # S3 itself refuses a POST outside its policy (devstack/s3_rules.py, as AWS does) ...
        refused = send_file(grant, data, sent_type)
        assert refused.status_code == (400 if case == "bigger than declared" else 403), refused.text
        assert ("EntityTooLarge" if case == "bigger than declared" else "Policy Condition failed") in refused.text
        assert not live_object(stack, key)
        # ... and an object that reaches the key another way is still thrown out by the S3 event.
        stack.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=sent_type or declared)
    else:
        post_file(grant, data, sent_type)
    stack.drain()
    assert not live_object(stack, key), case
    assert not live_object(stack, key + ".thumb.jpg"), case
    assert files(owner, client_id) == [], case
    assert used(stack, client_id) == 0, case
    assert get_item(stack, f"CLIENT#{client_id}", f"UPLOAD#{grant['upload_id']}") is None


def test_objects_without_a_reservation_are_deleted(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    s3 = stack.client("s3")
    stray = f"clients/{client_id}/{ULID()}"
    s3.put_object(Bucket=BUCKET, Key=stray, Body=image_bytes("JPEG", (32, 32)), ContentType="image/jpeg")
    odd = f"clients/{client_id}/not an id.jpg"  # a space: the event's key arrives URL-encoded
    s3.put_object(Bucket=BUCKET, Key=odd, Body=b"x", ContentType="image/jpeg")
    stack.drain()
    assert not live_object(stack, stray)
    assert not live_object(stack, odd)
    assert files(owner, client_id) == []
    assert used(stack, client_id) == 0


def test_a_later_version_of_a_confirmed_file_is_deleted_and_duplicates_change_nothing(
    stack: Stack, pro: Callable[..., Api]
) -> None:
    owner, client_id = premium_client(stack, pro)
    body = image_bytes("JPEG", (300, 200))
    grant = upload(stack, owner, client_id, "image/jpeg", body)
    key = f"clients/{client_id}/{grant['upload_id']}"
    s3 = stack.client("s3")
    first = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]

    # The same POST again while the policy is still valid: a second version of a confirmed key.
    post_file(grant, other_bytes(body))  # within the policy: the same size and type
    stack.drain()
    versions = [v for v in s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"] if v["Key"] == key]
    assert [v["VersionId"] for v in versions] == [first]
    (item,) = files(owner, client_id)
    assert requests.get(item["download_url"], timeout=30).content == body

    # The original event delivered again: nothing changes.
    item_before = get_item(stack, f"CLIENT#{client_id}", f"UPLOAD#{grant['upload_id']}")
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Post",
        "s3": {
            "bucket": {"name": BUCKET},
            "object": {"key": key.replace("/", "%2F"), "size": len(body), "versionId": first},
        },
    }
    sqs = stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="local-s3-events")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))
    stack.drain()
    assert get_item(stack, f"CLIENT#{client_id}", f"UPLOAD#{grant['upload_id']}") == item_before
    assert [f["upload_id"] for f in files(owner, client_id)] == [grant["upload_id"]]
    assert live_object(stack, key)
    assert live_object(stack, key + ".thumb.jpg")
    assert used(stack, client_id) == 1


def test_26_concurrent_requests_get_exactly_20_slots(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    start = threading.Barrier(26)

    def one(_: int) -> requests.Response:
        session = Api(stack, owner.sub)
        start.wait()
        return ask(session, client_id, "image/jpeg", 1000)

    with ThreadPoolExecutor(max_workers=26) as pool:
        results = list(pool.map(one, range(26)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 20 + [409] * 6, codes
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "file_limit_reached"
    assert len({r.json()["upload_id"] for r in results if r.status_code == 201}) == 20
    assert used(stack, client_id) == 20

    # Deleting one (here a pending reservation: a cancel) frees exactly one slot.
    granted = next(r.json()["upload_id"] for r in results if r.status_code == 201)
    assert owner.delete(f"/clients/{client_id}/uploads/{granted}").status_code == 204
    assert used(stack, client_id) == 19
    assert ask(owner, client_id, "image/png", 10).status_code == 201
    resp = ask(owner, client_id, "image/png", 10)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "file_limit_reached"


def test_a_lapsed_reservation_frees_its_slot(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    set_used(stack, client_id, 19)  # 19 files already (as a merge would leave them)
    stale = ask(owner, client_id, "image/jpeg", 1000).json()
    assert used(stack, client_id) == 20
    assert ask(owner, client_id, "image/jpeg", 1000).status_code == 409

    # Its POST expired and the grace period passed: move its lapse time into the past.
    stack.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"CLIENT#{client_id}"}, "sk": {"S": f"UPLOAD#{stale['upload_id']}"}},
        UpdateExpression="SET lapses_at = :t",
        ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 1)}},
    )
    fresh = ask(owner, client_id, "image/jpeg", 1000)
    assert fresh.status_code == 201, fresh.text
    assert used(stack, client_id) == 20
    assert get_item(stack, f"CLIENT#{client_id}", f"UPLOAD#{stale['upload_id']}") is None
    assert ask(owner, client_id, "image/jpeg", 1000).status_code == 409

    # The lapsed upload's object arriving late finds no reservation and is removed.
    post_file(stale, padded(image_bytes("JPEG", (32, 32)), 1000))
    stack.drain()
    assert not live_object(stack, f"clients/{client_id}/{stale['upload_id']}")
    assert used(stack, client_id) == 20


def test_a_late_event_for_a_lapsed_but_unreleased_reservation_frees_it(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    body = image_bytes("JPEG", (64, 64))
    grant = ask(owner, client_id, "image/jpeg", len(body)).json()
    stack.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"CLIENT#{client_id}"}, "sk": {"S": f"UPLOAD#{grant['upload_id']}"}},
        UpdateExpression="SET lapses_at = :t",
        ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 1)}},
    )
    post_file(grant, body)
    stack.drain()
    assert files(owner, client_id) == []
    assert not live_object(stack, f"clients/{client_id}/{grant['upload_id']}")
    assert used(stack, client_id) == 0


def test_basic_plan_refuses_new_uploads_but_keeps_files_readable(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    upload(stack, owner, client_id, "image/png", image_bytes("PNG", (50, 50)))
    set_pro_plan(stack, owner.sub, "basic")
    resp = ask(owner, client_id, "image/png", 10)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "plan_required"
    (item,) = files(owner, client_id)
    assert requests.get(item["download_url"], timeout=30).status_code == 200
    assert used(stack, client_id) == 1

    fresh = pro("basic")
    client = fresh.post("/clients", json={"name": "Basic", "phone": unique_phone()}).json()["client_id"]
    resp = ask(fresh, client, "image/png", 10)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "plan_required"


def test_access_is_checked_before_plan_limit_or_validation(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    set_used(stack, client_id, 20)
    stranger = pro("stranger")
    for body in ({"content_type": "image/png", "size": 10}, {"content_type": "image/gif"}):
        resp = stranger.post(f"/clients/{client_id}/uploads", json=body)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "client_not_found"
    assert stranger.get(f"/clients/{client_id}/uploads").status_code == 404
    assert stranger.delete(f"/clients/{client_id}/uploads/{ULID()}").status_code == 404
    assert owner.delete(f"/clients/{client_id}/uploads/{ULID()}").json()["error"]["code"] == "upload_not_found"
    assert owner.delete(f"/clients/{client_id}/uploads/not-an-id").status_code == 422


def test_studio_roles_upload_and_list(stack: Stack, pro: Callable[..., Api]) -> None:
    admin, provider, assistant, other = pro("admin"), pro("provider"), pro("assistant"), pro("other")
    studio = make_studio(
        stack,
        admin=admin.sub,
        members={provider.sub: "provider", assistant.sub: "assistant", other.sub: "provider"},
        plan="premium",
    )
    client_id = put_studio_client(stack, studio, assignees=[provider.sub])
    check_in(stack, studio, client_id)

    grant = upload(stack, provider, client_id, "image/jpeg", image_bytes("JPEG", (80, 60)))
    assert [f["upload_id"] for f in files(assistant, client_id)] == [grant["upload_id"]]
    assert [f["upload_id"] for f in files(admin, client_id)] == [grant["upload_id"]]

    resp = ask(assistant, client_id, "image/jpeg", 10)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "forbidden"
    assert assistant.delete(f"/clients/{client_id}/uploads/{grant['upload_id']}").status_code == 403
    assert ask(other, client_id, "image/jpeg", 10).status_code == 404  # not assigned: may not see it
    assert ask(admin, client_id, "image/png", 10).status_code == 201

    basic = make_studio(stack, admin=pro("basic-admin").sub, plan="basic")
    basic_client = put_studio_client(stack, basic, assignees=[])
    basic_admin = Api(stack, next(iter(basic.roles)))
    resp = ask(basic_admin, basic_client, "image/png", 10)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "plan_required"


def test_one_profile_photo_per_client(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    first = upload(stack, owner, client_id, "image/jpeg", image_bytes("JPEG", (60, 60)), profile=True)
    other = upload(stack, owner, client_id, "image/png", image_bytes("PNG", (60, 60)))
    by_id = {f["upload_id"]: f for f in files(owner, client_id)}
    assert by_id[first["upload_id"]]["profile"] is True
    assert by_id[other["upload_id"]]["profile"] is False

    second = upload(stack, owner, client_id, "image/webp", image_bytes("WEBP", (60, 60)), profile=True)
    by_id = {f["upload_id"]: f for f in files(owner, client_id)}
    assert [u for u, f in by_id.items() if f["profile"]] == [second["upload_id"]]
    stored = get_item(stack, f"CLIENT#{client_id}", f"UPLOAD#{first['upload_id']}")
    assert stored is not None
    assert stored["profile"] == {"BOOL": False}  # the flag moved in the table, not only in the answer

    assert owner.delete(f"/clients/{client_id}/uploads/{second['upload_id']}").status_code == 204
    assert not any(f["profile"] for f in files(owner, client_id))


def test_deleting_a_file_removes_object_and_thumbnail_and_frees_the_slot(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    grant = upload(stack, owner, client_id, "image/jpeg", image_bytes("JPEG", (90, 90)))
    key = f"clients/{client_id}/{grant['upload_id']}"
    assert live_object(stack, key)
    assert live_object(stack, key + ".thumb.jpg")
    assert used(stack, client_id) == 1
    assert owner.delete(f"/clients/{client_id}/uploads/{grant['upload_id']}").status_code == 204
    stack.drain()
    assert not live_object(stack, key)
    assert not live_object(stack, key + ".thumb.jpg")
    assert files(owner, client_id) == []
    assert used(stack, client_id) == 0
    resp = owner.delete(f"/clients/{client_id}/uploads/{grant['upload_id']}")
    assert resp.status_code == 404
    assert used(stack, client_id) == 0


def test_a_merge_above_the_limit_keeps_files_and_refuses_uploads_until_below(
    stack: Stack, pro: Callable[..., Api]
) -> None:
    owner, client_id = premium_client(stack, pro)
    grants = [upload(stack, owner, client_id, "image/png", image_bytes("PNG", (20, 20)))["upload_id"] for _ in range(2)]
    set_used(stack, client_id, 22)  # a merge moved 20 more files in
    assert len(files(owner, client_id)) == 2
    assert ask(owner, client_id, "image/png", 10).json()["error"]["code"] == "file_limit_reached"
    assert owner.delete(f"/clients/{client_id}/uploads/{grants[0]}").status_code == 204
    assert used(stack, client_id) == 21
    assert ask(owner, client_id, "image/png", 10).status_code == 409  # 21: still not below the limit
    assert owner.delete(f"/clients/{client_id}/uploads/{grants[1]}").status_code == 204
    assert ask(owner, client_id, "image/png", 10).status_code == 409  # 20: at the limit
    set_used(stack, client_id, 19)
    assert ask(owner, client_id, "image/png", 10).status_code == 201


def _object_keys(stack: Stack, client_id: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"clients/{client_id}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_solo_pro_deleting_their_client_deletes_its_files(stack: Stack, pro: Callable[..., Api]) -> None:
    owner, client_id = premium_client(stack, pro)
    grant = upload(stack, owner, client_id, "image/jpeg", image_bytes("JPEG", (40, 40)))
    key = f"clients/{client_id}/{grant['upload_id']}"
    assert _object_keys(stack, client_id) == [key, key + ".thumb.jpg"]
    assert owner.delete(f"/clients/{client_id}").status_code in (202, 204)
    stack.drain()
    stack.drain()
    assert _object_keys(stack, client_id) == []


def test_studio_client_files_go_with_an_admins_delete_but_not_with_a_pros_removal(
    stack: Stack, pro: Callable[..., Api]
) -> None:
    admin, provider = pro("admin"), pro("provider")
    studio = make_studio(stack, admin=admin.sub, members={provider.sub: "provider"}, plan="premium")
    client_id = put_studio_client(stack, studio, assignees=[provider.sub])
    grant = upload(stack, provider, client_id, "image/png", image_bytes("PNG", (40, 40)))
    key = f"clients/{client_id}/{grant['upload_id']}"

    # The provider removes the client from their own account: the studio keeps it with its files.
    assert provider.delete(f"/clients/{client_id}").status_code in (202, 204)
    stack.drain()
    assert _object_keys(stack, client_id) == [key, key + ".thumb.jpg"]
    assert [f["upload_id"] for f in files(admin, client_id)] == [grant["upload_id"]]

    # The admin deletes the studio client: its objects go too.
    resp = admin.delete(f"/studios/{studio.studio_id}/clients/{client_id}")
    assert resp.status_code in (202, 204), resp.text
    stack.drain()
    stack.drain()
    assert _object_keys(stack, client_id) == []


def test_a_reused_grant_never_replaces_the_confirmed_download(stack: Stack, pro: Callable[..., Api]) -> None:
    """Issue 16 item 5: a grant stays valid for its 10 minutes, so the app (or anyone holding it) can POST a
    second object to the confirmed key. Links name the confirmed version: the file list and the Client Log
    serve the first bytes even while the second version is the key's latest."""
    owner, client_id = premium_client(stack, pro)
    body = image_bytes("JPEG", (300, 200))
    grant = upload(stack, owner, client_id, "image/jpeg", body)
    (before,) = files(owner, client_id)

    # The second object's S3 event is late (an asynchronous invocation may be retried for hours, or fail):
    # the bucket notifies nothing while it is written, so only the links decide what is served.
    s3 = stack.client("s3")
    notifications = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    notifications.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})
    try:
        post_file(grant, other_bytes(body))  # accepted by S3: the same key, type and size the grant allows
    finally:
        s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=notifications)
    key = f"clients/{client_id}/{grant['upload_id']}"
    assert requests.get(url_of_latest(stack, key), timeout=30).content != body  # the key now holds other bytes
    (listed,) = files(owner, client_id)
    log = owner.get(f"/clients/{client_id}/log")
    assert log.status_code == 200, log.text
    (logged,) = log.json()["files"]
    for url in (before["download_url"], listed["download_url"], logged["download_url"]):
        got = requests.get(url, timeout=30)
        assert got.status_code == 200, got.text
        assert got.content == body  # never the second POST's bytes


def url_of_latest(stack: Stack, key: str) -> str:
    """A SigV4 link to the key's latest version (what a link without a version id serves)."""
    from botocore.config import Config

    signer = boto3.client(
        "s3",
        endpoint_url=stack.emulator,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(signature_version="s3v4"),
    )
    return str(signer.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=60))


def test_client_log_links_are_sigv4_and_served(stack: Stack, pro: Callable[..., Api]) -> None:
    """The Client Log's photo links must work on a bucket created today: S3 refuses SigV2 there
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingAWSSDK.html#UsingAWSSDK-sig2-deprecation),
    and so does the local stack's S3."""
    owner, client_id = premium_client(stack, pro)
    body = image_bytes("PNG", (120, 90))
    upload(stack, owner, client_id, "image/png", body, profile=True)
    log = owner.get(f"/clients/{client_id}/log").json()
    photo = log["profile_photo"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in photo["download_url"]
    assert requests.get(photo["download_url"], timeout=30).content == body
    thumb = requests.get(photo["thumbnail_url"], timeout=30)
    assert thumb.status_code == 200, thumb.text
    assert thumb.content.startswith(b"\xff\xd8\xff")


def test_deleting_a_file_leaves_no_version_behind(stack: Stack, pro: Callable[..., Api]) -> None:
    """The bucket is versioned: a delete without a version id only hides a file under a delete marker
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeletingObjectVersions.html). Deleting a file removes
    every version of it and of its thumbnail."""
    owner, client_id = premium_client(stack, pro)
    body = image_bytes("JPEG", (200, 100))
    grant = upload(stack, owner, client_id, "image/jpeg", body)
    post_file(grant, other_bytes(body))  # a second version (thrown out by the event, or not yet)
    key = f"clients/{client_id}/{grant['upload_id']}"
    resp = owner.delete(f"/clients/{client_id}/uploads/{grant['upload_id']}")
    assert resp.status_code == 204, resp.text
    stack.drain()
    listing = stack.client("s3").list_object_versions(Bucket=BUCKET, Prefix=key)
    assert listing.get("Versions", []) == []
    assert listing.get("DeleteMarkers", []) == []
    assert used(stack, client_id) == 0
