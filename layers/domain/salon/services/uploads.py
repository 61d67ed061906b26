"""Files and photos of a client: presigned uploads, the 20-file limit, confirmation by S3 events.

The limit (SPEC.md "Files and photos") is held by one counter per client
(``CLIENT#<cid>`` / ``QUOTA``). A request takes a slot with ONE conditional
``UpdateItem`` (``ADD used :1`` if ``used < limit``), then writes its
reservation; if that second write fails the slot is given back. There is no
read of the counter on the way and no transaction, so concurrent requests are
serialised by DynamoDB on the one item and exactly ``limit`` of them win.

A reservation holds its slot while pending, until the presigned POST's expiry
plus a grace period for late S3 events (``lapses_at``). Lapsed reservations are
released when a request finds the counter full: each is deleted with a
condition (still pending, lapsed) and only the delete that succeeded gives its
slot back, so two requests can never release one reservation twice. TTL
deletion is never relied on (it would delete the item without the slot).

The S3 ObjectCreated event confirms an upload (pending -> confirmed, once) or
deletes the object and frees the slot. Pillow is imported only on that path.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from salon import clock, metrics
from salon.data import keys
from salon.data.models import Upload
from salon.data.uploads_repo import (
    CONFIRMED,
    PENDING,
    DeleteIncomplete,
    FileStore,
    UploadsRepository,
    client_prefix,
    file_store,
    object_key,
    repository,
    thumbnail_key,
)
from salon.errors import Conflict, Forbidden, NotFound, ServiceUnavailable
from salon.identity import Caller
from salon.ids import ULID_PATTERN, new_id
from salon.schemas.uploads import IMAGE_TYPES, FileList, StoredFile, UploadGrant, UploadRequest
from salon.services.access import client_access
from salon.settings import get_settings

logger = Logger(child=True)

PREMIUM = "premium"
_ULID = ULID_PATTERN.strip("^$")
_OBJECT_KEY_RE = re.compile(rf"^clients/(?P<cid>{_ULID})/(?P<uid>{_ULID})(?P<thumb>\.thumb\.jpg)?$")
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/heic": "HEIF"}
SNIFF_BYTES = 64
MAX_IMAGE_PIXELS = 80_000_000  # a 48 MP phone photo passes; a decompression bomb does not


# ----------------------------------------------------------------- HTTP side


def request_upload(
    caller: Caller,
    client_id: str,
    data: UploadRequest,
    repo: UploadsRepository = repository,
    store: FileStore = file_store,
) -> UploadGrant:
    """Reserve a slot and answer a presigned POST for exactly this key, type and size.

    DynamoDB calls after the access read: the slot (one conditional UpdateItem) and the reservation
    (one PutItem). Only a full counter costs more: a Query for lapsed reservations, their release,
    and one more try.
    """
    access = client_access(caller, client_id)
    access.require(access.can_manage_files, "Your role may not upload files for this client.")
    if access.book.plan != PREMIUM:
        raise Forbidden("Files and photos need the premium plan.", code="plan_required")
    settings = get_settings()
    cid = access.client_id  # the surviving client when the path named a merged one
    limit = settings.max_files_per_client
    if not repo.reserve_slot(cid, limit) and not (release_lapsed(cid, repo) and repo.reserve_slot(cid, limit)):
        raise Conflict(
            f"This client already has {limit} files; delete one first.",
            code="file_limit_reached",
            details={"limit": limit},
        )
    now = clock.now()
    expires = now + dt.timedelta(seconds=settings.upload_url_ttl_seconds)
    upload_id = new_id()
    upload = _new_upload(
        cid,
        upload_id,
        content_type=data.content_type,
        size=data.size,
        filename=data.filename,
        profile=data.profile,
        uploaded_by=caller.pro_id,
        lapses_at=int(expires.timestamp()) + settings.upload_grace_seconds,
    )
    try:
        repo.put_reservation(upload)
    except Exception:
        repo.release_slot(cid)
        raise
    post = store.presign_post(upload.object_key, data.content_type, data.size, settings.upload_url_ttl_seconds)
    return UploadGrant(
        upload_id=upload_id,
        url=post["url"],
        fields={str(k): str(v) for k, v in post["fields"].items()},
        expires_at=expires.replace(microsecond=0),
    )


def list_files(
    caller: Caller, client_id: str, repo: UploadsRepository = repository, store: FileStore = file_store
) -> FileList:
    """Confirmed files with presigned GETs; readable on any plan. One Query after the access read."""
    access = client_access(caller, client_id)
    uploads = [u for u in repo.list_uploads(access.client_id) if u.status == CONFIRMED]
    profile = profile_photo_of(uploads)
    ttl = get_settings().download_url_ttl_seconds
    expires = (clock.now() + dt.timedelta(seconds=ttl)).replace(microsecond=0)
    items = [
        to_stored_file(u, store, profile=u is profile, expires_at=expires)
        for u in sorted(uploads, key=_confirmed_order, reverse=True)
    ]
    return FileList(items=items)


def delete_file(
    caller: Caller,
    client_id: str,
    upload_id: str,
    repo: UploadsRepository = repository,
    store: FileStore = file_store,
) -> None:
    """Delete the file for good: its item, then every S3 version of its object and thumbnail; then its slot.

    The item is taken first (one DeleteItem returning it: a merged file's object key is only named
    there), so a late S3 event for the key finds no reservation and deletes what arrives. If S3 keeps
    a version (DeleteObjects' per-key errors, after retries) the item is put back and the call fails:
    the file stays listed and the app can try again; it is never reported deleted while an object
    stayed. A pending upload can be cancelled the same way.
    """
    access = client_access(caller, client_id)
    access.require(access.can_manage_files, "Your role may not delete files of this client.")
    upload = repo.delete_upload(access.client_id, upload_id)
    if upload is None:
        raise NotFound("No such file.", code="upload_not_found")
    try:
        store.delete_keys([upload.object_key, upload.thumbnail_key or thumbnail_key_of(upload)])
    except DeleteIncomplete as exc:
        repo.restore_upload(upload)
        logger.warning("file not deleted: S3 kept versions", extra={"key": upload.object_key, "error": str(exc)})
        raise ServiceUnavailable(
            "The file could not be deleted completely; it is still listed. Try again.", code="delete_incomplete"
        ) from exc
    except Exception:
        repo.restore_upload(upload)
        raise
    repo.release_slot(access.client_id)


def thumbnail_key_of(upload: Upload) -> str:
    """Where a thumbnail of this file is (or would be) written: beside its object."""
    return f"{upload.object_key}.thumb.jpg"


def to_stored_file(upload: Upload, store: FileStore, *, profile: bool, expires_at: dt.datetime) -> StoredFile:
    ttl = get_settings().download_url_ttl_seconds
    return StoredFile(
        upload_id=upload.upload_id,
        content_type=upload.content_type,
        size=int(upload.size),
        filename=upload.filename,
        profile=profile,
        uploaded_by=upload.uploaded_by,
        uploaded_at=dt.datetime.fromisoformat(upload.confirmed_at or upload.created_at),
        download_url=store.presign_get(upload.object_key, ttl, upload.version_id),
        thumbnail_url=(
            store.presign_get(upload.thumbnail_key, ttl, upload.thumbnail_version_id) if upload.thumbnail_key else None
        ),
        urls_expire_at=expires_at,
    )


def _confirmed_order(upload: Upload) -> tuple[str, str]:
    return (upload.confirmed_at or "", upload.upload_id)


def profile_photo_of(items: Iterable[Any]) -> Upload | None:
    """The client's profile photo among the items of its collection (e.g. the Client Log's one Query).

    It is the confirmed upload with ``profile`` set that was confirmed last. Confirming a new profile
    photo clears the flag on older ones, but readers never depend on that clean-up having run.
    """
    flagged = [i for i in items if isinstance(i, Upload) and i.status == CONFIRMED and i.profile]
    return max(flagged, key=_confirmed_order, default=None)


def profile_photo(client_id: str, repo: UploadsRepository = repository) -> Upload | None:
    """The profile photo of a client (one Query), for callers without the collection at hand."""
    return profile_photo_of(repo.list_uploads(client_id))


# --------------------------------------------------------- the slot counter


def release_lapsed(client_id: str, repo: UploadsRepository = repository, now: int | None = None) -> int:
    """Free the slots of reservations whose time ran out; returns how many were freed.

    Each reservation is deleted with a condition (still pending, lapsed), and only a delete that
    took the item gives a slot back, so concurrent releases never free one slot twice.
    """
    now = int(clock.epoch_s()) if now is None else now
    freed = 0
    for upload in repo.list_uploads(client_id):
        if upload.status != PENDING or upload.lapses_at is None or int(upload.lapses_at) >= now:
            continue
        if repo.delete_pending(client_id, upload.upload_id, lapsed_before=now):
            repo.release_slot(client_id)
            freed += 1
    return freed


def _new_upload(
    client_id: str,
    upload_id: str,
    *,
    content_type: str,
    size: int,
    filename: str | None,
    profile: bool,
    uploaded_by: str,
    lapses_at: int,
    system: bool = False,
) -> Upload:
    upload = Upload(keys.client_pk(client_id), keys.upload_sk(upload_id))
    upload.upload_id = upload_id
    upload.client_id = client_id
    upload.status = PENDING
    upload.content_type = content_type
    upload.size = size
    upload.filename = filename
    upload.profile = profile
    upload.object_key = object_key(client_id, upload_id)
    upload.uploaded_by = uploaded_by
    upload.system = system
    upload.created_at = clock.now_iso()
    upload.lapses_at = lapses_at
    return upload


# ---------------------------------------------------- the system's own files


@dataclass(frozen=True)
class SystemCopy:
    upload_id: str
    object_key: str


def register_system_copy(
    client_id: str,
    *,
    content_type: str,
    size: int,
    uploaded_by: str,
    filename: str | None = None,
    profile: bool = False,
    upload_id: str | None = None,
    repo: UploadsRepository = repository,
) -> SystemCopy:
    """Register a file the system is about to write (a departure's copy) so its S3 event confirms it.

    Takes a slot without the limit (like a merge, a copy never fails on it). Idempotent for a given
    ``upload_id``: a retried job chunk registers once and counts once. Write the object to the
    returned key before the reservation lapses (the POST lifetime plus the grace period).
    """
    settings = get_settings()
    upload_id = upload_id or new_id()
    lapses_at = int(clock.epoch_s()) + settings.upload_url_ttl_seconds + settings.upload_grace_seconds
    upload = _new_upload(
        client_id,
        upload_id,
        content_type=content_type,
        size=size,
        filename=filename,
        profile=profile,
        uploaded_by=uploaded_by,
        lapses_at=lapses_at,
        system=True,
    )
    repo.register_system_upload(upload)
    return SystemCopy(upload_id=upload_id, object_key=upload.object_key)


def copy_file(
    source: Upload,
    to_client_id: str,
    *,
    uploaded_by: str | None = None,
    repo: UploadsRepository = repository,
    store: FileStore = file_store,
) -> SystemCopy:
    """Copy a confirmed file to another client: register, then copy the object (the event confirms it).

    The copy keeps the source's upload id, so a retried copy is the same file.
    """
    copy = register_system_copy(
        to_client_id,
        content_type=source.content_type,
        size=int(source.size),
        uploaded_by=uploaded_by or source.uploaded_by,
        filename=source.filename,
        profile=bool(source.profile),
        upload_id=source.upload_id,
        repo=repo,
    )
    store.copy(source.object_key, copy.object_key, source.version_id)  # the confirmed version, not a later one
    return copy


def delete_client_files(client_id: str, repo: UploadsRepository = repository, store: FileStore = file_store) -> int:
    """Delete for good every object and thumbnail of a client, every version (the cascade of a client's deletion).

    Call it before the client's items are deleted: files moved in by a merge keep their original
    keys, which only their items name. Items are left to the caller's cascade. Returns the number of
    objects deleted. Raises ``DeleteIncomplete`` when S3 kept a version (the job chunk is retried).
    """
    named: set[str] = set()
    for upload in repo.list_uploads(client_id):
        named.add(upload.object_key)
        named.add(upload.thumbnail_key or thumbnail_key_of(upload))
    prefix = client_prefix(client_id)
    outside = sorted(k for k in named if not k.startswith(prefix))
    return store.delete_prefix(prefix) + (store.delete_keys(outside) if outside else 0)


# ------------------------------------------------------ S3 ObjectCreated side


def handle_s3_event(event: dict[str, Any], repo: UploadsRepository = repository, store: FileStore = file_store) -> None:
    """Confirm or reject each created object. Every step is idempotent, so a failed event is retried whole."""
    failures = 0
    for record in event.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        obj = (record.get("s3") or {}).get("object") or {}
        key = unquote_plus(str(obj.get("key", "")))
        try:
            outcome = on_object_created(key, obj.get("versionId"), repo, store)
            logger.info("object created", extra={"key": key, "outcome": outcome})
            if outcome == "confirmed":
                metrics.count(metrics.UPLOADS_CONFIRMED)
            elif outcome.startswith("rejected"):
                metrics.count(metrics.UPLOADS_REJECTED)
        except Exception:
            logger.exception("could not process object", extra={"key": key})
            failures += 1
    if failures:
        raise RuntimeError(f"{failures} object(s) not processed; the event will be retried")


def on_object_created(
    key: str, version_id: str | None, repo: UploadsRepository = repository, store: FileStore = file_store
) -> str:
    """Decide one object's fate; returns what happened (for logs and tests)."""
    match = _OBJECT_KEY_RE.match(key)
    if match is None:
        store.delete(key, version_id)
        return "rejected: not a key the API hands out"
    upload = repo.get_upload(match["cid"], match["uid"]) or _merged_upload(match["cid"], match["uid"], repo)
    if match["thumb"]:
        # Thumbnails are written by this function after confirming; keep them while their file exists.
        if upload is None:
            store.delete(key, version_id)
            return "rejected: thumbnail of no file"
        return "ignored: thumbnail"
    if upload is None:
        store.delete(key, version_id)
        return "rejected: no reservation"
    if upload.status == CONFIRMED:
        return _already_confirmed(upload, key, version_id, repo, store)
    return _confirm_pending(upload, key, version_id, repo, store)


def _merged_upload(client_id: str, upload_id: str, repo: UploadsRepository) -> Upload | None:
    """A file of a client merged into another on join: its record moved under the survivor while its
    object kept its key, so a late or repeated event must find it there, not delete the object."""
    from salon.data.models import ClientAlias, TableItem

    try:
        # Consistent: the merge wrote the alias a moment ago; a lagging read would miss it and delete the object.
        alias = TableItem.get(keys.client_pk(client_id), keys.ALIAS, consistent_read=True)
    except TableItem.DoesNotExist:
        return None
    return repo.get_upload(alias.client_id, upload_id) if isinstance(alias, ClientAlias) else None


@dataclass
class _Inspection:
    version_id: str | None
    problem: str | None = None
    gone: bool = False
    thumbnail: bytes | None = None


def _inspect(upload: Upload, key: str, version_id: str | None, store: FileStore) -> _Inspection:  # noqa: PLR0911 - one guard per check
    """Check an object against its reservation: size and type (HeadObject), magic bytes, and that an
    image decodes (its thumbnail is made on the way)."""
    if upload.lapses_at is not None and int(upload.lapses_at) < int(clock.epoch_s()):
        return _Inspection(version_id, "reservation lapsed")
    head = store.head(key, version_id)
    if head is None:
        return _Inspection(version_id, gone=True)
    version_id = version_id or head.version_id
    if head.size != int(upload.size) or head.content_type != upload.content_type:
        return _Inspection(version_id, "size or type differs from the reservation")
    is_image = upload.content_type in IMAGE_TYPES
    data = store.read(key, version_id, None if is_image else SNIFF_BYTES)
    if data is None:
        return _Inspection(version_id, gone=True)
    if sniff(data[:SNIFF_BYTES]) != upload.content_type:
        return _Inspection(version_id, "content does not match the declared type")
    if not is_image:
        return _Inspection(version_id)
    try:
        return _Inspection(version_id, thumbnail=make_thumbnail(data, upload.content_type, get_settings().thumbnail_px))
    except Exception as exc:  # any decoder failure means the image is not what it claims
        logger.info("image does not decode", extra={"key": key, "error": type(exc).__name__})
        return _Inspection(version_id, "corrupt image")


def _confirm_pending(
    upload: Upload, key: str, version_id: str | None, repo: UploadsRepository, store: FileStore
) -> str:
    found = _inspect(upload, key, version_id, store)
    if found.gone:
        return "ignored: object already gone"
    if found.problem:
        return _reject(upload, key, found.version_id, repo, store, found.problem)
    if not repo.confirm(upload.client_id, upload.upload_id, found.version_id, clock.now_iso()):
        again = repo.get_upload(upload.client_id, upload.upload_id)
        if again is not None and again.status == CONFIRMED and again.version_id == found.version_id:
            return "ignored: duplicate event"
        store.delete(key, found.version_id)
        return "rejected: reservation gone or another version confirmed"
    repo.add_history(upload.client_id, upload.uploaded_by)  # a retried event repeats it (_already_confirmed)
    if found.thumbnail is not None:
        _store_thumbnail(upload, found.version_id, found.thumbnail, repo, store)
    if upload.profile:
        _move_profile_flag(upload.client_id, upload.upload_id, repo)
    return "confirmed"


def _already_confirmed(
    upload: Upload, key: str, version_id: str | None, repo: UploadsRepository, store: FileStore
) -> str:
    if version_id is None:
        head = store.head(key)
        version_id = head.version_id if head else None
    if version_id is not None and upload.version_id is not None and version_id != upload.version_id:
        store.delete(key, version_id)
        return "rejected: later version of a confirmed file"
    repo.add_history(upload.client_id, upload.uploaded_by)
    if upload.content_type in IMAGE_TYPES and not upload.thumbnail_key:
        # The first delivery confirmed it but stopped before the thumbnail: finish the job.
        data = store.read(key, upload.version_id)
        if data is not None:
            thumb = make_thumbnail(data, upload.content_type, get_settings().thumbnail_px)
            _store_thumbnail(upload, upload.version_id, thumb, repo, store)
            return "repaired: thumbnail"
    return "ignored: duplicate event"


def _store_thumbnail(
    upload: Upload, version_id: str | None, thumb: bytes, repo: UploadsRepository, store: FileStore
) -> None:
    key = thumbnail_key(upload.client_id, upload.upload_id)
    thumb_version = store.put(key, thumb, "image/jpeg")
    repo.set_thumbnail(upload.client_id, upload.upload_id, version_id, key, thumb_version)


def _move_profile_flag(client_id: str, upload_id: str, repo: UploadsRepository) -> None:
    """The new profile photo keeps the flag; older flagged files lose it."""
    uploads = repo.list_uploads(client_id)
    mine = next((u for u in uploads if u.upload_id == upload_id), None)
    if mine is None:
        return
    for other in uploads:
        if (
            other.upload_id != upload_id
            and other.profile
            and other.status == CONFIRMED
            and _confirmed_order(other) < _confirmed_order(mine)
        ):
            repo.clear_profile(client_id, other.upload_id)


def _reject(
    upload: Upload, key: str, version_id: str | None, repo: UploadsRepository, store: FileStore, reason: str
) -> str:
    """Free the slot first (only if this call took the reservation), then delete the object version.

    In that order a retry after a crash finds no reservation and still deletes the object.
    """
    if repo.delete_pending(upload.client_id, upload.upload_id):
        repo.release_slot(upload.client_id)
    store.delete(key, version_id)
    return f"rejected: {reason}"


def sniff(head: bytes) -> str | None:
    """The allowed type the first bytes announce (magic numbers), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp":
        box = int.from_bytes(head[:4], "big")
        brands = [head[8:12]] + [head[i : i + 4] for i in range(16, min(box, len(head)) - 3, 4)]
        if any(b in _HEIC_BRANDS for b in brands):
            return "image/heic"
    return None


def make_thumbnail(data: bytes, content_type: str, max_px: int) -> bytes:
    """A JPEG of at most ``max_px`` on its longest side; raises when the image does not decode."""
    from PIL import Image, ImageOps

    if content_type == "image/heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[content_type]]) as opened:
        opened.draft("RGB", (max_px * 2, max_px * 2))  # JPEG decodes at a reduced scale; others ignore it
        image = ImageOps.exif_transpose(opened) or opened
        image.thumbnail((max_px, max_px))
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image, mask=image.getchannel("A"))
            image = background
        elif image.mode != "RGB":
            image = image.convert("RGB")
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80, optimize=True)
    return out.getvalue()
