"""While a joined pro's import runs, their not-yet-moved personal clients are read-only (409
import_in_progress), decided before anything else; reads still work."""

from __future__ import annotations

import json
from typing import Any

from devstack.functions import LambdaContext, load_handler
from devstack.gateway import http_event
from devstack.template import Template


def _call(
    template: Template, method: str, path: str, sub: str, body: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    for route in template.http_routes():
        match = route.regex.match(path)
        if route.method == method and match:
            handler = load_handler(template.functions()[route.function])
            params = dict(zip(route.params, match.groups(), strict=True))
            raw = json.dumps(body).encode() if body is not None else b""
            event = http_event(
                route,
                method,
                path,
                "",
                {"content-type": "application/json", **(headers or {})},
                raw,
                {"sub": sub},
                params,
            )
            result: dict[str, Any] = handler(event, LambdaContext(route.function))
            return result
    raise AssertionError(path)


def test_writes_to_a_personal_client_awaiting_import_are_409_and_reads_work(aws: Template) -> None:
    from salon.data.tx import s, update_item

    created = _call(aws, "POST", "/clients", "bob", {"name": "Ana", "phone": "+1 415 555 2671"})
    cid = json.loads(created["body"])["client_id"]
    # Bob joins a studio (what the join transaction writes on his profile); the import has not run.
    update_item(
        "PRO#bob",
        "PROFILE",
        "SET kind = :k, studio_id = :sid, #r = :role, membership_status = :a",
        values={":k": s("pro"), ":sid": s("01JD00000000000000000STUDI0"), ":role": s("provider"), ":a": s("active")},
        names={"#r": "role"},
    )
    edit = _call(aws, "PATCH", f"/clients/{cid}", "bob", {"name": "Ana B"}, {"if-match": '"1"'})
    assert edit["statusCode"] == 409
    assert json.loads(edit["body"])["error"]["code"] == "import_in_progress"
    block = _call(aws, "PUT", f"/clients/{cid}/block", "bob")
    assert block["statusCode"] == 409
    read = _call(aws, "GET", f"/clients/{cid}", "bob")
    assert read["statusCode"] == 200
    assert json.loads(read["body"])["book"] == "personal"
