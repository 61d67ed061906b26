"""Presigned links and grants expire on the local stack's clock, as S3 expires them on AWS.

A stack of its own: this file moves the stack's time forward (``POST /__devstack/clock``), which would
shift every later test of a shared stack."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.process import stack_process
from tests.integration.conftest import Api, Stack, unique_phone
from tests.integration.studio_helpers import set_pro_plan
from tests.integration.test_uploads import image_bytes, post_file, send_file


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    key_dir: Path = tmp_path_factory.mktemp("devstack-clock")
    with stack_process(key_dir) as running:
        yield Stack(running.url, running.emulator, key_dir, running.process)


def advance(stack: Stack, seconds: float) -> None:
    resp = requests.post(f"{stack.url}/__devstack/clock", json={"advance_s": seconds}, timeout=10)
    assert resp.status_code == 200, resp.text


def error_of(resp: requests.Response) -> tuple[str, str]:
    root = ET.fromstring(resp.content)
    return root.findtext("Code") or "", root.findtext("Message") or ""


def test_links_and_grants_expire_on_the_stack_clock(own_stack: Stack) -> None:
    """A presigned GET used after X-Amz-Date + X-Amz-Expires is refused 403 AccessDenied "Request has expired"
    (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html); a POST after its policy's
    expiration 403 "Invalid according to Policy: Policy expired."
    (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html). Links the API hands out
    after the clock moved are signed at the stack's time, so they work."""
    owner = Api(own_stack, f"clock-{os.getpid()}")
    set_pro_plan(own_stack, owner.sub, "premium")
    client_id = owner.post("/clients", json={"name": "Clock Client", "phone": unique_phone()}).json()["client_id"]
    body = image_bytes("PNG", (40, 40))
    grant = owner.post(f"/clients/{client_id}/uploads", json={"content_type": "image/png", "size": len(body)}).json()
    post_file(grant, body)
    own_stack.drain()
    late = owner.post(f"/clients/{client_id}/uploads", json={"content_type": "image/png", "size": len(body)}).json()
    (item,) = owner.get(f"/clients/{client_id}/uploads").json()["items"]
    assert requests.get(item["download_url"], timeout=30).content == body

    advance(own_stack, 301)  # past the 5-minute link
    expired = requests.get(item["download_url"], timeout=30)
    assert expired.status_code == 403
    assert error_of(expired) == ("AccessDenied", "Request has expired")
    assert requests.get(item["thumbnail_url"], timeout=30).status_code == 403
    (fresh,) = owner.get(f"/clients/{client_id}/uploads").json()["items"]
    assert requests.get(fresh["download_url"], timeout=30).content == body  # signed at the stack's time

    advance(own_stack, 300)  # past the 10-minute grant
    refused = send_file(late, body)
    assert refused.status_code == 403
    assert error_of(refused) == ("AccessDenied", "Invalid according to Policy: Policy expired.")
    renewed = owner.post(f"/clients/{client_id}/uploads", json={"content_type": "image/png", "size": len(body)})
    assert renewed.status_code == 201, renewed.text
    post_file(renewed.json(), body)  # a grant made now is valid now
