"""Building blocks shared by every route group's schemas."""

import base64
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from salon.errors import field_error


class ApiModel(BaseModel):
    """Base of every request and response model: unknown fields are a 422."""

    # defer_build: a model's validator is built the first time it is used, not at import, so a cold start
    # pays only for the models of the route it serves.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class ErrorDetail(ApiModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(ApiModel):
    error: ErrorDetail


# No control characters (NUL, newlines, escapes) in names and labels: they break lists, exports and logs.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_CONTROL)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=NO_CONTROL)]
PageLimit = Annotated[int, Field(ge=1, le=100)]
DEFAULT_PAGE = 50


def encode_cursor(position: dict[str, str]) -> str:
    """An opaque cursor: the app stores and returns it, never reads it."""
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str = "cursor") -> dict[str, str]:
    """The position inside a cursor; a 422 naming the query field when it was not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise field_error("query", field, "Not a cursor this API gave out.") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise field_error("query", field, "Not a cursor this API gave out.")
    return value
