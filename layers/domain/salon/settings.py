"""The one settings model. Nothing else in business code reads ``os.environ``."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Every setting a function reads, with its environment variable and default.

    The README's configuration table is generated from this model's fields
    (``make docs-config``), so the two cannot drift apart.
    """

    # A plain model filled from the environment by ``get_settings`` (each field from the variable of its
    # name, any case): pydantic-settings would add ~90 ms of imports to every cold start.
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field("studio-records", description="The single DynamoDB table.")
    idempotency_table_name: str = Field(
        "studio-idempotency",
        description="Idempotency records of POST requests; a table of its own, without a stream.",
    )
    uploads_bucket: str = Field("studio-uploads", description="Private bucket of client files and thumbnails.")
    jobs_queue_url: str = Field("", description="SQS queue of long jobs (imports, departures, cascades).")
    stream_failure_queue_url: str = Field(
        "", description="SQS queue where the stream consumer parks records it cannot apply."
    )
    default_country: str = Field("US", description="Region for phone numbers of solo pros' books.")
    max_upload_bytes: int = Field(10 * 1024 * 1024, description="Largest file a pro may upload.")
    max_files_per_client: int = Field(20, description="Files (confirmed or pending) per client.")
    upload_url_ttl_seconds: int = Field(600, le=600, description="Lifetime of a presigned POST.")
    download_url_ttl_seconds: int = Field(300, le=300, description="Lifetime of a presigned GET.")
    upload_grace_seconds: int = Field(
        300, ge=0, description="How long a pending upload keeps its slot after its POST expires (late S3 events)."
    )
    thumbnail_px: int = Field(320, ge=32, le=2048, description="Longest side of an image's JPEG thumbnail.")
    max_body_bytes: int = Field(64 * 1024, description="Largest request body the API accepts.")
    feed_retention_days: int = Field(30, description="How long tombstones and change-feed cursors stay valid.")
    feed_safety_window_seconds: int = Field(
        120, description="How far behind its cursor the change feed re-reads, for writes that commit late."
    )
    idempotency_ttl_seconds: int = Field(24 * 3600, description="How long a POST's Idempotency-Key is remembered.")
    fanout_batch_size: int = Field(25, description="Views written per BatchWriteItem call.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    environ = {name.lower(): value for name, value in os.environ.items()}
    return Settings(**{name: environ[name] for name in Settings.model_fields if name in environ})
