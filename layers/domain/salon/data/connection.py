"""The low-level pynamodb connection the models already hold, shared for transactions."""

from __future__ import annotations

from pynamodb.connection import Connection

from salon.data.models import TableItem


def table_connection() -> Connection:
    """The models' own connection (one botocore client per process)."""
    return TableItem._get_connection().connection
