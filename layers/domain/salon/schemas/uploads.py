"""Files and photos: asking for an upload, the presigned POST, and the stored files."""

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from salon.schemas.common import ApiModel
from salon.settings import get_settings

ContentType = Literal["image/jpeg", "image/png", "image/heic", "image/webp", "application/pdf"]
IMAGE_TYPES: frozenset[str] = frozenset({"image/jpeg", "image/png", "image/heic", "image/webp"})


def _at_most_max_upload(size: int) -> int:
    limit = get_settings().max_upload_bytes
    if size > limit:
        raise ValueError(f"At most {limit} bytes.")
    return size


FileSize = Annotated[int, Field(ge=1), AfterValidator(_at_most_max_upload)]
FileName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f\x7f]+$")]


class UploadRequest(ApiModel):
    content_type: ContentType = Field(description="The file's type; the upload must send exactly this Content-Type.")
    size: FileSize = Field(description="The file's exact size in bytes (at most 10 MiB by default).")
    filename: FileName | None = Field(None, description="The name the app shows; no slashes.")
    profile: bool = Field(False, description="Make this image the client's profile photo once it is confirmed.")

    @model_validator(mode="after")
    def _profile_is_an_image(self) -> Self:
        if self.profile and self.content_type not in IMAGE_TYPES:
            raise ValueError("A profile photo must be an image.")
        return self


class UploadGrant(ApiModel):
    upload_id: str
    url: str = Field(description="POST a multipart form here: every field of `fields`, then the file as `file`.")
    fields: dict[str, str] = Field(description="Form fields to send as they are (key, policy, signature...).")
    expires_at: dt.datetime = Field(description="After this S3 refuses the POST; ask for a new upload.")


class StoredFile(ApiModel):
    upload_id: str
    content_type: str
    size: int
    filename: str | None = None
    profile: bool = Field(False, description="True for the client's profile photo (one per client).")
    uploaded_by: str = Field(description="Pro id of the uploader.")
    uploaded_at: dt.datetime
    download_url: str = Field(description="Presigned GET, valid until `urls_expire_at` (at most 5 minutes).")
    thumbnail_url: str | None = Field(None, description="Presigned GET of a JPEG thumbnail; none for PDFs.")
    urls_expire_at: dt.datetime


class FileList(ApiModel):
    items: list[StoredFile] = Field(description="Confirmed files, newest first.")
