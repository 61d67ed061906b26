"""The emulator's S3 refuses what AWS's S3 refuses (devstack/s3_rules.py), over real HTTP to the embedded
moto server: SigV2, forged and expired presigned URLs, every presigned POST policy condition, and
DeleteObjects' quiet mode and versioned deletes. Each test cites the AWS page it follows."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from devstack import clock
from devstack.emulator import Emulator, free_port

BUCKET = "strict-bucket"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(free_port())
    emu.start()
    s3 = emu.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    yield emu
    emu.stop()


def signer(emulator: Emulator, **config: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=emulator.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**config),
    )


def error_of(resp: requests.Response) -> tuple[str, str]:
    root = ET.fromstring(resp.content)
    return root.findtext("Code") or "", root.findtext("Message") or ""


def put(emulator: Emulator, key: str, body: bytes = b"hello") -> str:
    return str(emulator.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"])


def get_url(emulator: Emulator, key: str, expires: int = 60, **params: str) -> str:
    return str(
        signer(emulator, signature_version="s3v4").generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": key, **params}, ExpiresIn=expires
        )
    )


# ------------------------------------------------------------ signatures


def test_a_sigv4_presigned_get_is_served(emulator: Emulator) -> None:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html"""
    put(emulator, "photos/a b+c.jpg", b"first")
    resp = requests.get(get_url(emulator, "photos/a b+c.jpg"), timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.content == b"first"


def test_sigv2_is_refused_query_header_and_post(emulator: Emulator) -> None:
    """Buckets created after June 24, 2020 accept only SigV4:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingAWSSDK.html#UsingAWSSDK-sig2-deprecation"""
    put(emulator, "v2.txt")
    v2 = signer(emulator, signature_version="s3")
    url = v2.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "v2.txt"}, ExpiresIn=60)
    assert "Signature=" in url
    assert "X-Amz-Signature" not in url
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 400
    assert error_of(resp) == (
        "InvalidRequest",
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    )
    with pytest.raises(v2.exceptions.ClientError) as raised:
        v2.get_object(Bucket=BUCKET, Key="v2.txt")  # header "Authorization: AWS local:..."
    assert raised.value.response["Error"]["Code"] == "InvalidRequest"
    post = v2.generate_presigned_post(BUCKET, "v2-post.txt", ExpiresIn=60)
    assert "signature" in post["fields"]
    resp = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"x")}, timeout=10)
    assert resp.status_code == 400
    assert error_of(resp)[0] == "InvalidRequest"


def test_a_forged_or_altered_presigned_get_is_refused(emulator: Emulator) -> None:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html (SignatureDoesNotMatch)"""
    put(emulator, "secret.txt")
    put(emulator, "other.txt")
    url = get_url(emulator, "secret.txt")
    forged = url[: url.index("X-Amz-Signature=") + 16] + "0" * 64
    other_key = url.replace("secret.txt", "other.txt")
    longer = url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    wrong_secret = boto3.client(
        "s3",
        endpoint_url=emulator.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="not-local",
        config=Config(signature_version="s3v4"),
    ).generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "secret.txt"}, ExpiresIn=60)
    for bad in (forged, other_key, longer, wrong_secret):
        resp = requests.get(bad, timeout=10)
        assert resp.status_code == 403, bad
        assert error_of(resp)[0] == "SignatureDoesNotMatch", bad


def test_a_presigned_get_expires_on_the_stack_clock(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL used after X-Amz-Date + X-Amz-Expires is refused 403 AccessDenied "Request has expired":
    https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html"""
    put(emulator, "soon.txt")
    url = get_url(emulator, "soon.txt", expires=30)
    assert requests.get(url, timeout=10).status_code == 200
    monkeypatch.setattr(clock, "_offset_s", clock.offset_s() + 31)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 403
    assert error_of(resp) == ("AccessDenied", "Request has expired")


def test_botocore_signs_with_the_stack_clock_where_handlers_run(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an advance, a link a handler signs is fresh (its X-Amz-Date is the stack's time)."""
    from salon import clock as salon_clock

    put(emulator, "later.txt")
    monkeypatch.setattr(clock, "_offset_s", clock.offset_s() + 3600)
    monkeypatch.setattr(salon_clock, "_offset_s", salon_clock._offset_s)
    clock.apply()
    assert salon_clock._offset_s == clock.offset_s()
    resp = requests.get(get_url(emulator, "later.txt", expires=60), timeout=10)
    assert resp.status_code == 200, resp.text


def test_a_presigned_get_names_its_version(emulator: Emulator) -> None:
    """versionId is part of the signed query: the link serves that version, and altering it breaks the signature."""
    first = put(emulator, "versioned.txt", b"one")
    put(emulator, "versioned.txt", b"two")
    url = get_url(emulator, "versioned.txt", VersionId=first)
    assert requests.get(url, timeout=10).content == b"one"
    assert requests.get(url.replace(first, "x" + first[1:]), timeout=10).status_code == 403


# ------------------------------------------------------------ POST policies


def grant(emulator: Emulator, key: str = "up/1", size: int = 5, expires: int = 60) -> dict[str, Any]:
    post: dict[str, Any] = signer(emulator, signature_version="s3v4").generate_presigned_post(
        BUCKET,
        key,
        Fields={"Content-Type": "image/png"},
        Conditions=[{"Content-Type": "image/png"}, ["content-length-range", size, size]],
        ExpiresIn=expires,
    )
    return post


def send(post: dict[str, Any], body: bytes = b"12345", url: str | None = None, **fields: str) -> requests.Response:
    data = {**post["fields"], **fields}
    return requests.post(url or post["url"], data=data, files={"file": ("f", body)}, timeout=10)


def test_a_post_within_its_policy_is_stored(emulator: Emulator) -> None:
    """https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-authentication-HTTPPOST.html"""
    resp = send(grant(emulator, "up/ok"))
    assert resp.status_code == 204, resp.text
    head = emulator.client("s3").head_object(Bucket=BUCKET, Key="up/ok")
    assert head["ContentType"] == "image/png"


@pytest.mark.parametrize(
    ("case", "change", "status", "code", "message"),
    [
        ("another key", {"key": "up/other"}, 403, "AccessDenied", 'Policy Condition failed: ["eq", "$key", "up/c"]'),
        (
            "another type",
            {"Content-Type": "image/jpeg"},
            403,
            "AccessDenied",
            'Policy Condition failed: ["eq", "$Content-Type", "image/png"]',
        ),
        ("a field no condition names", {"x-amz-meta-owner": "me"}, 403, "AccessDenied", "Extra input fields"),
        ("an altered x-amz field", {"x-amz-date": "20200101T000000Z"}, 403, "AccessDenied", "x-amz-date"),
        ("a forged signature", {"x-amz-signature": "0" * 64}, 403, "SignatureDoesNotMatch", "signature"),
        (
            "another access key",
            {"x-amz-credential": "AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request"},
            403,
            "InvalidAccessKeyId",
            "",
        ),
    ],
)
def test_every_post_policy_condition_is_enforced(
    emulator: Emulator, case: str, change: dict[str, str], status: int, code: str, message: str
) -> None:
    """Each form field is checked against the policy's conditions, and each field must be named by one:
    https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html"""
    post = grant(emulator, "up/c")
    resp = send(post, **change)
    assert resp.status_code == status, (case, resp.text)
    got_code, got_message = error_of(resp)
    assert got_code == code, case
    assert message in got_message, (case, got_message)
    assert "Contents" not in emulator.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="up/other")
    assert emulator.client("s3").list_object_versions(Bucket=BUCKET, Prefix="up/c").get("Versions", []) == [], case


def test_the_policy_signature_covers_the_policy(emulator: Emulator) -> None:
    """A policy rewritten by the app (a larger size) no longer matches its signature."""
    post = grant(emulator, "up/rewritten")
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    policy["conditions"] = [c for c in policy["conditions"] if not isinstance(c, list)]
    forged = base64.b64encode(json.dumps(policy).encode()).decode()
    resp = send(post, b"1234567890", policy=forged)
    assert resp.status_code == 403
    assert error_of(resp)[0] == "SignatureDoesNotMatch"


def test_the_bucket_condition_is_the_urls_bucket(emulator: Emulator) -> None:
    """{"bucket": ...} is matched against the bucket the form is posted to."""
    emulator.client("s3").create_bucket(Bucket="strict-other")
    post = grant(emulator, "up/b")
    resp = send(post, url=post["url"].replace(BUCKET, "strict-other"))
    assert resp.status_code == 403
    assert error_of(resp) == (
        "AccessDenied",
        f'Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "{BUCKET}"]',
    )


@pytest.mark.parametrize(("body", "code"), [(b"123456", "EntityTooLarge"), (b"1234", "EntityTooSmall")])
def test_content_length_range_is_enforced(emulator: Emulator, body: bytes, code: str) -> None:
    """content-length-range bounds the file's size: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html"""
    resp = send(grant(emulator, f"up/{code}"), body)
    assert resp.status_code == 400
    assert error_of(resp)[0] == code
    assert "Contents" not in emulator.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"up/{code}")


def test_an_expired_policy_is_refused(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy's expiration, on the stack's clock:
    https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html#sigv4-HTTPPOSTExpiration"""
    post = grant(emulator, "up/late", expires=30)
    monkeypatch.setattr(clock, "_offset_s", clock.offset_s() + 31)
    resp = send(post)
    assert resp.status_code == 403
    assert error_of(resp) == ("AccessDenied", "Invalid according to Policy: Policy expired.")


def test_starts_with_conditions(emulator: Emulator) -> None:
    """["starts-with", "$key", prefix] admits any key under the prefix and nothing else."""
    post: dict[str, Any] = signer(emulator, signature_version="s3v4").generate_presigned_post(
        BUCKET, "pre/${filename}", Conditions=[["starts-with", "$key", "pre/"]], ExpiresIn=60
    )
    assert send(post, key="pre/x").status_code == 204
    resp = send(post, key="elsewhere/x")
    assert resp.status_code == 403
    assert error_of(resp)[1].endswith('["starts-with", "$key", "pre/"]')


# ------------------------------------------------------------ DeleteObjects


def test_quiet_delete_objects_answers_only_errors_and_versioned_deletes_add_markers(emulator: Emulator) -> None:
    """Quiet mode lists only the keys S3 failed to delete; a delete without a VersionId in a versioned bucket
    adds a delete marker and keeps every version: https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeletingObjectVersions.html"""
    s3 = emulator.client("s3")
    first = put(emulator, "del/a", b"1")
    put(emulator, "del/a", b"2")
    put(emulator, "del/b", b"3")
    quiet = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "del/a"}, {"Key": "del/b"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert "Errors" not in quiet
    listing = s3.list_object_versions(Bucket=BUCKET, Prefix="del/")
    assert len(listing["Versions"]) == 3  # nothing gone: only markers were added
    assert sorted(m["Key"] for m in listing["DeleteMarkers"]) == ["del/a", "del/b"]
    assert s3.get_object(Bucket=BUCKET, Key="del/a", VersionId=first)["Body"].read() == b"1"

    loud = s3.delete_objects(
        Bucket=BUCKET,
        Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in listing["Versions"]]},
    )
    assert len(loud["Deleted"]) == 3  # not quiet: every deleted version listed
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix="del/").get("Versions", [])) == 0


def test_the_stacks_own_clients_still_work(emulator: Emulator) -> None:
    """Header-signed SigV4 requests of real boto3 clients (the stack, handlers, tests) pass, other services too."""
    s3 = emulator.client("s3")
    s3.put_object(Bucket=BUCKET, Key="own", Body=b"x")
    assert s3.get_object(Bucket=BUCKET, Key="own")["Body"].read() == b"x"
    assert emulator.client("sqs").create_queue(QueueName="strict-q")["QueueUrl"]
    with pytest.raises(s3.exceptions.ClientError) as raised:
        boto3.client(
            "s3",
            endpoint_url=emulator.endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="local",
        ).get_object(Bucket=BUCKET, Key="own")
    assert raised.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_event_records_name_the_objects_version(emulator: Emulator) -> None:
    """In a versioned bucket each ObjectCreated record carries the new object's versionId:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html"""
    s3, sqs = emulator.client("s3"), emulator.client("sqs")
    emulator.client("s3").create_bucket(Bucket="strict-events")
    s3.put_bucket_versioning(Bucket="strict-events", VersioningConfiguration={"Status": "Enabled"})
    url = sqs.create_queue(QueueName="strict-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket="strict-events",
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    version = s3.put_object(Bucket="strict-events", Key="k", Body=b"x")["VersionId"]
    records = []
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            records.extend(json.loads(message["Body"]).get("Records", []))
        if records:
            break
    (record,) = records
    assert record["s3"]["object"]["versionId"] == version
    assert record["s3"]["object"]["sequencer"]
