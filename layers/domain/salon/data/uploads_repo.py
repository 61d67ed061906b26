"""Client files: the slot counter, reservations and confirmed files in the table; objects in S3.

The counter (``CLIENT#<cid>`` / ``QUOTA``) is only ever changed by single
``UpdateItem`` calls with ``ADD``: a conditional one reserves a slot, an
unconditional one gives a slot back. Nothing here reads the counter in order
to write it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from botocore.exceptions import ClientError

from salon.data import keys
from salon.data.connection import table_connection
from salon.data.models import TableItem, Upload
from salon.data.tx import ConditionFailed, key, update_item
from salon.settings import get_settings

PENDING = "pending"
CONFIRMED = "confirmed"


def object_key(client_id: str, upload_id: str) -> str:
    """Where the app's presigned POST writes a file (exactly this key)."""
    return f"clients/{client_id}/{upload_id}"


def thumbnail_key(client_id: str, upload_id: str) -> str:
    """The JPEG thumbnail beside an image."""
    return f"{object_key(client_id, upload_id)}.thumb.jpg"


def client_prefix(client_id: str) -> str:
    return f"clients/{client_id}/"


def _conditional_failed(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class UploadsRepository(Protocol):
    def reserve_slot(self, client_id: str, limit: int) -> bool: ...

    def release_slot(self, client_id: str) -> None: ...

    def put_reservation(self, upload: Upload) -> None: ...

    def register_system_upload(self, upload: Upload) -> bool: ...

    def get_upload(self, client_id: str, upload_id: str) -> Upload | None: ...

    def list_uploads(self, client_id: str) -> list[Upload]: ...

    def confirm(self, client_id: str, upload_id: str, version_id: str | None, confirmed_at: str) -> bool: ...

    def set_thumbnail(
        self, client_id: str, upload_id: str, version_id: str | None, key: str, thumbnail_version_id: str | None = None
    ) -> None: ...

    def clear_profile(self, client_id: str, upload_id: str) -> None: ...

    def delete_pending(self, client_id: str, upload_id: str, lapsed_before: int | None = None) -> bool: ...

    def delete_upload(self, client_id: str, upload_id: str) -> Upload | None: ...

    def restore_upload(self, upload: Upload) -> None: ...

    def add_history(self, client_id: str, pro_id: str) -> None: ...


class DynamoUploadsRepository:
    """The real repository, over the single table (low-level calls where pynamodb cannot say it)."""

    @property
    def _client(self) -> Any:
        return table_connection().client

    @property
    def _table(self) -> str:
        return str(TableItem.Meta.table_name)

    def reserve_slot(self, client_id: str, limit: int) -> bool:
        """One conditional ``UpdateItem``: take a slot if fewer than ``limit`` are used. Atomic by itself."""
        try:
            update_item(
                keys.client_pk(client_id),
                keys.QUOTA,
                "SET #kind = :kind ADD used :one",
                values={":kind": {"S": "quota"}, ":one": {"N": "1"}, ":limit": {"N": str(limit)}},
                condition="attribute_not_exists(used) OR used < :limit",
                names={"#kind": "kind"},
            )
        except ConditionFailed:
            return False
        return True

    def release_slot(self, client_id: str) -> None:
        """Give one slot back (``ADD used -1``), never below zero."""
        with contextlib.suppress(ConditionFailed):
            update_item(
                keys.client_pk(client_id),
                keys.QUOTA,
                "ADD used :minus",
                values={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
                condition="used > :zero",
            )

    def put_reservation(self, upload: Upload) -> None:
        upload.save(condition=Upload.pk.does_not_exist())

    def register_system_upload(self, upload: Upload) -> bool:
        """The reservation and its slot in one transaction, without the limit; False if already registered.

        Used for the system's own copies (a departure's), which are not app requests under contention,
        and which must be idempotent when a job chunk is retried.
        """
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": upload.serialize(),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": key(keys.client_pk(upload.client_id), keys.QUOTA),
                            "UpdateExpression": "SET #kind = :kind ADD used :one",
                            "ExpressionAttributeNames": {"#kind": "kind"},
                            "ExpressionAttributeValues": {":kind": {"S": "quota"}, ":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons") or []
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return False
            raise
        return True

    def add_history(self, client_id: str, pro_id: str) -> None:
        """The uploader in the profile's ``history_pros`` (a departure reads who has work on a client there)."""
        with contextlib.suppress(ConditionFailed):
            update_item(
                keys.client_pk(client_id),
                keys.PROFILE,
                "ADD history_pros :p",
                values={":p": {"SS": [pro_id]}},
                condition="attribute_exists(pk)",
            )

    def get_upload(self, client_id: str, upload_id: str) -> Upload | None:
        try:
            item = TableItem.get(keys.client_pk(client_id), keys.upload_sk(upload_id), consistent_read=True)
        except TableItem.DoesNotExist:
            return None
        return item if isinstance(item, Upload) else None

    def list_uploads(self, client_id: str) -> list[Upload]:
        """Every upload item of the client (pending and confirmed): one Query of its collection."""
        return [
            item
            for item in TableItem.query(
                keys.client_pk(client_id), TableItem.sk.startswith(keys.UPLOAD_PREFIX), consistent_read=True
            )
            if isinstance(item, Upload)
        ]

    def confirm(self, client_id: str, upload_id: str, version_id: str | None, confirmed_at: str) -> bool:
        """pending -> confirmed, once: a duplicate or late event finds the condition false."""
        values: dict[str, Any] = {
            ":pending": {"S": PENDING},
            ":confirmed": {"S": CONFIRMED},
            ":at": {"S": confirmed_at},
        }
        update = "SET #status = :confirmed, confirmed_at = :at"
        if version_id:
            update += ", version_id = :v"
            values[":v"] = {"S": version_id}
        try:
            update_item(
                keys.client_pk(client_id),
                keys.upload_sk(upload_id),
                update + " REMOVE lapses_at",
                values=values,
                condition="#status = :pending",
                names={"#status": "status"},
            )
        except ConditionFailed:
            return False
        return True

    def set_thumbnail(
        self, client_id: str, upload_id: str, version_id: str | None, key: str, thumbnail_version_id: str | None = None
    ) -> None:
        """Record the thumbnail (and its S3 version, which its links name) of the confirmed version
        (no-op if the file was deleted meanwhile)."""
        condition = "#status = :confirmed"
        values: dict[str, Any] = {":confirmed": {"S": CONFIRMED}, ":k": {"S": key}}
        update = "SET thumbnail_key = :k"
        if version_id:
            condition += " AND version_id = :v"
            values[":v"] = {"S": version_id}
        if thumbnail_version_id:
            update += ", thumbnail_version_id = :tv"
            values[":tv"] = {"S": thumbnail_version_id}
        with contextlib.suppress(ConditionFailed):
            update_item(
                keys.client_pk(client_id),
                keys.upload_sk(upload_id),
                update,
                values=values,
                condition=condition,
                names={"#status": "status"},
            )

    def clear_profile(self, client_id: str, upload_id: str) -> None:
        with contextlib.suppress(ConditionFailed):
            update_item(
                keys.client_pk(client_id),
                keys.upload_sk(upload_id),
                "SET profile = :no",
                values={":no": {"BOOL": False}},
                condition="attribute_exists(pk)",
            )

    def delete_pending(self, client_id: str, upload_id: str, lapsed_before: int | None = None) -> bool:
        """Delete a reservation that is still pending (and lapsed before ``lapsed_before``, if given).

        True only for the one caller whose delete took the item, so only that caller gives its slot back.
        """
        condition = "#status = :pending"
        values: dict[str, Any] = {":pending": {"S": PENDING}}
        if lapsed_before is not None:
            condition += " AND lapses_at < :now"
            values[":now"] = {"N": str(lapsed_before)}
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=key(keys.client_pk(client_id), keys.upload_sk(upload_id)),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def delete_upload(self, client_id: str, upload_id: str) -> Upload | None:
        """Delete a file's item whatever its state; the deleted item, or None if there was none."""
        try:
            resp = self._client.delete_item(
                TableName=self._table,
                Key=key(keys.client_pk(client_id), keys.upload_sk(upload_id)),
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        item = TableItem.from_raw_data(resp.get("Attributes") or {})
        return item if isinstance(item, Upload) else None

    def restore_upload(self, upload: Upload) -> None:
        """Put back a file's item that ``delete_upload`` took (its objects could not all be deleted)."""
        from pynamodb.exceptions import PutError

        with contextlib.suppress(PutError):  # already back (a concurrent retry): nothing to do
            upload.save(condition=Upload.pk.does_not_exist())


@dataclass(frozen=True)
class ObjectHead:
    size: int
    content_type: str
    version_id: str | None


class DeleteIncomplete(RuntimeError):
    """S3 kept object versions a DeleteObjects call named (its per-key ``Errors``), after retries."""


class FileStore(Protocol):
    def presign_post(self, key: str, content_type: str, size: int, expires_in: int) -> dict[str, Any]: ...

    def presign_get(self, key: str, expires_in: int, version_id: str | None = None) -> str: ...

    def head(self, key: str, version_id: str | None = None) -> ObjectHead | None: ...

    def read(self, key: str, version_id: str | None = None, first_bytes: int | None = None) -> bytes | None: ...

    def put(self, key: str, body: bytes, content_type: str) -> str | None: ...

    def copy(self, source_key: str, key: str, source_version_id: str | None = None) -> None: ...

    def delete(self, key: str, version_id: str | None = None) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def delete_keys(self, object_keys: list[str]) -> int: ...


@lru_cache(maxsize=1)
def s3_client() -> Any:
    """The one S3 client of the domain layer, for calls and for presigned links.

    Links must work on a bucket created today: SigV4 only (S3 refuses SigV2 on buckets created after
    June 2020), signed for the function's region (``AWS_REGION``) and on the bucket's regional,
    virtual-hosted endpoint (``https://<bucket>.s3.<region>.amazonaws.com``). botocore's default is the
    global ``s3.amazonaws.com``, which answers a new bucket outside us-east-1 with redirects a
    browser's POST (CORS) does not follow. A custom endpoint (``AWS_ENDPOINT_URL``: the local stack's
    emulator on an IP address) gets path-style URLs on it.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        retries={"mode": "standard"},
        s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
    )
    return boto3.client("s3", config=config)


_s3 = s3_client
_DELETE_ATTEMPTS = 3


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code"))
    return code in {"404", "NoSuchKey", "NoSuchVersion", "NotFound", "400", "InvalidArgument"}


class S3FileStore:
    """The uploads bucket. Presigning is local computation: no call to S3."""

    @property
    def bucket(self) -> str:
        return get_settings().uploads_bucket

    def presign_post(self, key: str, content_type: str, size: int, expires_in: int) -> dict[str, Any]:
        """A POST policy for exactly this key, this Content-Type and exactly ``size`` bytes."""
        result: dict[str, Any] = _s3().generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", size, size]],
            ExpiresIn=expires_in,
        )
        return result

    def presign_get(self, key: str, expires_in: int, version_id: str | None = None) -> str:
        """A GET of exactly ``version_id`` when given (the confirmed version: a later POST to the key is never
        served in its place)."""
        params = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        return str(_s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))

    def head(self, key: str, version_id: str | None = None) -> ObjectHead | None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            resp = _s3().head_object(**params)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return ObjectHead(int(resp["ContentLength"]), str(resp.get("ContentType") or ""), resp.get("VersionId"))

    def read(self, key: str, version_id: str | None = None, first_bytes: int | None = None) -> bytes | None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        if first_bytes:
            params["Range"] = f"bytes=0-{first_bytes - 1}"
        try:
            resp = _s3().get_object(**params)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        body: bytes = resp["Body"].read()
        return body

    def put(self, key: str, body: bytes, content_type: str) -> str | None:
        """Write an object; its version id."""
        resp = _s3().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        version: str | None = resp.get("VersionId")
        return version

    def copy(self, source_key: str, key: str, source_version_id: str | None = None) -> None:
        source = {"Bucket": self.bucket, "Key": source_key}
        if source_version_id:
            source["VersionId"] = source_version_id
        _s3().copy_object(Bucket=self.bucket, Key=key, CopySource=source)

    def delete(self, key: str, version_id: str | None = None) -> None:
        """Delete one version (a rejected object), or the object (a delete marker; lifecycle expires the rest)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        _s3().delete_object(**params)

    def delete_keys(self, object_keys: list[str]) -> int:
        """Delete exactly these keys for good: every version and delete marker of each (the bucket is
        versioned, so a delete without a version id would only hide them). One ListObjectVersions per
        key that no other key of the list starts (a file and its ``.thumb.jpg`` cost one), then
        DeleteObjects by version. Returns how many of the keys had anything to delete."""
        wanted = set(object_keys)
        prefixes: list[str] = []
        for name in sorted(wanted):
            if not prefixes or not name.startswith(prefixes[-1]):
                prefixes.append(name)
        entries = [e for p in prefixes for e in self._versions(p) if e["Key"] in wanted]
        self._delete_versions(entries)
        return len({e["Key"] for e in entries})

    def delete_prefix(self, prefix: str) -> int:
        """Delete for good every version and delete marker under a prefix (files and thumbnails of one
        client); returns how many keys had any."""
        entries = self._versions(prefix)
        self._delete_versions(entries)
        return len({e["Key"] for e in entries})

    def _versions(self, prefix: str) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        for page in _s3().get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                found.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
        return found

    def _delete_versions(self, entries: list[dict[str, str]]) -> None:
        """DeleteObjects (quiet: S3 answers only what it failed to delete) in chunks of 1000; the versions
        S3 reports in ``Errors`` are tried again, and still failing raise ``DeleteIncomplete``: never a
        success while an object stayed."""
        import time

        for start in range(0, len(entries), 1000):
            left = entries[start : start + 1000]
            errors: list[dict[str, Any]] = []
            for attempt in range(_DELETE_ATTEMPTS):
                if attempt:
                    time.sleep(0.05 * 2**attempt)
                resp = _s3().delete_objects(Bucket=self.bucket, Delete={"Objects": left, "Quiet": True})
                errors = list(resp.get("Errors") or [])
                failed = {(e.get("Key"), e.get("VersionId")) for e in errors}
                left = [e for e in left if (e["Key"], e["VersionId"]) in failed or (e["Key"], None) in failed]
                if not left:
                    break
            if left:
                codes = sorted({str(e.get("Code")) for e in errors})
                raise DeleteIncomplete(
                    f"S3 kept {len(left)} object version(s) after {_DELETE_ATTEMPTS} DeleteObjects calls: {codes}"
                )


repository = DynamoUploadsRepository()
file_store = S3FileStore()
