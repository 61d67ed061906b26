"""Shared test set-up. The environment is fixed before any domain module is imported,
exactly as the template sets it for the functions (local physical names)."""

from __future__ import annotations

import os

os.environ.update(
    {
        "TABLE_NAME": "studio-local-RecordsTable",
        "IDEMPOTENCY_TABLE_NAME": "studio-local-IdempotencyTable",
        "UPLOADS_BUCKET": "studio-local-uploads-123456789012",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
