"""The whole API's OpenAPI document: every HTTP function's routers in one resolver."""

from __future__ import annotations

import importlib.util
import itertools
import json
from typing import Any

from devstack.template import Template

_copies = itertools.count()


def build_openapi(template: Template | None = None) -> dict[str, Any]:
    from salon.api import make_resolver

    template = template or Template()
    routers = []
    for fn in template.functions().values():
        if not any(e["Type"] == "HttpApi" for e in fn.events.values()):
            continue
        # A fresh copy of the module: a router belongs to the resolver that includes it.
        spec = importlib.util.spec_from_file_location(f"openapi_{fn.logical_id}_{next(_copies)}", fn.module_path)
        assert spec
        assert spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        routers.append(module.router)
    app = make_resolver(*routers)
    from salon.openapi_links import add_links

    return add_links(json.loads(app.get_openapi_json_schema()))


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


SWAGGER_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Studio client records API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", persistAuthorization: true});</script>
</body></html>
"""
