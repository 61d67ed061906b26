"""Unit tests: rules without AWS. Where a repository is needed, moto runs in-process and the
table, queues and bucket are created from template.yaml, as the local stack creates them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.emulator import create_resources
from devstack.template import LOCAL_REGION, Template


class InProcessAws:
    """The emulator's interface (``client``), backed by moto's in-process mock."""

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=LOCAL_REGION)


@pytest.fixture
def aws() -> Iterator[Template]:
    """moto in-process with the local stack's patches: AWS's consistency, conflicts and throttles at
    ``DEVSTACK_FAULTS`` (the defaults unless set; the seed is printed for a replay)."""
    from devstack import faults, moto_patches

    moto_patches.apply()
    faults.configure()
    print(f"DEVSTACK_FAULTS seed={faults.seed()} ({faults.describe()})")
    with mock_aws():
        template = Template()
        create_resources(InProcessAws(), template)  # type: ignore[arg-type]
        yield template


@pytest.fixture
def faults_off(aws: Template) -> Iterator[None]:
    """The emulator without faults, for the tests that count AWS calls or compare the emulator with itself.

    A call budget measures the design (how many calls a route makes when nothing goes wrong); a throttle, an
    UnprocessedKeys answer or a transaction conflict adds the retry's calls on AWS as here, so counting
    with faults on would measure the dice. Every other test keeps the faults on: one that passes only with
    faults off hides a bug."""
    from devstack import faults

    faults.configure("off")
    yield
    faults.configure()


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS API call made while the test runs, by operation name."""
    import botocore.client

    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


@pytest.fixture(autouse=True)
def _no_access_denied() -> Iterator[None]:
    """Functions loaded through devstack.functions are held to their template policy (devstack/iam.py): a call
    one made that its policy does not allow fails the test, even where the code under test caught the error."""
    from devstack import iam

    iam.take_denials()
    yield
    denied = iam.take_denials()
    assert not denied, f"calls the template policy does not allow (add the action to template.yaml): {denied}"
