"""OpenAPI ``links`` from every operation that creates something to the operations that take its id.

A client generated from the document (and schemathesis' stateful phase) learns from them that the
``client_id`` in ``POST /clients``' 201 is what ``GET /clients/{client_id}`` and every other
``{client_id}`` route take, that a note's ``note_id`` feeds the note routes, and so on. They are derived
from the routes themselves: a creation (a 201 or 202 with a JSON body) on ``.../<collection>`` links to
each operation whose path holds ``/<collection>/{x_id}``, ``x_id`` a field of the creation's body that
its own path does not name; every other id of that path comes from the request's path
(``$request.path.client_id``) or from the body (``$response.body#/studio_id``), or there is no link.
"""

from __future__ import annotations

import re
from typing import Any

# A field of a response that holds the id another path names differently.
_ALIASES = {"pro_id": ("pro_id", "owner_id")}
_PARAM_RE = re.compile(r"{([^}]+)}")
_METHODS = ("get", "put", "post", "delete", "patch")


def _body_properties(doc: dict[str, Any], response: dict[str, Any]) -> set[str]:
    schema = (response.get("content") or {}).get("application/json", {}).get("schema") or {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        schema = doc.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
    return set((schema.get("properties") or {}).keys())


def _source(doc: dict[str, Any], operation: dict[str, Any]) -> tuple[str, set[str]] | None:
    """The creation status of an operation and the fields of its body, when it creates something."""
    for code in ("201", "202"):
        response = operation.get("responses", {}).get(code)
        if response is not None:
            fields = _body_properties(doc, response)
            return (code, fields) if fields else None
    return None


def _expression(name: str, source_params: set[str], fields: set[str]) -> str | None:
    if name in source_params:
        return f"$request.path.{name}"
    for field in _ALIASES.get(name, (name,)):
        if field in fields:
            return f"$response.body#/{field}"
    return None


def add_links(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the links to ``doc`` (in place) and return it."""
    operations = [
        (path, method, op)
        for path, item in doc.get("paths", {}).items()
        for method, op in item.items()
        if method in _METHODS and isinstance(op, dict)
    ]
    for path, method, op in operations:
        source = _source(doc, op)
        if source is None:
            continue
        code, fields = source
        source_params = set(_PARAM_RE.findall(path))
        collection = path.rstrip("/").rsplit("/", 1)[-1]
        # The ids this operation created: fields of its body its own path does not name.
        created = {f for f in fields if f.endswith("_id") and f not in source_params}
        links: dict[str, Any] = {}
        for target_path, target_method, target in operations:
            if (target_path, target_method) == (path, method) or "operationId" not in target:
                continue
            params = _PARAM_RE.findall(target_path)
            ids = [p for p in params if p.endswith("_id")]
            if not any(f"/{collection}/{{{p}}}" in target_path for p in created):
                continue  # it names nothing this operation created
            expressions = {p: _expression(p, source_params, fields) for p in ids}
            if any(e is None for e in expressions.values()):
                continue  # an id this operation cannot supply
            links[target["operationId"]] = {
                "operationId": target["operationId"],
                "parameters": dict(sorted(expressions.items())),
            }
        if links:
            op["responses"][code]["links"] = dict(sorted(links.items()))
    return doc
