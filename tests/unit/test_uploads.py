"""Files and photos without the local stack: magic numbers, thumbnails, the call budgets and the
shape of the slot reservation (no read before the conditional write), the system's own copies and
the cascade's deletion (moto in-process, the handler invoked as Lambda would)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from PIL import Image
from ulid import ULID

from devstack.functions import LambdaContext, load_handler
from devstack.gateway import http_event
from devstack.template import Template
from salon.data import keys
from salon.data.models import ClientProfile, ProProfile, TableItem, Upload, UploadQuota
from salon.data.uploads_repo import repository
from salon.services import uploads
from salon.settings import get_settings
from tests.unit.test_requirements import _pins

ROOT = Path(__file__).resolve().parents[2]
BUCKET = get_settings().uploads_bucket


def _image(fmt: str, size: tuple[int, int] = (400, 300), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    color: Any = (10, 120, 200, 128) if mode == "RGBA" else 7 if mode == "P" else (10, 120, 200)
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    Image.new(mode, size, color).save(out, format=fmt)
    return out.getvalue()


# ---------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("HEIF", "image/heic")],
)
def test_magic_numbers_name_the_real_type(fmt: str, content_type: str) -> None:
    assert uploads.sniff(_image(fmt)[:64]) == content_type


def test_magic_numbers_of_pdf_and_of_nothing_allowed() -> None:
    assert uploads.sniff(b"%PDF-1.7\n") == "application/pdf"
    assert uploads.sniff(b"GIF89a....") is None
    assert uploads.sniff(b"") is None
    # An ISO box of another brand (an MP4) is not HEIC; a HEIC brand among compatible brands is.
    assert uploads.sniff(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41") is None
    assert uploads.sniff(b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic") == "image/heic"


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGBA"), ("PNG", "P"), ("WEBP", "RGBA"), ("HEIF", "RGB")])
def test_thumbnails_are_small_jpegs_whatever_the_source(fmt: str, mode: str) -> None:
    content_type = {"PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heic"}[fmt]
    thumb = uploads.make_thumbnail(_image(fmt, (1000, 250), mode), content_type, 320)
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG"
        assert image.size == (320, 80)


def test_a_corrupt_or_mislabelled_image_does_not_make_a_thumbnail() -> None:
    jpeg = _image("JPEG", (800, 600))
    with pytest.raises(Exception):  # noqa: B017, PT011 - any decoder error counts
        uploads.make_thumbnail(jpeg[: len(jpeg) // 3], "image/jpeg", 320)
    with pytest.raises(Exception):  # noqa: B017, PT011
        uploads.make_thumbnail(_image("PNG"), "image/jpeg", 320)


def test_the_function_pins_its_image_libraries_as_the_tests_run_them() -> None:
    own = _pins(ROOT / "functions/uploads/requirements.txt")
    dev = _pins(ROOT / "requirements-dev.txt")
    assert set(own) == {"pillow", "pillow-heif"}
    for name, version in own.items():
        assert version
        assert dev.get(name) == version, name
    layer = _pins(ROOT / "layers/domain/requirements.txt")
    assert "pillow" not in layer  # heavy dependencies stay out of every other function


def test_the_http_path_does_not_import_pillow() -> None:
    import subprocess
    import sys

    code = (
        "import sys, importlib.util;"
        "spec = importlib.util.spec_from_file_location('up', 'functions/uploads/app.py');"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "print('PIL' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "PYTHONPATH": f"{ROOT / 'layers/domain'}:{ROOT}"},
    )
    assert out.stdout.strip() == "False"


# --------------------------------------------- over moto, through the handler


def _seed(pro_id: str, plan: str = "premium") -> str:
    pro = ProProfile(keys.pro_pk(pro_id), keys.PROFILE)
    pro.plan = plan
    pro.save()
    client_id = str(ULID())
    profile = ClientProfile(keys.client_pk(client_id), keys.PROFILE)
    profile.client_id = client_id
    profile.owner = keys.book_owner_for_pro(pro_id)
    profile.name = profile.name_folded = "Ana"
    profile.version = 1
    profile.created_at = profile.updated_at = "2026-01-01T00:00:00.000Z"
    profile.created_by = pro_id
    profile.assignees = {pro_id}
    profile.save()
    return client_id


@pytest.fixture
def invoke(aws: Template) -> Callable[..., dict[str, Any]]:
    handler = load_handler(aws.functions()["UploadsFunction"])
    routes = [r for r in aws.http_routes() if r.function == "UploadsFunction"]

    def call(method: str, path: str, sub: str, body: Any = None) -> dict[str, Any]:
        if method == "S3":
            result: dict[str, Any] = handler(body, LambdaContext("UploadsFunction"))
            return result
        for route in routes:
            match = route.regex.match(path)
            if route.method == method and match:
                params = dict(zip(route.params, match.groups(), strict=True))
                raw = json.dumps(body).encode() if body is not None else b""
                event = http_event(
                    route, method, path, "", {"content-type": "application/json"}, raw, {"sub": sub}, params
                )
                result = handler(event, LambdaContext("UploadsFunction"))
                result["json"] = json.loads(result["body"]) if result.get("body") else None
                return result
        raise AssertionError(f"no route for {method} {path}")

    return call


def _s3_event(key: str, version_id: str | None) -> dict[str, Any]:
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {"key": quote_plus(key), "size": 1}
    if version_id:
        obj["versionId"] = version_id
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"object": obj}}]}


def test_request_and_list_stay_within_budget_and_reserve_without_reading(
    invoke: Callable[..., dict[str, Any]], api_calls: list[str], faults_off: None
) -> None:
    """Counts calls, so with faults off (a retry adds calls): the budget is the design's."""
    client_id = _seed("ana")
    api_calls.clear()
    granted = invoke("POST", f"/clients/{client_id}/uploads", "ana", {"content_type": "image/png", "size": 10})
    assert granted["statusCode"] == 201, granted
    # The access read, then the counter's conditional ADD, then the reservation: no read of the counter.
    assert api_calls == ["BatchGetItem", "UpdateItem", "PutItem"]

    api_calls.clear()
    listed = invoke("GET", f"/clients/{client_id}/uploads", "ana")
    assert listed["statusCode"] == 200
    assert [c for c in api_calls if c != "GetObject"] == ["BatchGetItem", "Query"]

    upload_id = granted["json"]["upload_id"]
    api_calls.clear()
    deleted = invoke("DELETE", f"/clients/{client_id}/uploads/{upload_id}", "ana")
    assert deleted["statusCode"] == 204
    s3_calls = ("ListObjectVersions", "DeleteObjects")
    assert [c for c in api_calls if c not in s3_calls] == ["BatchGetItem", "DeleteItem", "UpdateItem"]


def test_a_full_counter_is_refused_after_one_conditional_write(
    invoke: Callable[..., dict[str, Any]], api_calls: list[str], faults_off: None
) -> None:
    """Counts calls: faults off (a retry adds calls)."""
    client_id = _seed("ana")
    quota = UploadQuota(keys.client_pk(client_id), keys.QUOTA)
    quota.used = 20
    quota.save()
    api_calls.clear()
    refused = invoke("POST", f"/clients/{client_id}/uploads", "ana", {"content_type": "image/png", "size": 10})
    assert refused["statusCode"] == 409
    assert refused["json"]["error"]["code"] == "file_limit_reached"
    # No lapsed reservation to release, so no second try.
    assert api_calls == ["BatchGetItem", "UpdateItem", "Query"]
    assert _used(client_id) == 20


def test_a_failed_reservation_write_gives_the_slot_back(aws: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    from salon.identity import Caller
    from salon.schemas.uploads import UploadRequest
    from salon.services.access import begin_request

    client_id = _seed("ana")
    begin_request()

    def boom(upload: Upload) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(repository, "put_reservation", boom)
    with pytest.raises(RuntimeError):
        uploads.request_upload(Caller("ana"), client_id, UploadRequest(content_type="image/png", size=10))
    assert _used(client_id) == 0


def test_system_copies_are_registered_once_and_confirmed(
    invoke: Callable[..., dict[str, Any]], aws: Template, api_calls: list[str]
) -> None:
    source_client, target_client = _seed("ana"), _seed("bea")
    s3 = boto3.client("s3")
    body = _image("JPEG", (64, 64))
    granted = invoke(
        "POST", f"/clients/{source_client}/uploads", "ana", {"content_type": "image/jpeg", "size": len(body)}
    )
    key = f"clients/{source_client}/{granted['json']['upload_id']}"
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="image/jpeg")["VersionId"]
    invoke("S3", "", "", _s3_event(key, version))
    source = repository.get_upload(source_client, granted["json"]["upload_id"])
    assert source is not None
    assert source.status == "confirmed"

    # The target is full: a system copy still goes in (like a merge, it may pass the limit).
    quota = UploadQuota(keys.client_pk(target_client), keys.QUOTA)
    quota.used = 20
    quota.save()
    copy = uploads.copy_file(source, target_client, uploaded_by="bea")
    again = uploads.register_system_copy(
        target_client, content_type="image/jpeg", size=len(body), uploaded_by="bea", upload_id=source.upload_id
    )
    assert again == copy  # a retried job chunk registers once
    assert _used(target_client) == 21
    head = s3.head_object(Bucket=BUCKET, Key=copy.object_key)
    invoke("S3", "", "", _s3_event(copy.object_key, head["VersionId"]))
    listed = invoke("GET", f"/clients/{target_client}/uploads", "bea")
    assert [f["upload_id"] for f in listed["json"]["items"]] == [source.upload_id]
    assert listed["json"]["items"][0]["thumbnail_url"]
    # Deleting it removes the photo and its thumbnail in one S3 call.
    thumbnail = repository.get_upload(target_client, source.upload_id).thumbnail_key  # type: ignore[union-attr]
    api_calls.clear()
    assert invoke("DELETE", f"/clients/{target_client}/uploads/{source.upload_id}", "bea")["statusCode"] == 204
    assert [c for c in api_calls if c.endswith(("Object", "Objects"))] == ["DeleteObjects"]
    for gone in (copy.object_key, thumbnail):
        with pytest.raises(ClientError):
            s3.head_object(Bucket=BUCKET, Key=gone)
        assert _versions(s3, gone) == []  # every version, not a delete marker over them


def test_a_thumbnail_event_is_kept_and_a_stray_thumbnail_removed(
    invoke: Callable[..., dict[str, Any]], aws: Template
) -> None:
    client_id = _seed("ana")
    s3 = boto3.client("s3")
    body = _image("PNG", (64, 64))
    granted = invoke("POST", f"/clients/{client_id}/uploads", "ana", {"content_type": "image/png", "size": len(body)})
    key = f"clients/{client_id}/{granted['json']['upload_id']}"
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="image/png")["VersionId"]
    invoke("S3", "", "", _s3_event(key, version))
    thumb = key + ".thumb.jpg"
    assert uploads.on_object_created(thumb, s3.head_object(Bucket=BUCKET, Key=thumb)["VersionId"]) == (
        "ignored: thumbnail"
    )
    s3.head_object(Bucket=BUCKET, Key=thumb)
    stray = f"clients/{client_id}/{ULID()}.thumb.jpg"
    s3.put_object(Bucket=BUCKET, Key=stray, Body=b"x")
    assert uploads.on_object_created(stray, None) == "rejected: thumbnail of no file"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=stray)


def test_deleting_a_clients_files_removes_every_object_including_moved_ones(aws: Template) -> None:
    client_id, merged_away = str(ULID()), str(ULID())
    s3 = boto3.client("s3")
    own = [f"clients/{client_id}/{ULID()}", f"clients/{client_id}/{ULID()}.thumb.jpg"]
    moved_key = f"clients/{merged_away}/{ULID()}"
    for key in [*own, moved_key]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    moved = Upload(keys.client_pk(client_id), keys.upload_sk(moved_key.rsplit("/", 1)[1]))
    moved.upload_id = moved_key.rsplit("/", 1)[1]
    moved.client_id = client_id
    moved.status = "confirmed"
    moved.content_type = "image/jpeg"
    moved.size = 1
    moved.object_key = moved_key
    moved.uploaded_by = "ana"
    moved.created_at = "2026-01-01T00:00:00.000Z"
    moved.save()
    other = f"clients/{ULID()}/{ULID()}"
    s3.put_object(Bucket=BUCKET, Key=other, Body=b"x")

    assert uploads.delete_client_files(client_id) == 3
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="clients/").get("Contents", [])]
    assert remaining == [other]
    assert [k for k, _ in _versions(s3, "clients/")] == [other]  # no version kept under a delete marker


def test_profile_photo_is_the_latest_confirmed_flagged_upload() -> None:
    def item(uid: str, status: str, profile: bool, at: str | None) -> Upload:
        u = Upload("CLIENT#c", keys.upload_sk(uid))
        u.upload_id, u.status, u.profile, u.confirmed_at = uid, status, profile, at
        return u

    older = item("01A", "confirmed", True, "2026-01-01T00:00:00.000Z")
    newer = item("01B", "confirmed", True, "2026-01-02T00:00:00.000Z")
    pending = item("01C", "pending", True, None)
    plain = item("01D", "confirmed", False, "2026-01-03T00:00:00.000Z")
    assert uploads.profile_photo_of([older, newer, pending, plain, object()]) is newer
    assert uploads.profile_photo_of([pending, plain]) is None


def test_a_repeated_event_for_a_file_moved_by_a_merge_keeps_the_object(
    invoke: Callable[..., dict[str, Any]], aws: Template
) -> None:
    """On join, a merged client's files move under the survivor but keep their object keys: a late or
    repeated S3 event for such a key must find the file through the alias, not delete the object.

    The event may come right after the merge, so the alias is read with ConsistentRead: without it DynamoDB
    "might not reflect the results of a recently completed write operation"
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html). Here the
    merge's writes lag a minute for an eventually consistent read, so a read that is not consistent misses it."""
    from devstack import ddb_faults, faults
    from salon.services.imports import _move_children

    merged_away, survivor = _seed("ana"), _seed("bea")
    s3 = boto3.client("s3")
    body = _image("JPEG", (64, 64))
    granted = invoke(
        "POST", f"/clients/{merged_away}/uploads", "ana", {"content_type": "image/jpeg", "size": len(body)}
    )
    key = f"clients/{merged_away}/{granted['json']['upload_id']}"
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="image/jpeg")["VersionId"]
    event = _s3_event(key, version)
    invoke("S3", "", "", event)
    faults.configure("default,read_lag_ms=60000")
    print(f"DEVSTACK_FAULTS seed={faults.seed()} ({faults.describe()})")
    try:
        _move_children(merged_away, survivor)
        alias = TableItem.from_raw_data(
            {
                "pk": {"S": keys.client_pk(merged_away)},
                "sk": {"S": keys.ALIAS},
                "kind": {"S": "alias"},
                "client_id": {"S": survivor},
            }
        )
        alias.save()
        invoke("S3", "", "", event)  # delivered again
    finally:
        faults.configure()
        ddb_faults.reset()
    assert s3.head_object(Bucket=BUCKET, Key=key)["VersionId"] == version
    listed = invoke("GET", f"/clients/{survivor}/uploads", "bea")
    assert [f["upload_id"] for f in listed["json"]["items"]] == [granted["json"]["upload_id"]]
    assert _used(survivor) == 1


# ------------------------------------------ links, versions, deletion for good (issue 15 item 2, issue 16 item 5)


def _used(client_id: str) -> int:
    """The client's file counter, read consistently (the test's own read must see the write it follows)."""
    return int(TableItem.get(keys.client_pk(client_id), keys.QUOTA, consistent_read=True).used)  # type: ignore[attr-defined]


def _versions(s3: Any, prefix: str) -> list[tuple[str, str]]:
    listing = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    return [(v["Key"], v["VersionId"]) for v in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]]


def _confirmed(invoke: Callable[..., dict[str, Any]], client_id: str, body: bytes) -> tuple[str, str, str]:
    """A confirmed JPEG of ``client_id`` (and its thumbnail): its upload id, key and confirmed version."""
    s3 = boto3.client("s3")
    granted = invoke("POST", f"/clients/{client_id}/uploads", "ana", {"content_type": "image/jpeg", "size": len(body)})
    upload_id = granted["json"]["upload_id"]
    key = f"clients/{client_id}/{upload_id}"
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="image/jpeg")["VersionId"]
    invoke("S3", "", "", _s3_event(key, version))
    return upload_id, key, version


def test_every_presigned_link_is_sigv4_on_the_buckets_regional_endpoint(
    aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 refuses SigV2 on buckets created after June 24, 2020
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingAWSSDK.html#UsingAWSSDK-sig2-deprecation), and a
    new bucket answers the global endpoint with redirects for up to a day, which a browser's CORS POST does not
    follow (https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html): POST grants, file lists
    and the Client Log's links are all SigV4 on https://<bucket>.s3.<region>.amazonaws.com."""
    from salon.data import uploads_repo
    from salon.services import client_log

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    for cached in ("s3_client", "_s3"):
        if hasattr(getattr(uploads_repo, cached, None), "cache_clear"):
            getattr(uploads_repo, cached).cache_clear()
    monkeypatch.setattr(client_log, "_s3", None, raising=False)
    try:
        endpoint = f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/"
        post = uploads_repo.file_store.presign_post("clients/c/u", "image/png", 10, 600)
        assert post["url"] == endpoint
        assert post["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
        assert "/eu-west-1/s3/aws4_request" in post["fields"]["x-amz-credential"]
        logged = client_log._file(
            {
                "status": "confirmed",
                "upload_id": "u",
                "content_type": "image/jpeg",
                "size": 3,
                "created_at": "2026-01-01T00:00:00.000Z",
                "object_key": "clients/c/u",
                "version_id": "v1",
                "thumbnail_key": "clients/c/u.thumb.jpg",
            }
        )
        assert logged is not None
        for url in (logged[1].download_url, logged[1].thumbnail_url):
            assert str(url).startswith(endpoint + "clients/c/u"), url
            assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in str(url), url
            assert "AWSAccessKeyId" not in str(url)
        assert "versionId=v1" in str(logged[1].download_url)
    finally:
        for cached in ("s3_client", "_s3"):
            if hasattr(getattr(uploads_repo, cached, None), "cache_clear"):
                getattr(uploads_repo, cached).cache_clear()


def test_links_name_the_confirmed_version(invoke: Callable[..., dict[str, Any]], aws: Template) -> None:
    """A second object POSTed to a confirmed key (a reused grant) is never what the file's links serve."""
    client_id = _seed("ana")
    s3 = boto3.client("s3")
    upload_id, key, version = _confirmed(invoke, client_id, _image("JPEG", (64, 64)))
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\xff\xd8\xffnot the confirmed photo", ContentType="image/jpeg")
    (item,) = invoke("GET", f"/clients/{client_id}/uploads", "ana")["json"]["items"]
    assert f"versionId={version}" in item["download_url"]
    thumb_version = repository.get_upload(client_id, upload_id).thumbnail_version_id  # type: ignore[union-attr]
    assert thumb_version
    assert f"versionId={thumb_version}" in item["thumbnail_url"]


def test_deleting_a_file_deletes_every_version_of_it_and_its_thumbnail(
    invoke: Callable[..., dict[str, Any]], aws: Template
) -> None:
    """In a versioned bucket a delete without a version id only adds a delete marker and keeps every version
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeletingObjectVersions.html): deleting a file for good
    deletes each version (and marker) of the object and of its thumbnail."""
    client_id = _seed("ana")
    s3 = boto3.client("s3")
    upload_id, key, _ = _confirmed(invoke, client_id, _image("JPEG", (64, 64)))
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"a later version", ContentType="image/jpeg")
    assert len(_versions(s3, key)) == 3  # two of the photo, one of the thumbnail
    assert invoke("DELETE", f"/clients/{client_id}/uploads/{upload_id}", "ana")["statusCode"] == 204
    assert _versions(s3, key) == []
    assert _used(client_id) == 0


def test_a_delete_s3_refuses_in_part_is_not_reported_done(
    invoke: Callable[..., dict[str, Any]], aws: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DeleteObjects answers 200 and lists the keys it could not delete in Errors
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html): they are retried, and when S3 keeps
    one the DELETE answers 503 delete_incomplete and the file stays listed, its slot held."""
    from salon.data import uploads_repo

    client_id = _seed("ana")
    s3 = boto3.client("s3")
    upload_id, key, version = _confirmed(invoke, client_id, _image("JPEG", (64, 64)))
    real = boto3.client("s3")
    calls: list[int] = []

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def delete_objects(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(len(kwargs["Delete"]["Objects"]))
            kept = [o for o in kwargs["Delete"]["Objects"] if o["Key"] == key]
            others = [o for o in kwargs["Delete"]["Objects"] if o["Key"] != key]
            if others:
                real.delete_objects(Bucket=kwargs["Bucket"], Delete={"Objects": others, "Quiet": True})
            errors = [{**o, "Code": "InternalError", "Message": "We encountered an internal error."} for o in kept]
            return {"Errors": errors} if errors else {}

    monkeypatch.setattr(uploads_repo, "_s3", Refusing)
    deleted = invoke("DELETE", f"/clients/{client_id}/uploads/{upload_id}", "ana")
    assert deleted["statusCode"] == 503, deleted
    assert deleted["json"]["error"]["code"] == "delete_incomplete"
    assert {k.lower(): v for k, v in (deleted.get("headers") or {}).items()}.get("retry-after")
    assert len(calls) >= 2  # the failed key was tried again
    assert (key, version) in _versions(s3, key)
    listed = invoke("GET", f"/clients/{client_id}/uploads", "ana")["json"]["items"]
    assert [f["upload_id"] for f in listed] == [upload_id]
    assert _used(client_id) == 1

    monkeypatch.setattr(uploads_repo, "_s3", lambda: real)
    assert invoke("DELETE", f"/clients/{client_id}/uploads/{upload_id}", "ana")["statusCode"] == 204
    assert _versions(s3, key) == []


def test_the_cascade_deletes_every_version_and_checks_errors(aws: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client's deletion removes every version and delete marker of its files, moved ones included; an error
    S3 reports for a key fails the cascade (its job chunk is retried) instead of passing for done."""
    from salon.data import uploads_repo

    client_id = str(ULID())
    s3 = boto3.client("s3")
    key = f"clients/{client_id}/{ULID()}"
    for body in (b"one", b"two"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    s3.delete_object(Bucket=BUCKET, Key=key)  # a delete marker over both
    real = boto3.client("s3")

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def delete_objects(self, **kwargs: Any) -> dict[str, Any]:
            return {
                "Errors": [
                    {**o, "Code": "AccessDenied", "Message": "Access Denied"} for o in kwargs["Delete"]["Objects"]
                ]
            }

    monkeypatch.setattr(uploads_repo, "_s3", Refusing)
    with pytest.raises(uploads_repo.DeleteIncomplete):
        uploads.delete_client_files(client_id)
    monkeypatch.setattr(uploads_repo, "_s3", lambda: real)
    assert uploads.delete_client_files(client_id) == 1
    assert _versions(s3, f"clients/{client_id}/") == []
