"""The emulator's S3 as strict as AWS's: a WSGI layer in front of moto's server app.

moto accepts any signature, never expires a presigned URL and ignores every
condition of a presigned POST policy (../shared/LOCAL-STACK.md). AWS does not,
and code that passes on moto hands out links and grants that fail (or are too
loose) in production. For requests to the emulator's S3 this layer applies, always
(not a fault rate), what AWS documents:

- **SigV4 only.** A bucket created after June 24, 2020 refuses Signature Version 2
  (header ``Authorization: AWS ...``, query ``AWSAccessKeyId``/``Signature``, POST
  fields ``AWSAccessKeyId``/``signature``) with ``400 InvalidRequest`` "The
  authorization mechanism you have provided is not supported. Please use
  AWS4-HMAC-SHA256." (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingAWSSDK.html#UsingAWSSDK-sig2-deprecation)
- **Presigned URLs** (query-string SigV4): the signature is computed with the local
  credentials (access key ``local``, secret ``local``) and a forged or altered one
  answers ``403 SignatureDoesNotMatch``; a URL used after ``X-Amz-Date`` +
  ``X-Amz-Expires`` answers ``403 AccessDenied`` "Request has expired"
  (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
- **Presigned POSTs** (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-authentication-HTTPPOST.html,
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html): the policy's
  signature (``403 SignatureDoesNotMatch``), its ``expiration`` (``403 AccessDenied`` "Invalid
  according to Policy: Policy expired."), every condition (exact match, ``eq``, ``starts-with``
  on ``$key``, ``$Content-Type``, ``$x-amz-*``..., the ``bucket`` of the URL: ``403 AccessDenied``
  "Invalid according to Policy: Policy Condition failed: [...]"), ``content-length-range`` on the
  file's size (``400 EntityTooLarge`` / ``400 EntityTooSmall``), and that every form field but
  ``x-amz-signature``, ``file``, ``policy`` and ``x-ignore-*`` is named by a condition (``403
  AccessDenied`` "Invalid according to Policy: Extra input fields: ...").
- **DeleteObjects in quiet mode** answers only the keys it failed to delete
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html); moto lists every key.
- **Event records** name the object's ``versionId`` (:func:`patch_event_records`); moto's do not.

Time is the stack's (:func:`devstack.clock.now`), so ``POST /__devstack/clock`` expires links.
Processes that run handlers sign with the stack's time as well (:func:`devstack.clock.apply`
makes botocore's signing clock follow ``salon.clock``), so a link signed after an advance is
fresh, exactly as one signed in AWS at that moment would be.

Not modelled: header-signed requests (real boto3 clients of the stack, tests and handlers) are
checked for SigV4 and the access key but their signature is not recomputed (moto parses their
bodies, chunked encodings included), nor is their clock skew; anonymous requests pass (the
local bucket has no public-access block to enforce); bucket policies and ACLs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from devstack import clock

ACCESS_KEY = "local"
SECRET_KEY = "local"  # noqa: S105 - the local stack's fixed credentials (devstack.emulator.aws_env)
SIGV4 = "AWS4-HMAC-SHA256"
_SIGV2_MESSAGE = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key and signing method."
)
_IGNORED_FIELDS = {"x-amz-signature", "file", "policy"}
_DELETED_RE = re.compile(rb"<Deleted>.*?</Deleted>", re.DOTALL)
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> bytes:
        extra = "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in self.extra.items())
        request_id = uuid.uuid4().hex[:16].upper()
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{_xml(self.message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>local</HostId></Error>"
        ).encode()


_REASONS = {400: "Bad Request", 403: "Forbidden"}


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _amz_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


class StrictS3:
    """WSGI middleware: S3 requests are held to AWS's rules, everything else goes to moto untouched."""

    def __init__(
        self,
        app: WsgiApp,
        buckets: Callable[[], Iterable[str]] | None = None,
        now: Callable[[], float] = clock.now,
    ) -> None:
        self.app = app
        self._buckets = buckets or _moto_buckets
        self._now = now

    # ------------------------------------------------------------ dispatch

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            if not self._is_s3(environ):
                return self.app(environ, start_response)
            quiet_delete = self._check(environ)
        except S3Error as error:
            body = error.body()
            start_response(
                f"{error.status} {_REASONS.get(error.status, 'Error')}",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if not quiet_delete:
            return self.app(environ, start_response)
        return self._quiet(environ, start_response)

    def _is_s3(self, environ: dict[str, Any]) -> bool:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth.startswith(SIGV4):
            match = re.search(r"Credential=[^/]*/[^/]*/[^/]*/([^/]*)/", auth)
            return bool(match and match[1] == "s3")
        query = environ.get("QUERY_STRING", "")
        if "X-Amz-Credential=" in query:
            return "%2Fs3%2F" in query or "/s3/" in query
        first = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
        return bool(first) and first in set(self._buckets())

    def _check(self, environ: dict[str, Any]) -> bool:
        """Raise the S3Error AWS answers, or return whether this is a quiet DeleteObjects."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        params = _query(environ.get("QUERY_STRING", ""))
        if auth.startswith("AWS ") or ("Signature" in params and "AWSAccessKeyId" in params):
            raise S3Error(400, "InvalidRequest", _SIGV2_MESSAGE)
        if auth.startswith(SIGV4):
            self._check_access_key(re.search(r"Credential=([^/,\s]*)/", auth))
        elif "X-Amz-Signature" in params or "X-Amz-Credential" in params:
            self._check_presigned(environ, params)
        elif environ.get("REQUEST_METHOD") == "POST" and environ.get("CONTENT_TYPE", "").startswith(
            "multipart/form-data"
        ):
            self._check_post(environ)
        return environ.get("REQUEST_METHOD") == "POST" and "delete" in params and self._quiet_requested(environ)

    @staticmethod
    def _check_access_key(match: re.Match[str] | None) -> None:
        if match is None or match[1] != ACCESS_KEY:
            raise S3Error(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                AWSAccessKeyId=match[1] if match else "",
            )

    # ------------------------------------------------------ presigned URLs

    def _check_presigned(self, environ: dict[str, Any], params: dict[str, str]) -> None:
        required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders")
        missing = [p for p in (*required, "X-Amz-Signature") if p not in params]
        if missing or params["X-Amz-Algorithm"] != SIGV4:
            raise S3Error(
                400,
                "AuthorizationQueryParametersError",
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
            )
        scope = params["X-Amz-Credential"].split("/")
        self._check_access_key(re.match(r"([^/]*)/", params["X-Amz-Credential"]))
        if len(scope) != 5:
            raise S3Error(400, "AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter.")
        try:
            signed_at = _amz_time(params["X-Amz-Date"])
            expires = int(params["X-Amz-Expires"])
        except ValueError as exc:
            raise S3Error(
                400, "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed."
            ) from exc
        if not 1 <= expires <= 604800:
            raise S3Error(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be less than a week (in seconds) that is; 604800 seconds",
            )
        # The signature first: an altered X-Amz-Date must not pass as merely expired.
        canonical = "\n".join(
            [
                environ.get("REQUEST_METHOD", "GET"),
                _raw_path(environ),
                _canonical_query(environ.get("QUERY_STRING", "")),
                _canonical_headers(environ, params["X-Amz-SignedHeaders"]),
                params["X-Amz-SignedHeaders"],
                "UNSIGNED-PAYLOAD",
            ]
        )
        to_sign = "\n".join(
            [SIGV4, params["X-Amz-Date"], "/".join(scope[1:]), hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = signing_key(SECRET_KEY, scope[1], scope[2], scope[3])
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            raise S3Error(403, "SignatureDoesNotMatch", _MISMATCH, AWSAccessKeyId=scope[0])
        now = self._now()
        deadline = signed_at.timestamp() + expires
        if now > deadline:
            raise S3Error(
                403,
                "AccessDenied",
                "Request has expired",
                **{"X-Amz-Expires": str(expires), "Expires": _iso(deadline), "ServerTime": _iso(now)},
            )

    # ------------------------------------------------------ presigned POSTs

    def _check_post(self, environ: dict[str, Any]) -> None:
        from werkzeug.formparser import parse_form_data

        body = _read_body(environ)
        probe = dict(environ)
        probe["wsgi.input"] = io.BytesIO(body)
        _stream, form, files = parse_form_data(probe)
        fields = {name.lower(): value for name, value in form.items()}
        if "awsaccesskeyid" in fields or ("signature" in fields and "x-amz-signature" not in fields):
            raise S3Error(400, "InvalidRequest", _SIGV2_MESSAGE)
        if "policy" not in fields:
            return  # an anonymous POST: the local bucket has no public-access block to refuse it with
        upload = files.get("file")
        size = len(upload.read()) if upload is not None else 0
        self._check_policy(fields, environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0], size)

    def _check_policy(self, fields: dict[str, str], bucket: str, size: int) -> None:
        if fields.get("x-amz-algorithm") != SIGV4:
            raise S3Error(400, "InvalidRequest", _SIGV2_MESSAGE)
        credential = fields.get("x-amz-credential", "")
        scope = credential.split("/")
        self._check_access_key(re.match(r"([^/]*)/", credential))
        if len(scope) != 5 or "x-amz-signature" not in fields or "x-amz-date" not in fields:
            raise S3Error(
                400,
                "InvalidArgument",
                "Bucket POST must contain a field named 'X-Amz-Signature' and a valid credential.",
            )
        policy_b64 = fields["policy"]
        key = signing_key(SECRET_KEY, scope[1], scope[2], scope[3])
        expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields["x-amz-signature"]):
            raise S3Error(403, "SignatureDoesNotMatch", _MISMATCH, AWSAccessKeyId=scope[0])
        try:
            policy = json.loads(base64.b64decode(policy_b64, validate=True))
            expiration = dt.datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
            conditions = list(policy["conditions"])
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise S3Error(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from exc
        if expiration.timestamp() < self._now():
            raise S3Error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        values = {**fields, "bucket": bucket}
        covered = {"bucket"}
        for condition in conditions:
            covered |= _check_condition(condition, values, size)
        extra = sorted(
            name
            for name in fields
            if name not in _IGNORED_FIELDS and not name.startswith("x-ignore-") and name not in covered
        )
        if extra:
            raise S3Error(403, "AccessDenied", "Invalid according to Policy: Extra input fields: " + ", ".join(extra))

    # ------------------------------------------------------ DeleteObjects

    @staticmethod
    def _quiet_requested(environ: dict[str, Any]) -> bool:
        body = _read_body(environ)
        return bool(re.search(rb"<Quiet>\s*true\s*</Quiet>", body, re.IGNORECASE))

    def _quiet(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body = b"".join(self.app(environ, capture))
        if captured["status"].startswith("200"):
            body = _DELETED_RE.sub(b"", body)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]


def _check_condition(condition: Any, values: dict[str, str], size: int) -> set[str]:
    """Check one policy condition; the (lower-cased) field names it covers."""
    if isinstance(condition, dict):
        covered = set()
        for name, expected in condition.items():
            field = str(name).lower()
            if values.get(field) != str(expected):
                _failed(["eq", f"${name}", expected])
            covered.add(field)
        return covered
    if isinstance(condition, list) and condition and condition[0] == "content-length-range":
        low, high = int(condition[1]), int(condition[2])
        if size > high:
            raise S3Error(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                ProposedSize=str(size),
                MaxSizeAllowed=str(high),
            )
        if size < low:
            raise S3Error(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                ProposedSize=str(size),
                MinSizeAllowed=str(low),
            )
        return set()
    if isinstance(condition, list) and len(condition) == 3 and str(condition[1]).startswith("$"):
        op, name, expected = str(condition[0]).lower(), str(condition[1])[1:], str(condition[2])
        field = name.lower()
        value = values.get(field)
        if op == "eq" and value != expected:
            _failed(condition)
        if op == "starts-with" and (value is None or not value.startswith(expected)):
            _failed(condition)
        if op not in ("eq", "starts-with"):
            raise S3Error(400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {json.dumps(condition)}")
        return {field}
    raise S3Error(400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {json.dumps(condition)}")


def _failed(condition: Any) -> None:
    raise S3Error(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}")


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole body, put back so the app behind reads it again."""
    cached = environ.get("devstack.s3.body")
    if cached is not None:
        environ["wsgi.input"] = io.BytesIO(cached)
        return bytes(cached)
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length.isdigit() else stream.read()
    environ["devstack.s3.body"] = body
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return bytes(body)


def _query(query: str) -> dict[str, str]:
    out = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out[unquote_plus(name)] = unquote_plus(value)
    return out


def _raw_path(environ: dict[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        path = str(raw).split("?", 1)[0]
        if "://" in path:  # an absolute-form request line
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        return path
    return quote(environ.get("PATH_INFO", "/"), safe="/~")


def _canonical_query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name, value = unquote(name), unquote(value)
        if name == "X-Amz-Signature":
            continue
        pairs.append((_uri_encode(name), _uri_encode(value)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _canonical_headers(environ: dict[str, Any], signed: str) -> str:
    lines = []
    for name in signed.split(";"):
        if name == "host":
            value = environ.get("HTTP_HOST", "")
        elif name == "content-type":
            value = environ.get("CONTENT_TYPE", "")
        elif name == "content-length":
            value = environ.get("CONTENT_LENGTH", "")
        else:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"), "")
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


def _moto_buckets() -> list[str]:
    from moto.s3.models import s3_backends

    return list(s3_backends.bucket_accounts)


_events_patched = False


def patch_event_records() -> None:
    """S3 event records carry the object's ``versionId`` in a versioned bucket (and a ``sequencer``); moto's
    carry neither, so a handler that deletes "the object of this event" would only add a delete marker
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)."""
    global _events_patched
    if _events_patched:
        return
    from moto.s3 import notifications

    original = notifications._get_s3_event

    def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event: dict[str, Any] = original(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        for record in event.get("Records", []):
            obj = record["s3"]["object"]
            if version and str(version) != "null":
                obj["versionId"] = str(version)
            obj.setdefault("sequencer", f"{int(clock.now() * 1_000_000):016X}")
        return event

    notifications._get_s3_event = _get_s3_event
    _events_patched = True


def wrap(app: WsgiApp) -> WsgiApp:
    patch_event_records()
    return StrictS3(app)
