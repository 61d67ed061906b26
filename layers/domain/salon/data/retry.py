"""Single DynamoDB calls that meet a transaction or a throttle are tried again, with backoff and jitter.

On AWS a PutItem, UpdateItem or DeleteItem on an item inside an ongoing TransactWriteItems fails with
``TransactionConflictException``, which botocore's retries never retry; throttling errors
(``ProvisionedThroughputExceededException``, ``ThrottlingException``, ``RequestLimitExceeded``) botocore's
standard mode (pynamodb's client: 4 attempts) retries with a 1-second base, slow for an API. One handler on
the client's ``needs-retry`` event, consulted before botocore's own, retries both for every caller: pynamodb's
save/update/delete/get/query and raw client calls alike (D39). When the attempts run out the error surfaces and
``salon.data.tx.data_error`` names it: 409 ``write_conflict``, 503 ``throttled``.
"""

from __future__ import annotations

import random
from typing import Any

from salon.errors import Conflict, ServiceUnavailable

CONFLICT_CODES = frozenset({"TransactionConflictException"})
THROTTLE_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)
MAX_ATTEMPTS = 6  # the first try and five retries: at most ~1.5 s of sleep with the delays below
BASE_DELAY_S = 0.05
MAX_DELAY_S = 0.8


class WriteConflict(Conflict):
    """Every attempt met a concurrent transaction on one of the same items: nothing was written; the caller
    may retry. A 409 wherever it surfaces (services may word it for their route)."""

    code = "write_conflict"
    message = "Someone else is changing the same records right now; try again."
    retry_after = 1


class Throttled(ServiceUnavailable):
    """DynamoDB kept throttling (or leaving part of a batch unprocessed) through every retry: a 503 with
    ``Retry-After``; what was not written was not written, what was acknowledged before stands."""


def backoff(attempt: int) -> float:
    """Seconds to sleep before retry ``attempt`` (0-based): capped exponential, full jitter."""
    return random.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2**attempt))  # noqa: S311 - jitter, not crypto


def _needs_retry(response: Any = None, attempts: int = 1, **_: Any) -> float | None:
    """botocore's ``needs-retry`` hook: the delay before trying again, or ``None`` to leave the decision to
    botocore's own handler (which keeps retrying connection errors and 5xx answers)."""
    if response is None or attempts >= MAX_ATTEMPTS:
        return None
    code = (response[1].get("Error") or {}).get("Code")
    if code in CONFLICT_CODES or code in THROTTLE_CODES:
        return backoff(attempts - 1)
    return None


def install(client: Any) -> Any:
    """Put the retry hook on a DynamoDB client, once; returns the client."""
    if not getattr(client, "_salon_retries", False):
        client.meta.events.register_first("needs-retry.dynamodb", _needs_retry, unique_id="salon-retries")
        client._salon_retries = True
    return client
