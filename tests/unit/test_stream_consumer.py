"""The stream consumer on its own: duplicate, reordered and late deliveries end in the same views,
a poison record is parked alone, and a client's views follow its assignees."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest

from devstack.functions import LambdaContext, load_handler
from devstack.template import Template

STUDIO = "STUDIO#01JD00000000000000000000ST"
_seq = itertools.count(1000)


def _image(client_id: str, version: int, assignees: list[str], name: str = "Ana") -> dict[str, Any]:
    image: dict[str, Any] = {
        "pk": {"S": f"CLIENT#{client_id}"},
        "sk": {"S": "PROFILE"},
        "kind": {"S": "client"},
        "client_id": {"S": client_id},
        "owner": {"S": STUDIO},
        "name": {"S": name},
        "name_folded": {"S": name.lower()},
        "phone": {"S": "+14155552671"},
        "marketing_consent": {"BOOL": False},
        "version": {"N": str(version)},
        "created_at": {"S": "2026-11-24T00:00:00.000Z"},
        "updated_at": {"S": "2026-11-24T00:00:00.000Z"},
        "created_by": {"S": "alice"},
    }
    if assignees:
        image["assignees"] = {"SS": assignees}
    return image


def _record(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    image = new or old
    assert image is not None
    data: dict[str, Any] = {
        "Keys": {"pk": image["pk"], "sk": image["sk"]},
        "SequenceNumber": str(next(_seq)),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old:
        data["OldImage"] = old
    if new:
        data["NewImage"] = new
    name = "MODIFY" if old and new else ("INSERT" if new else "REMOVE")
    return {
        "eventID": data["SequenceNumber"],
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": data,
        "eventSourceARN": "arn:aws:dynamodb:local",
    }


@pytest.fixture
def consumer(aws: Template) -> Any:
    handler = load_handler(aws.functions()["StreamFunction"])
    _put_studio({"bob": "provider", "cara": "provider", "dan": "provider"})  # a test may set other roles
    return lambda records: handler({"Records": records}, LambdaContext(function_name="StreamFunction"))


def _views(aws: Template) -> dict[tuple[str, str], tuple[int, str]]:
    """Every view and tombstone in the table: (pro, client) -> (version, kind)."""
    import boto3

    items = boto3.client("dynamodb", region_name="us-east-1").scan(
        TableName="studio-local-RecordsTable",
        ConsistentRead=True,  # the test's own read: strongly consistent
    )["Items"]
    out = {}
    for item in items:
        if item["pk"]["S"].startswith("PRO#") and item["kind"]["S"] in ("view", "gone"):
            out[(item["pk"]["S"], item["client_id"]["S"])] = (int(item["version"]["N"]), item["kind"]["S"])
    return out


def _history() -> list[dict[str, Any]]:
    cid = "01JD0000000000000000000001"
    other = "01JD0000000000000000000002"
    v1 = _image(cid, 1, ["bob"])
    v2 = _image(cid, 2, ["bob", "cara"], "Ana B")
    v3 = _image(cid, 3, ["cara", "dan"], "Ana C")
    o1 = _image(other, 1, ["bob"], "Olga")
    o2 = _image(other, 2, ["dan"], "Olga D")
    return [_record(None, v1), _record(None, o1), _record(v1, v2), _record(o1, o2), _record(v2, v3)]


def test_a_clean_run_gives_each_assignee_the_newest_view_and_tombstones_the_rest(aws: Template, consumer: Any) -> None:
    result = consumer(_history())
    assert result["batchItemFailures"] == []
    views = _views(aws)
    cid, other = "01JD0000000000000000000001", "01JD0000000000000000000002"
    assert views[("PRO#cara", cid)] == (3, "view")
    assert views[("PRO#dan", cid)] == (3, "view")
    assert views[("PRO#bob", cid)] == (3, "gone")
    assert views[("PRO#dan", other)] == (2, "view")
    assert views[("PRO#bob", other)] == (2, "gone")


def test_each_batch_twice_records_one_by_one_and_reordered_across_clients_end_the_same(
    aws: Template, consumer: Any
) -> None:
    consumer(_history())
    expected = _views(aws)
    # Same history delivered again, then record by record, then with the two clients interleaved differently.
    history = _history()
    consumer(copy.deepcopy(history))
    for record in history:
        consumer([record])
    by_client: dict[str, list[dict[str, Any]]] = {}
    for record in history:
        by_client.setdefault(record["dynamodb"]["Keys"]["pk"]["S"], []).append(record)
    a, b = by_client.values()
    consumer(b + a)
    assert _views(aws) == expected


def test_a_late_older_version_changes_nothing(aws: Template, consumer: Any) -> None:
    history = _history()
    consumer(history)
    expected = _views(aws)
    consumer([history[0], history[2]])  # v1 and v2 of the first client arrive again, late
    assert _views(aws) == expected


def test_a_poison_record_is_parked_alone_and_the_rest_applied(aws: Template, consumer: Any) -> None:
    import boto3

    from salon.settings import get_settings

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.get_queue_url(QueueName="studio-local-StreamFailureQueue")["QueueUrl"]
    get_settings.cache_clear()
    import os

    os.environ["STREAM_FAILURE_QUEUE_URL"] = queue
    try:
        poison = _record(None, {**_image("01JD0000000000000000000009", 1, ["bob"]), "kind": {"S": "no-such-kind"}})
        result = consumer([poison, *_history()])
    finally:
        os.environ.pop("STREAM_FAILURE_QUEUE_URL")
        get_settings.cache_clear()
    assert result["batchItemFailures"] == []
    assert _views(aws)[("PRO#cara", "01JD0000000000000000000001")] == (3, "view")
    parked = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(parked) == 1
    body = json.loads(parked[0]["Body"])
    assert body["record"]["dynamodb"]["Keys"]["pk"]["S"] == "CLIENT#01JD0000000000000000000009"


def test_a_failing_write_reports_the_record_and_a_retry_completes(
    aws: Template, consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.services import fanout

    calls = {"n": 0}
    real = fanout.DynamoFanoutRepository.write

    def flaky(self: Any, puts: Any, deletes: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("throttled")
        return real(self, puts, deletes)

    monkeypatch.setattr(fanout.DynamoFanoutRepository, "write", flaky)
    history = _history()
    result = consumer(history)
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert len(failed) == 1
    # Lambda retries from the first failed record on; the state converges.
    index = next(i for i, r in enumerate(history) if r["dynamodb"]["SequenceNumber"] == failed[0])
    assert consumer(history[index:])["batchItemFailures"] == []
    monkeypatch.setattr(fanout.DynamoFanoutRepository, "write", real)
    expected_after = _views(aws)
    consumer(history)
    assert _views(aws) == expected_after


def test_an_apprentice_gets_a_masked_view_and_a_provider_the_contact_details(aws: Template, consumer: Any) -> None:
    """The roles come from the studio item read in the same BatchGetItem as the views."""
    import boto3

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    _put_studio({"bob": "provider", "cara": "apprentice"})
    cid = "01JD0000000000000000000003"
    assert consumer([_record(None, _image(cid, 1, ["bob", "cara"]))])["batchItemFailures"] == []
    views = {
        pro: ddb.get_item(
            TableName="studio-local-RecordsTable",
            Key={"pk": {"S": f"PRO#{pro}"}, "sk": {"S": f"CLIENT#{cid}"}},
            ConsistentRead=True,
        )["Item"]
        for pro in ("bob", "cara")
    }
    assert views["bob"]["phone"]["S"] == "+14155552671"
    assert views["bob"]["masked"]["BOOL"] is False
    assert "phone" not in views["cara"]
    assert views["cara"]["masked"]["BOOL"] is True
    # Each view is keyed to its pro, in its pro's change feed.
    assert views["cara"]["gsi2pk"] != views["bob"]["gsi2pk"]
    assert {v["name"]["S"] for v in views.values()} == {"Ana"}


def test_a_view_re_keyed_for_another_pro_is_the_view_built_for_that_pro() -> None:
    """Fan-out serializes one view and re-keys it per pro: nothing else in a view may depend on the pro."""
    from salon.data.models import ClientProfile
    from salon.services.views import build_view, view_item_for

    profile = ClientProfile.from_raw_data(_image("01JD0000000000000000000004", 3, ["bob", "cara"]))
    for masked in (False, True):
        template = build_view(profile, "bob", masked=masked, changed_at_us=1_700_000_000_000_000).serialize()
        direct = build_view(profile, "cara", masked=masked, changed_at_us=1_700_000_000_000_000).serialize()
        assert view_item_for(template, "cara") == direct


def test_a_record_that_only_adds_to_history_pros_costs_no_call(
    aws: Template, consumer: Any, api_calls: list[str]
) -> None:
    """A pro's first note or sale on a client adds them to history_pros, which no view shows."""
    cid = "01JD0000000000000000000005"
    v1 = _image(cid, 1, ["bob", "cara"])
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    before = _views(aws)
    worked = copy.deepcopy(v1)
    worked["history_pros"] = {"SS": ["bob"]}
    api_calls.clear()
    assert consumer([_record(v1, worked)])["batchItemFailures"] == []
    assert [c for c in api_calls if c not in ("Scan",)] == []
    assert _views(aws) == before


def test_a_history_only_record_after_an_edit_in_the_same_batch_still_fans_out_the_edit(
    aws: Template, consumer: Any
) -> None:
    cid = "01JD0000000000000000000006"
    v1 = _image(cid, 1, ["bob"])
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    v2 = _image(cid, 2, ["bob"], "Ana Renamed")
    worked = copy.deepcopy(v2)
    worked["history_pros"] = {"SS": ["bob"]}
    assert consumer([_record(v1, v2), _record(v2, worked)])["batchItemFailures"] == []
    assert _views(aws)[("PRO#bob", cid)] == (2, "view")


def _put_studio(roles: dict[str, str], leaving: tuple[str, ...] = ()) -> None:
    """The studio item with its members' roles, and each member's item (``leaving`` ones as the leave leaves
    them: status leaving, out of ``member_roles``)."""
    import boto3

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for pro, role in [*roles.items(), *((p, "provider") for p in leaving)]:
        ddb.put_item(
            TableName="studio-local-RecordsTable",
            Item={
                "pk": {"S": STUDIO},
                "sk": {"S": f"MEMBER#{pro}"},
                "kind": {"S": "member"},
                "studio_id": {"S": STUDIO.split("#", 1)[1]},
                "pro_id": {"S": pro},
                "role": {"S": role},
                "status": {"S": "leaving" if pro in leaving else "active"},
            },
        )
    ddb.put_item(
        TableName="studio-local-RecordsTable",
        Item={
            "pk": {"S": STUDIO},
            "sk": {"S": "STUDIO"},
            "kind": {"S": "studio"},
            "studio_id": {"S": STUDIO.split("#", 1)[1]},
            "name": {"S": "Studio"},
            "owner_id": {"S": "bob"},
            "member_roles": {"M": {pro: {"S": role} for pro, role in roles.items()}},
        },
    )


def _view(pro: str, client_id: str) -> dict[str, Any]:
    import boto3

    return dict(
        boto3.client("dynamodb", region_name="us-east-1").get_item(
            TableName="studio-local-RecordsTable",
            Key={"pk": {"S": f"PRO#{pro}"}, "sk": {"S": f"CLIENT#{client_id}"}},
            ConsistentRead=True,
        )["Item"]
    )


def test_an_edit_of_a_client_with_one_pro_is_one_conditional_put_and_repeats_change_nothing(
    aws: Template, consumer: Any, api_calls: list[str]
) -> None:
    """The commonest edit (one pro, same owner, same assignees) replaces the view in place, without a read."""
    _put_studio({"bob": "provider"})
    cid = "01JD0000000000000000000007"
    v1, v2 = _image(cid, 1, ["bob"]), _image(cid, 2, ["bob"], "Ana Renamed")
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    edit = _record(v1, v2)
    api_calls.clear()
    assert consumer([edit])["batchItemFailures"] == []
    assert api_calls == ["TransactWriteItems"]  # the view's put and the member's check, in one call
    view = _view("bob", cid)
    assert (view["version"]["N"], view["name"]["S"], view["phone"]["S"]) == ("2", "Ana Renamed", "+14155552671")
    before = _views(aws)
    consumer([copy.deepcopy(edit)])  # delivered again
    consumer([_record(None, v1)])  # the creation, late
    assert _views(aws) == before
    assert _view("bob", cid)["name"]["S"] == "Ana Renamed"


def test_an_apprentices_masked_view_stays_masked_through_an_edit(aws: Template, consumer: Any) -> None:
    _put_studio({"bob": "provider", "cara": "apprentice"})
    cid = "01JD0000000000000000000008"
    v1, v2 = _image(cid, 1, ["cara"]), _image(cid, 2, ["cara"], "Ana Renamed")
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    assert consumer([_record(v1, v2)])["batchItemFailures"] == []
    view = _view("cara", cid)
    assert (view["version"]["N"], view["name"]["S"], view["masked"]["BOOL"]) == ("2", "Ana Renamed", True)
    assert "phone" not in view


def test_an_edit_after_a_demotion_is_masked_before_the_re_fan_reaches_the_view(aws: Template, consumer: Any) -> None:
    """Decision D31 (D28's window closed): the one-call put checks the member's item, so an edit made after a
    demotion never reaches the pro unmasked, even while their view is still the unmasked one."""
    _put_studio({"bob": "provider"})
    cid = "01JD0000000000000000000013"
    v1, v2 = _image(cid, 1, ["bob"]), _image(cid, 2, ["bob"], "Ana Renamed")
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    assert _view("bob", cid)["masked"]["BOOL"] is False
    _put_studio({"bob": "apprentice"})  # the demotion; the re-fan job has not run
    assert consumer([_record(v1, v2)])["batchItemFailures"] == []
    view = _view("bob", cid)
    assert (view["version"]["N"], view["masked"]["BOOL"]) == ("2", True)
    assert "phone" not in view


@pytest.mark.parametrize("assignees", [["bob"], ["bob", "cara"]], ids=["one pro", "two pros"])
@pytest.mark.parametrize("order", ["stream first", "job first"])
def test_an_edit_made_after_a_leave_never_reaches_the_leaving_pro(
    aws: Template, consumer: Any, assignees: list[str], order: str
) -> None:
    """SPEC "Leave": from the 202 on, nothing new reaches the pro, whatever order the stream and the job run
    in. The leave's transaction has made bob's member item ``leaving`` and taken him out of ``member_roles``;
    his assignment is the job's to remove. The edit (v2) is delivered before the job, or after it (the job
    has tombstoned bob's view and removed him, v3; the stream then delivers v2 late, then v3)."""
    import boto3

    others = {"cara": "provider"} if "cara" in assignees else {"amy": "admin"}
    _put_studio({"bob": "provider", **others})
    cid = "01JD0000000000000000000014"
    v1 = _image(cid, 1, assignees)
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    _put_studio(others, leaving=("bob",))
    v2 = _image(cid, 2, assignees, "Ana After The Leave")
    v3 = _image(cid, 3, [p for p in assignees if p != "bob"], "Ana After The Leave")
    if order == "job first":
        boto3.client("dynamodb", region_name="us-east-1").put_item(
            TableName="studio-local-RecordsTable",
            Item=fanout_tombstone("bob", cid, 3),
        )
        records = [_record(v1, v2), _record(v2, v3)]
        for record in records:  # one by one, and then together
            assert consumer([record])["batchItemFailures"] == []
        assert consumer(copy.deepcopy(records))["batchItemFailures"] == []
        assert _views(aws)[("PRO#bob", cid)] == (3, "gone")
    else:
        assert consumer([_record(v1, v2)])["batchItemFailures"] == []
        view = _view("bob", cid)
        assert (view["version"]["N"], view["name"]["S"]) == ("1", "Ana")  # as it was at the leave
    if "cara" in assignees:
        assert _view("cara", cid)["name"]["S"] == "Ana After The Leave"


def fanout_tombstone(pro: str, client_id: str, version: int) -> dict[str, Any]:
    from salon.services.fanout import tombstone

    return dict(tombstone(pro, client_id, version, 1_700_000_000_000_000).serialize())


def test_an_edit_after_a_demotion_masks_once_the_re_fan_has_masked_the_view(aws: Template, consumer: Any) -> None:
    """The in-place replacement only lands on a view masked as it guesses: once the re-fan job has masked a
    demoted pro's view, an edit is masked too (and a view not yet re-fanned is the re-fan's to mask)."""
    import boto3

    _put_studio({"bob": "provider"})
    cid = "01JD0000000000000000000010"
    v1, v2 = _image(cid, 1, ["bob"]), _image(cid, 2, ["bob"], "Ana Renamed")
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    _put_studio({"bob": "apprentice"})
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    masked = {k: v for k, v in _view("bob", cid).items() if k != "phone"} | {"masked": {"BOOL": True}}
    ddb.put_item(TableName="studio-local-RecordsTable", Item=masked)  # what the re-fan job writes
    assert consumer([_record(v1, v2)])["batchItemFailures"] == []
    view = _view("bob", cid)
    assert (view["version"]["N"], view["masked"]["BOOL"]) == ("2", True)
    assert "phone" not in view


def test_a_personal_clients_edit_replaces_its_pros_view(aws: Template, consumer: Any, api_calls: list[str]) -> None:
    cid = "01JD0000000000000000000011"
    v1, v2 = _image(cid, 1, ["bob"]), _image(cid, 2, ["bob"], "Ana Renamed")
    for image in (v1, v2):
        image["owner"] = {"S": "PRO#bob"}
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    api_calls.clear()
    assert consumer([_record(v1, v2)])["batchItemFailures"] == []
    assert api_calls == ["PutItem"]
    assert (_view("bob", cid)["version"]["N"], _view("bob", cid)["masked"]["BOOL"]) == ("2", False)


def test_a_failure_after_an_unassignment_in_the_same_batch_still_tombstones_the_unassigned_pro(
    aws: Template, consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda retries a stream batch from the lowest failed sequence number: the records before it count as
    done (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html). Batch
    [unassign A (1), edit (2)] where the fan-out's write fails once: after the retry from the reported
    record, A's view is a tombstone (coalesced at record 2 and retried from record 2 alone, A was lost)."""
    from salon.services import fanout

    _put_studio({"amy": "provider", "bob": "provider"})
    cid = "01JD0000000000000000000012"
    v1 = _image(cid, 1, ["amy", "bob"])
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    v2 = _image(cid, 2, ["bob"])
    v3 = _image(cid, 3, ["bob"], "Ana Renamed")
    batch = [_record(v1, v2), _record(v2, v3)]
    real = fanout.DynamoFanoutRepository.write
    calls = {"n": 0}

    def failing_once(self: Any, puts: Any, deletes: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("throttled")
        return real(self, puts, deletes)

    monkeypatch.setattr(fanout.DynamoFanoutRepository, "write", failing_once)
    failed = [f["itemIdentifier"] for f in consumer(batch)["batchItemFailures"]]
    assert len(failed) == 1
    index = next(i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] == failed[0])
    assert consumer(batch[index:])["batchItemFailures"] == []
    views = _views(aws)
    assert views[("PRO#amy", cid)] == (3, "gone")
    assert views[("PRO#bob", cid)] == (3, "view")


def test_a_late_creation_read_under_read_lag_never_puts_an_older_view_over_a_newer_one(
    aws: Template, consumer: Any
) -> None:
    """The fan-out's read decides whether a view is stale and its write is unconditional, so the read must be
    strongly consistent: an eventually consistent read may miss the latest writes
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html), find no
    view, and put the late v1 over v2. A personal client's late creation takes that read."""
    from devstack import faults

    faults.configure("read_lag_ms=5000")  # every write stays unseen by an eventually consistent read
    try:
        _late_creation_of_a_personal_client(consumer)
    finally:
        faults.configure()


def _late_creation_of_a_personal_client(consumer: Any) -> None:
    cid = "01JD0000000000000000000015"
    v1, v2 = _image(cid, 1, ["bob"]), _image(cid, 2, ["bob"], "Ana Renamed")
    for image in (v1, v2):
        image["owner"] = {"S": "PRO#bob"}
    assert consumer([_record(None, v1)])["batchItemFailures"] == []
    assert consumer([_record(v1, v2)])["batchItemFailures"] == []
    assert consumer([_record(None, v1)])["batchItemFailures"] == []  # the creation, delivered again late
    view = _view("bob", cid)
    assert (view["version"]["N"], view["name"]["S"]) == ("2", "Ana Renamed")
