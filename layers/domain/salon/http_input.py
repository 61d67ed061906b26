"""What a request carries before any route reads it: its body (whatever the transport encoding), its
media type and its ``If-Match`` list, read as the RFCs write them.

API Gateway's HTTP API hands a function a body base64-encoded (``isBase64Encoded``) unless its
Content-Type is text, JSON, XML or JavaScript; a client that sends JSON without a Content-Type, or with
one the gateway does not know as text, gets its body encoded. Every rule on the body (its size, the
idempotency hash, the parser) must see the same decoded bytes, so :func:`normalise_body` decodes the
body once and rewrites the event to hold the decoded text and a canonical ``content-type``.
"""

from __future__ import annotations

import re
from typing import Any

from salon.errors import AppError, PayloadTooLarge, PreconditionFailed, PreconditionRequired, Unprocessable

JSON_MEDIA_TYPE = "application/json"
# RFC 9110 5.6.2 (token) and 8.3.1 (media-type = type "/" subtype parameters)
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_RANGE_RE = re.compile(rf"^({_TCHARS})/({_TCHARS})$")
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"'  # quoted-string, 5.6.4
_PARAMETER_RE = re.compile(rf"^({_TCHARS})=({_TCHARS}|{_QUOTED})$")


def decoded_body(event: dict[str, Any]) -> bytes:
    """The body's bytes, base64 decoded when the gateway encoded it (a ValueError when it is not base64)."""
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import base64

        return base64.b64decode(raw, validate=True)
    return str(raw).encode("utf-8")


def media_type(header: str) -> tuple[str, dict[str, str]] | None:
    """``(type/subtype, parameters)`` of a Content-Type, lower-cased where RFC 9110 makes them
    case-insensitive (type, subtype, parameter names), or None when the header is malformed."""
    main, *parameters = header.split(";")
    if not _MEDIA_RANGE_RE.match(main.strip(" \t")):
        return None
    found: dict[str, str] = {}
    for raw in parameters:
        parameter = raw.strip(" \t")
        if not parameter:  # RFC 9110 allows empty parameters ("text/plain;")
            continue
        m = _PARAMETER_RE.match(parameter)
        if not m:
            return None
        value = m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found[m.group(1).lower()] = value
    return main.strip(" \t").lower(), found


def _unsupported(message: str) -> AppError:
    return AppError(message, code="unsupported_media_type", status=415)


def _invalid_body(message: str, kind: str) -> AppError:
    return Unprocessable(details=[{"loc": ["body"], "msg": message, "type": kind}])


def _refused_media_type(headers: dict[str, Any]) -> AppError | None:
    """415 unless the Content-Type (when there is one) is JSON in UTF-8, matched case-insensitively."""
    names = [name for name in headers if name.lower() == "content-type"]
    if not names:
        return None  # JSON, as the resolver reads a body without a Content-Type
    parsed = media_type(str(headers[names[0]]))
    if parsed is None:
        return _unsupported("The Content-Type header is malformed; send application/json.")
    kind, parameters = parsed
    if kind != JSON_MEDIA_TYPE:
        return _unsupported("Send the body as JSON (application/json).")
    if parameters.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        return _unsupported("Send the body as UTF-8 JSON (charset=utf-8).")
    return None


def _text(event: dict[str, Any], max_bytes: int) -> str | AppError:
    try:
        data = decoded_body(event)
    except UnicodeEncodeError:  # a str holding lone surrogates: never UTF-8 bytes
        return _invalid_body("The body is not UTF-8 text.", "unicode_invalid")
    except ValueError:
        return _invalid_body("The body is not valid base64.", "base64_invalid")
    if len(data) > max_bytes:
        return PayloadTooLarge(details={"max_bytes": max_bytes})
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _invalid_body("The body is not UTF-8 text.", "unicode_invalid")


def normalise_body(event: dict[str, Any], max_bytes: int) -> AppError | None:
    """Decode the body once and check it: 413 past ``max_bytes`` decoded bytes; 415 for a Content-Type
    that is malformed, not JSON, or names a charset other than UTF-8; 422 for bytes that are not UTF-8
    (or a transport encoding that is not base64). On success the event holds the decoded text, no
    base64 flag and ``content-type: application/json``, so the parser and the idempotency hash read the
    same bytes the size limit measured. A request without a body is left as it is."""
    if not event.get("body"):
        return None
    text = _text(event, max_bytes)
    if isinstance(text, AppError) and text.status == 413:
        return text
    headers: dict[str, Any] = dict(event.get("headers") or {})
    refused = _refused_media_type(headers)
    if refused is not None:
        return refused
    if isinstance(text, AppError):
        return text
    for name in [name for name in headers if name.lower() == "content-type"]:
        del headers[name]
    headers["content-type"] = JSON_MEDIA_TYPE
    event["headers"] = headers
    event["body"] = text
    event["isBase64Encoded"] = False
    return None


# RFC 9110 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
_ENTITY_TAG_RE = re.compile(r'^(W/)?"([\x21\x23-\x7e\x80-\xff]*)"$')


def if_match_versions(header: str | None) -> frozenset[int]:
    """The record versions an ``If-Match`` header names (RFC 9110 13.1.1: ``*`` or a comma-separated list
    of entity tags, weak ones included): 428 when it is missing or ``*``, 412 when it names no version.

    Our ETag is the record's version number; a weak tag (``W/"3"``, which a proxy may make of ours)
    names the same version, so it counts. ``*`` would let an edit overwrite whatever version is current,
    exactly what SPEC's required If-Match prevents, so it is answered as if the header were missing. A
    bare number (``3``, not RFC syntax) is still read, as it always was."""
    if header is None or not header.strip(" \t,"):
        raise PreconditionRequired()
    if header.strip(" \t") == "*":
        raise PreconditionRequired("If-Match: * is not enough; send the version from the client's ETag.")
    versions: set[int] = set()
    for element in header.split(","):
        item = element.strip(" \t")
        if not item:  # RFC 9110 5.6.1: empty list elements are ignored
            continue
        m = _ENTITY_TAG_RE.match(item)
        opaque = m.group(2) if m else item
        if not (opaque.isascii() and opaque.isdigit() and len(opaque) <= 18):
            raise PreconditionFailed("If-Match must carry the version from the client's ETag.")
        versions.add(int(opaque))
    return frozenset(versions)
