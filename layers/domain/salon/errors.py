"""The error model: every failure a caller sees has a code, a message and details.

Body shape (SPEC.md): ``{"error": {"code": ..., "message": ..., "details": ...}}``.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure the caller is told about. Subclasses fix the status and code."""

    status = 400
    code = "bad_request"
    message = "The request could not be processed."
    retry_after: int | None = None  # seconds, sent as ``Retry-After`` when set

    def __init__(
        self, message: str | None = None, *, code: str | None = None, details: Any = None, status: int | None = None
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        self.status = status or self.status
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def headers(self) -> dict[str, str]:
        """Headers the error is sent with: ``Retry-After`` on errors worth retrying later."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    message = "A valid token is required."


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    message = "You may not do this."


class NotFound(AppError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(AppError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class Gone(AppError):
    status = 410
    code = "gone"
    message = "This is no longer available."


class PreconditionFailed(AppError):
    status = 412
    code = "version_mismatch"
    message = "The record changed since you read it; read it again and retry."


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    message = "The request body is too large."


class Unprocessable(AppError):
    status = 422
    code = "validation_error"
    message = "The request is not valid."


class PreconditionRequired(AppError):
    status = 428
    code = "precondition_required"
    message = "Send If-Match with the record's version."


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"
    message = "Too many attempts; try again later."


class ServiceUnavailable(AppError):
    """DynamoDB kept throttling (or refusing part of a batch) after every retry: nothing was lost, try later."""

    status = 503
    code = "throttled"
    message = "The service is busy right now; try again shortly."
    retry_after = 2


def field_error(location: str, field: str, message: str, kind: str = "value_error") -> Unprocessable:
    """A 422 naming one field, in the same shape as schema validation errors."""
    return Unprocessable(details=[{"loc": [location, field], "msg": message, "type": kind}])
