"""Single writes that meet a transaction, throttles and unprocessed batch items: retried with backoff, then a
documented 409 ``write_conflict`` or 503 ``throttled`` with ``Retry-After``, never a 500.

The errors are injected at the botocore level (a ``before-send`` hook answering DynamoDB's own error for the
first N calls of an operation), so botocore's retry machinery sees them as it would AWS's answers:
- https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
  (a PutItem/UpdateItem/DeleteItem on an item of an ongoing TransactWriteItems fails with
  TransactionConflictException; overlapping transactions cancel with TransactionConflict reasons);
- https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html (throttling errors,
  ThrottlingError cancellation reasons; "retry with exponential backoff");
- https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html (UnprocessedKeys:
  "we strongly recommend that you use an exponential backoff algorithm").
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from devstack.template import Template
from tests.unit.test_import_in_progress import _call


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def error_body(code: str, **extra: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda _request: {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected", **extra}


class Faults:
    """Answers the first ``times`` DynamoDB calls of an operation with an injected answer, in place of the one
    the emulator would send: inside botocore's send-and-retry loop (``Endpoint._do_get_response``), where AWS's
    answer would arrive, so botocore's retry handlers (and ours) see it as they would see AWS's. (A
    ``before-send`` hook cannot do this with moto: every before-send handler runs, so moto would still apply the
    call whose answer was replaced.)"""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from botocore.endpoint import Endpoint, convert_to_response_dict

        self._rules: dict[str, tuple[int, Callable[[dict[str, Any]], dict[str, Any]], int]] = {}
        self.seen: dict[str, int] = {}
        original = Endpoint._do_get_response

        def answer(endpoint: Any, request: Any, operation_model: Any, context: Any) -> Any:
            name = operation_model.name
            rule = self._rules.get(name)
            if operation_model.service_model.service_name != "dynamodb" or rule is None or self.seen[name] >= rule[0]:
                return original(endpoint, request, operation_model, context)
            self.seen[name] += 1
            _times, body, status = rule
            raw = json.dumps(body(json.loads(request.body or b"{}"))).encode()
            headers = {"x-amzn-requestid": "injected", "content-type": "application/x-amz-json-1.0"}
            http_response = AWSResponse(request.url, status, headers, _Raw(raw))
            response_dict = convert_to_response_dict(http_response, operation_model)
            parser = endpoint._response_parser_factory.create_parser(operation_model.service_model.resolved_protocol)
            parsed = parser.parse(response_dict, operation_model.output_shape)
            if status >= 300:
                endpoint._add_modeled_error_fields(response_dict, parsed, operation_model, parser)
            return (http_response, parsed), None

        monkeypatch.setattr(Endpoint, "_do_get_response", answer)

    def inject(
        self, operation: str, times: int, body: Callable[[dict[str, Any]], dict[str, Any]], status: int = 400
    ) -> None:
        self.seen[operation] = 0
        self._rules[operation] = (times, body, status)

    def clear(self) -> None:
        self._rules.clear()


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    from salon.data import retry

    monkeypatch.setattr(retry, "BASE_DELAY_S", 0.001)  # the same backoff, shorter: the tests stay fast
    return Faults(monkeypatch)


def _studio(aws: Template, owner: str = "ana") -> str:
    created = _call(aws, "POST", "/studios", owner, {"name": "Glow"})
    assert created["statusCode"] == 201, created
    return str(json.loads(created["body"])["studio_id"])


def test_a_single_write_meeting_a_transaction_is_retried(aws: Template, faults: Faults) -> None:
    """botocore never retries TransactionConflictException; the client's own hook does, for raw calls and
    pynamodb's save alike."""
    from salon.data import keys
    from salon.data.models import TableItem
    from salon.data.tx import s, update_item

    faults.inject("UpdateItem", 3, error_body("TransactionConflictException"))
    update_item("PRO#ana", keys.PROFILE, "SET plan = :p, kind = :k", values={":p": s("pro"), ":k": s("pro")})
    assert faults.seen["UpdateItem"] == 3
    assert TableItem.get("PRO#ana", keys.PROFILE, consistent_read=True).plan == "pro"

    faults.inject("PutItem", 2, error_body("TransactionConflictException"))
    studio_id = _studio(aws)
    created = _call(aws, "POST", f"/studios/{studio_id}/invites", "ana", {"role": "provider"})
    assert created["statusCode"] == 201, created
    assert faults.seen["PutItem"] == 2


def test_a_lasting_conflict_on_a_single_write_is_409_write_conflict_with_retry_after(
    aws: Template, faults: Faults
) -> None:
    studio_id = _studio(aws)
    faults.inject("PutItem", 99, error_body("TransactionConflictException"))
    refused = _call(aws, "POST", f"/studios/{studio_id}/invites", "ana", {"role": "provider"})
    assert refused["statusCode"] == 409, refused
    assert json.loads(refused["body"])["error"]["code"] == "write_conflict"
    assert int(refused["headers"]["Retry-After"]) >= 1
    assert faults.seen["PutItem"] == 6  # tried, then retried five times with backoff


def test_a_lasting_throttle_is_503_throttled_with_retry_after_and_a_passing_one_is_absorbed(
    aws: Template, faults: Faults
) -> None:
    created = _call(aws, "POST", "/clients", "ana", {"name": "Bea", "phone": "+1 415 555 2671"})
    assert created["statusCode"] == 201
    faults.inject("Query", 4, error_body("ProvisionedThroughputExceededException"))
    listed = _call(aws, "GET", "/me/clients", "ana")
    assert listed["statusCode"] == 200, listed
    assert [c["name"] for c in json.loads(listed["body"])["items"]] == ["Bea"]

    faults.inject("Query", 99, error_body("ThrottlingException"))
    refused = _call(aws, "GET", "/me/clients", "ana")
    assert refused["statusCode"] == 503, refused
    assert json.loads(refused["body"])["error"]["code"] == "throttled"
    assert int(refused["headers"]["Retry-After"]) >= 1


def _cancelled(reason: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def body(request: dict[str, Any]) -> dict[str, Any]:
        reasons = [{"Code": reason, "Message": "injected"}] + [{"Code": "None"}] * (len(request["TransactItems"]) - 1)
        return error_body("TransactionCanceledException", CancellationReasons=reasons)(request)

    return body


def test_a_transaction_cancelled_by_throttled_items_is_retried_then_503_with_nothing_written(
    aws: Template, faults: Faults
) -> None:
    faults.inject("TransactWriteItems", 2, _cancelled("ThrottlingError"))
    assert _call(aws, "POST", "/clients", "ana", {"name": "Bea", "phone": "+1 415 555 2671"})["statusCode"] == 201
    assert faults.seen["TransactWriteItems"] == 2

    faults.inject("TransactWriteItems", 99, _cancelled("ThrottlingError"))
    refused = _call(aws, "POST", "/clients", "ana", {"name": "Cleo", "phone": "+1 415 555 2672"})
    assert refused["statusCode"] == 503, refused
    assert json.loads(refused["body"])["error"]["code"] == "throttled"
    assert "Retry-After" in refused["headers"]
    faults.clear()
    names = [c["name"] for c in json.loads(_call(aws, "GET", "/me/clients", "ana")["body"])["items"]]
    assert names == ["Bea"]


def _unprocessed(request: dict[str, Any]) -> dict[str, Any]:
    return {"Responses": {t: [] for t in request["RequestItems"]}, "UnprocessedKeys": request["RequestItems"]}


def test_batch_reads_back_off_on_unprocessed_keys_then_give_up_with_503(
    aws: Template, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.data import batch

    created = _call(aws, "POST", "/clients", "ana", {"name": "Bea", "phone": "+1 415 555 2671"})
    client_id = json.loads(created["body"])["client_id"]
    slept: list[float] = []
    monkeypatch.setattr(batch.time, "sleep", slept.append)

    faults.inject("BatchGetItem", 3, _unprocessed, status=200)
    read = _call(aws, "GET", f"/clients/{client_id}", "ana")
    assert read["statusCode"] == 200, read
    assert len(slept) == 3  # one backoff before each resend, not a spin

    slept.clear()
    faults.inject("BatchGetItem", 99, _unprocessed, status=200)
    refused = _call(aws, "GET", f"/clients/{client_id}", "ana")
    assert refused["statusCode"] == 503, refused
    assert json.loads(refused["body"])["error"]["code"] == "throttled"
    assert "Retry-After" in refused["headers"]
    assert faults.seen["BatchGetItem"] == batch.MAX_ATTEMPTS
    assert len(slept) == batch.MAX_ATTEMPTS - 1
    assert slept[-1] > 0
    assert all(0 <= s <= 1 for s in slept)


def test_batch_writes_back_off_on_unprocessed_items_then_raise_throttled(
    aws: Template, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.data import batch
    from salon.data.retry import Throttled

    slept: list[float] = []
    monkeypatch.setattr(batch.time, "sleep", slept.append)
    faults.inject(
        "BatchWriteItem",
        99,
        lambda request: {"UnprocessedItems": request["RequestItems"]},
        status=200,
    )
    with pytest.raises(Throttled):
        batch.write_batch(deletes=[("PRO#ana", "CLIENT#x")])
    assert faults.seen["BatchWriteItem"] == batch.MAX_ATTEMPTS
    assert len(slept) == batch.MAX_ATTEMPTS - 1


def test_every_route_documents_503_throttled_with_retry_after() -> None:
    from devstack.openapi import build_openapi

    paths = build_openapi()["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            throttled = operation["responses"].get("503")
            assert throttled is not None, (method, path)
            assert "Retry-After" in throttled.get("headers", {}), (method, path)
            if method != "get":
                assert "409" in operation["responses"], (method, path)


def test_a_throttled_idempotency_record_is_503_not_500(aws: Template, faults: Faults) -> None:
    """The idempotency records (Powertools' own DynamoDB client, D3) meet the same throttles: its error, which
    chains DynamoDB's, is the same documented 503, and the request wrote nothing."""
    faults.inject("PutItem", 99, error_body("ProvisionedThroughputExceededException"))
    refused = _call(
        aws, "POST", "/clients", "ana", {"name": "Bea", "phone": "+1 415 555 2671"}, {"idempotency-key": "key-12345678"}
    )
    assert refused["statusCode"] == 503, refused
    assert json.loads(refused["body"])["error"]["code"] == "throttled"
    assert faults.seen["PutItem"] == 6  # the table's bound and backoff (boto3's standard: 4 tries, up to ~7 s)
    faults.clear()
    assert json.loads(_call(aws, "GET", "/me/clients", "ana")["body"])["items"] == []
