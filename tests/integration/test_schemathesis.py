"""Schemathesis over every operation of the local stack's own OpenAPI document, with a real token.

Each operation gets ``SCHEMATHESIS_EXAMPLES`` generated requests (5 in CI; ``make soak`` raises it), half
of them with the path's ids replaced by real ones the caller owns (their studio, a client with a note), so
the requests reach the services rather than stopping at a 404. Every response must be no 5xx, carry the
documented content type, and match the documented schema for its status.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.integration.conftest import Api, Stack, unique_phone

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "5"))
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]
# (method, path template, status) of every answer seen, for the documented-status test below.
SEEN: set[tuple[str, str, int]] = set()


@pytest.fixture(scope="module")
def owner(stack: Stack) -> tuple[Api, dict[str, str]]:
    api = Api(stack, f"st-{uuid.uuid4().hex[:10]}")
    studio = api.post("/studios", json={"name": "Fuzzed", "country": "US", "time_zone": "UTC"})
    assert studio.status_code == 201, studio.text
    client = api.post("/clients", json={"name": "Fuzz Target", "phone": unique_phone()})
    assert client.status_code == 201, client.text
    cid = client.json()["client_id"]
    note = api.post(f"/clients/{cid}/notes", json={"body": "a note"})
    assert note.status_code == 201, note.text
    stack.drain()
    ids = {
        "studio_id": studio.json()["studio_id"],
        "client_id": cid,
        "note_id": note.json()["note_id"],
        "pro_id": api.sub,
    }
    return api, ids


def test_every_operation_answers_within_its_schema(stack: Stack, owner: tuple[Api, dict[str, str]]) -> None:
    import requests

    api, ids = owner
    doc = requests.get(f"{stack.url}/openapi.json", timeout=60).json()
    schema = schemathesis.openapi.from_dict(doc)
    token = api.session.headers["Authorization"]
    session = requests.Session()
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(), real=st.booleans())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def run(case: Any, real: bool) -> None:
            if real and case.path_parameters:
                for name in list(case.path_parameters):
                    if name in ids:
                        case.path_parameters[name] = ids[name]
            response = case.call(base_url=stack.url, session=session, headers={"Authorization": token})
            statuses[f"{case.method} {case.path} {response.status_code}"] += 1
            SEEN.add((case.method.lower(), case.path, response.status_code))
            if response.status_code == 204:
                # No content, whatever the document says its 204 carries (see the test below).
                assert not response.content, f"{case.method} {case.path}: a 204 with a body"
                case.validate_response(response, checks=[not_a_server_error])
            else:
                case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    cases = sum(statuses.values())
    print(f"schemathesis: {operations} operations, {cases} cases")
    assert operations >= 40
    assert cases >= operations * min(EXAMPLES, 2)
    assert not failures, "\n\n".join(failures)


def test_every_status_seen_is_documented(stack: Stack) -> None:
    """Runs after the test above (file order) on the statuses it saw."""
    import requests

    assert SEEN, "run with test_every_operation_answers_within_its_schema"
    doc = requests.get(f"{stack.url}/openapi.json", timeout=60).json()
    undocumented = sorted(
        f"{method.upper()} {path} {status}"
        for method, path, status in SEEN
        if str(status) not in doc["paths"][path][method].get("responses", {})
    )
    bodies_on_204 = sorted(
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and op.get("responses", {}).get("204", {}).get("content")
    )
    assert not undocumented, f"undocumented statuses: {undocumented}"
    assert not bodies_on_204, f"204s documented with a body: {bodies_on_204}"
