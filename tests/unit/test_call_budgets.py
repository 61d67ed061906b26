"""Every route's DynamoDB calls against its recorded budget (bench/budgets.json): deterministic counts,
not timings. The requests are the benchmark's (bench/scenario.py): a studio seeded through the routes,
each route called once, warm, with every botocore call counted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from bench.scenario import Measured, load_budgets, measure_routes
from bench.world import World
from devstack.template import Template

READ_TARGET, WRITE_TARGET = 2, 3


@pytest.fixture(scope="module")
def measured() -> Iterator[dict[str, Measured]]:
    """Measured with the local stack's faults off: a budget is the design's count of calls, and a throttle, an
    UnprocessedKeys answer or a transaction conflict adds the retry's calls (on AWS too), so counting with
    faults on would measure the dice. The retries themselves are tested with faults on elsewhere."""
    import os

    from devstack import faults
    from salon.settings import get_settings

    saved = dict(os.environ)
    faults.configure("off")
    try:
        with mock_aws():
            yield measure_routes(World())
    finally:
        faults.configure()
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def test_every_route_has_a_budget_and_every_budget_a_route() -> None:
    routes = {r.route_key for r in Template().http_routes()}
    assert set(load_budgets()) == routes


@pytest.mark.parametrize("route", sorted(load_budgets()))
def test_the_route_stays_within_its_budget(measured: dict[str, Measured], route: str) -> None:
    m = measured[route]
    assert m.status < 300, f"{route} answered {m.status}: its count would not be a real request's"
    assert "Scan" not in m.ddb
    assert len(m.ddb) <= load_budgets()[route], f"{route}: {m.ddb}"
    assert len(m.ddb) <= (READ_TARGET if route.startswith("GET ") else WRITE_TARGET), f"{route}: {m.ddb}"


def test_the_two_hottest_reads_are_one_call_and_the_log_access_first(measured: dict[str, Measured]) -> None:
    assert measured["GET /me/clients"].ddb == ["Query"]
    assert measured["GET /clients/{client_id}"].ddb == ["BatchGetItem"]
    # Decision D36: the small items decide access first; the record is read only once it is granted.
    assert measured["GET /clients/{client_id}/log"].ddb == ["BatchGetItem", "Query"]
