"""The OpenAPI document links every creation to the routes that take what it created (salon.openapi_links),
so a generated client, and schemathesis' stateful phase, can chain POST /clients into the client's routes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devstack.openapi import build_openapi


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_openapi()


def _links(doc: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    return dict(doc["paths"][path][method]["responses"][status].get("links", {}))


def _targets(doc: dict[str, Any], links: dict[str, Any]) -> dict[str, dict[str, str]]:
    by_id = {op["operationId"]: f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m, op in ops.items()}
    return {by_id[link["operationId"]]: link["parameters"] for link in links.values()}


def test_a_new_client_links_to_every_client_route(doc: dict[str, Any]) -> None:
    targets = _targets(doc, _links(doc, "post", "/clients", "201"))
    client_routes = {
        f"{m.upper()} {p}"
        for p, ops in doc["paths"].items()
        for m in ops
        if p.startswith("/clients/{client_id}") and set(re.findall(r"{(\w+)}", p)) == {"client_id"}
    }
    assert client_routes <= set(targets)
    assert targets["GET /clients/{client_id}"] == {"client_id": "$response.body#/client_id"}
    assert targets["DELETE /studios/{studio_id}/clients/{client_id}"] == {
        "client_id": "$response.body#/client_id",
        "studio_id": "$response.body#/studio_id",
    }
    assert not any("{note_id}" in t for t in targets)  # a new client has no note yet


@pytest.mark.parametrize(
    ("path", "target", "new_id"),
    [
        ("/clients/{client_id}/notes", "PATCH /clients/{client_id}/notes/{note_id}", "note_id"),
        ("/clients/{client_id}/formulas", "PUT /clients/{client_id}/formulas/{formula_id}", "formula_id"),
        ("/clients/{client_id}/uploads", "DELETE /clients/{client_id}/uploads/{upload_id}", "upload_id"),
        (
            "/clients/{client_id}/appointments",
            "POST /clients/{client_id}/appointments/{appointment_id}/{action}",
            "appointment_id",
        ),
        (
            "/clients/{client_id}/packages",
            "POST /clients/{client_id}/packages/{package_id}/redemptions",
            "package_id",
        ),
        (
            "/clients/{client_id}/gift-cards",
            "POST /clients/{client_id}/gift-cards/{gift_card_id}/redemptions",
            "gift_card_id",
        ),
    ],
)
def test_a_new_item_links_to_its_routes_under_the_same_client(
    doc: dict[str, Any], path: str, target: str, new_id: str
) -> None:
    targets = _targets(doc, _links(doc, "post", path, "201"))
    assert targets[target] == {"client_id": "$request.path.client_id", new_id: f"$response.body#/{new_id}"}


def test_a_new_studio_links_to_its_routes_and_its_owners_membership(doc: dict[str, Any]) -> None:
    targets = _targets(doc, _links(doc, "post", "/studios", "201"))
    assert targets["GET /studios/{studio_id}"] == {"studio_id": "$response.body#/studio_id"}
    assert targets["GET /studios/{studio_id}/members/{pro_id}"] == {
        "pro_id": "$response.body#/owner_id",
        "studio_id": "$response.body#/studio_id",
    }


def test_every_link_names_an_operation_and_exactly_its_ids(doc: dict[str, Any]) -> None:
    by_id = {op["operationId"]: p for p, ops in doc["paths"].items() for op in ops.values()}
    count = 0
    for ops in doc["paths"].values():
        for op in ops.values():
            for response in op["responses"].values():
                for name, link in response.get("links", {}).items():
                    count += 1
                    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)
                    ids = {p for p in re.findall(r"{(\w+)}", by_id[link["operationId"]]) if p.endswith("_id")}
                    assert set(link["parameters"]) == ids
    assert count >= 30
