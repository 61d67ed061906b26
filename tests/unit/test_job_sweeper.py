"""Job chains survive a lost chunk: the sweeper (the jobs function's scheduled event) resends the next chunk of
a job that stopped moving, the member item shows the stall, and the job ends as if nothing had happened.

On AWS a chunk is lost when its message reaches the dead-letter queue after maxReceiveCount receives, and
throttled receives count ("Lambda event source mappings: Amazon SQS", "Configuring a queue to use with
Lambda": set the source queue's visibility timeout to at least six times the function's timeout and
maxReceiveCount to at least 5, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest

from devstack.functions import LambdaContext, load_handler
from devstack.template import LOCAL_REGION, LOCAL_STACK_NAME, Template
from tests.unit.test_import_in_progress import _call

SCHEDULED = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-12-04T18:00:00Z",
    "region": LOCAL_REGION,
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/studio-records-JobsFunctionSweep"],
    "detail": {},
}


def _ok(template: Template, method: str, path: str, sub: str, body: Any = None, **headers: str) -> Any:
    resp = _call(template, method, path, sub, body, headers or None)
    assert resp["statusCode"] < 300, resp
    return json.loads(resp["body"]) if resp.get("body") else None


@pytest.fixture
def queue(aws: Template, monkeypatch: pytest.MonkeyPatch) -> Any:
    from salon.settings import get_settings

    url = boto3.client("sqs", region_name=LOCAL_REGION).get_queue_url(QueueName=f"{LOCAL_STACK_NAME}-JobsQueue")
    monkeypatch.setenv("JOBS_QUEUE_URL", url["QueueUrl"])
    get_settings.cache_clear()
    yield url["QueueUrl"]
    get_settings.cache_clear()


def _take(url: str) -> list[str]:
    """Every message on the jobs queue, removed from it."""
    sqs = boto3.client("sqs", region_name=LOCAL_REGION)
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _run_all(url: str) -> int:
    from salon.services.jobs import run_job_message

    chunks = 0
    while bodies := _take(url):
        for body in bodies:
            run_job_message(body)
            chunks += 1
    return chunks


def _index_caught_up() -> None:
    """Wait out the local stack's index lag (``gsi_lag_ms``): on AWS the join's import starts through the
    stream, after the clients registered before it are in the book index."""
    import time

    from devstack import faults

    time.sleep(faults.rate("gsi_lag_ms") / 1000.0)


def _sweep(template: Template) -> dict[str, int]:
    handler = load_handler(template.functions()["JobsFunction"])
    result: dict[str, int] = handler(dict(SCHEDULED), LambdaContext("JobsFunction"))
    return result


def _registry() -> list[dict[str, Any]]:
    from salon.data import jobs_repo
    from salon.data.keys import JOB_SHARDS

    return [vars(job) for shard in range(JOB_SHARDS) for job in jobs_repo.running(shard)]


def test_an_import_chunk_lost_after_the_first_is_resent_by_the_sweeper_and_the_import_finishes(
    aws: Template, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon import clock
    from salon.services import imports, jobs

    monkeypatch.setattr(imports, "CHUNK", 4)
    studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    clients = [
        _ok(aws, "POST", "/clients", "bob", {"name": f"Own {i}", "phone": f"+1 212 555 {i:04d}"})["client_id"]
        for i in range(10)
    ]
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})

    jobs.enqueue("import", studio_id=studio_id, pro_id="bob")  # what the stream consumer does on the join
    (first,) = _take(queue)
    _index_caught_up()  # the chunk then reads all ten from the book index, and takes its four
    jobs.run_job_message(first)  # 4 clients move; the next chunk is enqueued...
    assert len(_take(queue)) == 1  # ...and lost (parked in the dead-letter queue after throttled receives)

    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["import"]["status"] == "running"
    assert member["import"]["imported"] == 4
    assert member["stalled"] is None
    stuck = _call(aws, "PATCH", f"/clients/{clients[-1]}", "bob", {"name": "Renamed"}, {"if-match": '"1"'})
    assert json.loads(stuck["body"])["error"]["code"] == "import_in_progress"

    assert _sweep(aws) == {"running": 1, "resent": 0}  # not stale yet: nothing resent
    assert _take(queue) == []
    monkeypatch.setattr(clock, "_offset_s", jobs.STALE_S + 1)
    assert _sweep(aws) == {"running": 1, "resent": 1}
    assert _sweep(aws) == {"running": 1, "resent": 0}  # the wait doubles after each resend

    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["stalled"]["job"] == "import"
    assert member["stalled"]["retries"] == 1

    # 4 more, the last 2, then the chunk that finds none left; and, while the book index (a GSI) still lists
    # clients just moved, a chunk that finds only those enqueues the next one without moving anyone (D40), so
    # how many chunks run depends on the index's lag, as on AWS: the outcome below is what is asserted.
    assert _run_all(queue) >= 3
    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["import"] == {"status": "done", "imported": 10, "merged": 0, "conflicts": 0}
    assert member["stalled"] is None
    assert _registry() == []  # the job is over: nothing left to sweep
    renamed = _call(aws, "PATCH", f"/clients/{clients[-1]}", "bob", {"name": "Renamed"}, {"if-match": '"2"'})
    assert renamed["statusCode"] == 200, renamed


def test_a_resent_chunk_that_was_only_slow_does_no_harm_and_the_job_ends_once(
    aws: Template, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeper cannot tell a lost chunk from a slow one: both copies run, and the import counts once."""
    from salon import clock
    from salon.services import imports, jobs

    monkeypatch.setattr(imports, "CHUNK", 4)
    studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    for i in range(6):
        _ok(aws, "POST", "/clients", "bob", {"name": f"Own {i}", "phone": f"+1 212 555 {i:04d}"})
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})
    jobs.enqueue("import", studio_id=studio_id, pro_id="bob")
    (first,) = _take(queue)
    monkeypatch.setattr(clock, "_offset_s", jobs.STALE_S + 1)
    assert _sweep(aws)["resent"] == 1
    slow = _take(queue)
    assert slow == [first]  # the very same chunk, twice on its way
    jobs.run_job_message(first)
    jobs.run_job_message(first)
    _run_all(queue)
    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["import"] == {"status": "done", "imported": 6, "merged": 0, "conflicts": 0}
    assert _registry() == []


def test_an_import_the_book_index_does_not_show_yet_moves_every_client_before_it_is_done(
    aws: Template, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The book index is a GSI, eventually consistent on AWS ("Global secondary indexes: read consistency",
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads): when it lists none of
    the pro's clients yet, the import finds them through the pro's own views. Those keep naming the pro's book
    until the stream rewrites them, so the first views are of clients already moved: the import goes past them
    and moves every client before it is done (before: it checked only the first chunk's worth of views, found
    them all moved and marked the import done with six of the eight clients left in the personal book)."""
    from devstack import ddb_faults, faults
    from salon.services import imports, jobs

    monkeypatch.setattr(imports, "CHUNK", 2)
    faults.configure("default,gsi_lag_ms=60000")  # the index shows nothing of this test's writes
    print(f"DEVSTACK_FAULTS seed={faults.seed()} ({faults.describe()})")
    try:
        studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
            "studio_id"
        ]
        clients = [
            _ok(aws, "POST", "/clients", "bob", {"name": f"Own {i}", "phone": f"+1 212 555 {i:04d}"})["client_id"]
            for i in range(8)
        ]
        code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
        _ok(aws, "POST", "/studios/join", "bob", {"code": code})
        jobs.enqueue("import", studio_id=studio_id, pro_id="bob")
        _run_all(queue)
        member = _member_out(studio_id, "bob")
    finally:
        faults.configure()
        ddb_faults.reset()
    assert member["import"] == {"status": "done", "imported": 8, "merged": 0, "conflicts": 0}
    for client_id in clients:
        moved = _call(aws, "GET", f"/clients/{client_id}", "olga")  # the studio's admin sees it in the book
        assert moved["statusCode"] == 200, (client_id, moved)


def test_a_lost_cascade_chunk_is_resent_and_the_deleted_client_goes(
    aws: Template, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon import clock
    from salon.data.models import TableItem
    from salon.services import jobs, maintenance

    monkeypatch.setattr(maintenance, "PAGE", 2)
    cid = _ok(aws, "POST", "/clients", "bob", {"name": "Ana", "phone": "+1 415 555 2671"})["client_id"]
    for i in range(3):
        _ok(aws, "POST", f"/clients/{cid}/notes", "bob", {"body": f"note {i}"})
    _ok(aws, "DELETE", f"/clients/{cid}", "bob")
    jobs.enqueue("delete_client", client_id=cid)  # the stream consumer, on the deleted mark
    jobs.run_job_message(_take(queue)[0])  # one page of the collection goes; the next chunk is lost
    assert len(_take(queue)) == 1
    monkeypatch.setattr(clock, "_offset_s", jobs.STALE_S + 1)
    assert _sweep(aws)["resent"] == 1
    _run_all(queue)
    assert list(TableItem.query(f"CLIENT#{cid}", consistent_read=True)) == []
    assert _registry() == []


def test_the_local_stack_fires_the_jobs_sweep_on_its_clock_as_eventbridge_would(aws: Template, queue: str) -> None:
    """The template's ``Schedule`` event (``rate(5 minutes)``) reaches the jobs function locally: one period after
    the stack starts, with EventBridge's scheduled event, and again a period later (devstack.schedules;
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html)."""
    from devstack import clock as stack_clock
    from devstack.schedules import Scheduler

    handler = load_handler(aws.functions()["JobsFunction"])
    answers: list[Any] = []
    events: list[dict[str, Any]] = []

    class Pool:
        def invoke(self, event: dict[str, Any]) -> Any:
            events.append(event)
            answers.append(handler(event, LambdaContext("JobsFunction")))

    scheduler = Scheduler(threading.Event())
    jobs_fn = aws.functions()["JobsFunction"]
    for name, event in jobs_fn.events.items():
        if event["Type"] == "Schedule":
            scheduler.add(jobs_fn.logical_id, name, event["Properties"], Pool())
    start = stack_clock.now()
    assert scheduler.fire_due(start + 299) == 0
    assert scheduler.fire_due(start + 301) == 1
    assert scheduler.fire_due(start + 302) == 0
    assert scheduler.fire_due(start + 605) == 1
    assert [e["detail-type"] for e in events] == ["Scheduled Event", "Scheduled Event"]
    assert events[0]["source"] == "aws.events"
    assert events[0]["resources"][0].startswith("arn:aws:events:")
    assert answers == [{"running": 0, "resent": 0}] * 2  # the sweep ran (nothing to resend)


def test_a_replayed_stream_record_starts_the_job_twice_and_it_runs_once(
    aws: Template, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda delivers a stream record at least once (a retried batch replays records already handled): the
    import it starts is enqueued twice, both chains run, and the member's counts are those of one import."""
    from salon.services import imports, jobs
    from salon.services.stream import handle_record

    monkeypatch.setattr(imports, "CHUNK", 3)
    studio_id = _ok(aws, "POST", "/studios", "olga", {"name": "Studio", "country": "US", "time_zone": "UTC"})[
        "studio_id"
    ]
    for i in range(5):
        _ok(aws, "POST", "/clients", "bob", {"name": f"Own {i}", "phone": f"+1 212 555 {i:04d}"})
    code = _ok(aws, "POST", f"/studios/{studio_id}/invites", "olga", {"role": "provider"})["code"]
    _ok(aws, "POST", "/studios/join", "bob", {"code": code})
    keys = {"pk": {"S": f"STUDIO#{studio_id}"}, "sk": {"S": "MEMBER#bob"}}
    image = {**keys, "status": {"S": "active"}, "import_status": {"S": "pending"}}
    record = {
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": keys, "NewImage": image, "SequenceNumber": "100", "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }
    handle_record(record, {})
    handle_record(record, {})  # the replay
    bodies = _take(queue)
    assert [json.loads(b)["kind"] for b in bodies] == ["import", "import"]
    for body in bodies:  # both chains run, interleaved
        jobs.run_job_message(body)
    _run_all(queue)
    member = _ok(aws, "GET", f"/studios/{studio_id}/members/bob", "olga")
    assert member["import"] == {"status": "done", "imported": 5, "merged": 0, "conflicts": 0}
    assert _registry() == []


def _member_out(studio_id: str, pro_id: str) -> dict[str, Any]:
    from salon.data.models import Member, TableItem
    from salon.services.studios import member_out

    item = TableItem.get(f"STUDIO#{studio_id}", f"MEMBER#{pro_id}", consistent_read=True)
    assert isinstance(item, Member)
    return member_out(item).model_dump(mode="json", by_alias=True)


def test_a_lost_departure_chunk_is_resent_and_the_member_shows_the_stall_until_it_moves(
    aws: Template, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A departure's chunks carry a cursor: the sweep resends the lost one, cursor included, and the leave
    finishes with each client split once."""
    from salon import clock
    from salon.services import departures, jobs
    from tests.unit import test_departures as td

    monkeypatch.setattr(departures, "CHUNK", 1)
    ddb = boto3.client("dynamodb", region_name=LOCAL_REGION)
    member = {
        "pk": td._s(f"STUDIO#{td.SID}"),
        "sk": td._s(f"MEMBER#{td.PRO}"),
        "kind": td._s("member"),
        "studio_id": td._s(td.SID),
        "pro_id": td._s(td.PRO),
        "role": td._s("provider"),
        "status": td._s("leaving"),
        "joined_at": td._s("2024-01-01T00:00:00.000Z"),
        "kept_by_pro": {"N": "0"},
        "kept_by_studio": {"N": "0"},
        "left_with_pro": {"N": "0"},
    }
    td._put(ddb, member)
    td._put(
        ddb,
        {
            "pk": td._s(f"PRO#{td.PRO}"),
            "sk": td._s("PROFILE"),
            "kind": td._s("pro"),
            "membership_status": td._s("leaving"),
        },
    )
    td._client(ddb, td.OWN, "Olga Own", "+14155550101", [td.PRO])
    td._client(ddb, td.SHARED, "Sam Shared", "+14155550102", [td.PRO, td.CARA])

    jobs.enqueue("departure", studio_id=td.SID, pro_id=td.PRO)  # the stream consumer, on `leaving`
    jobs.run_job_message(_take(queue)[0])  # the first client is split
    (lost,) = _take(queue)
    assert json.loads(lost)["after"]  # the next chunk's cursor, never delivered
    monkeypatch.setattr(clock, "_offset_s", jobs.STALE_S + 1)
    assert _sweep(aws)["resent"] == 1
    shown = _member_out(td.SID, td.PRO)  # what GET /studios/{sid}/members/{pro} answers
    assert shown["stalled"]["job"] == "departure"
    assert shown["stalled"]["retries"] == 1
    (resent,) = _take(queue)
    assert json.loads(resent) == json.loads(lost)  # the same chunk, cursor included
    jobs.run_job_message(resent)
    assert _member_out(td.SID, td.PRO)["stalled"] is None  # moving again
    _run_all(queue)
    state = td._state(ddb)
    assert state["status"] == "left"
    assert state["counters"] == {"kept_by_pro": "2", "kept_by_studio": "1", "left_with_pro": "1"}
    assert state["personal"] == ["Olga Own", "Sam Shared"]
    assert [job for job in _registry() if job["kind"] == "departure"] == []
