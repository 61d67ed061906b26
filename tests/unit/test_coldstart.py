"""What each function's cold start does and does not do (its time is measured by ``make bench``, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.coldstart import child_environment
from devstack.template import ROOT, Template

TEMPLATE = Template(ROOT / "template.yaml")
FUNCTIONS = TEMPLATE.functions()

PROBE = r"""
import gc, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
getattr(module, sys.argv[2])
loader = sys.modules.get("pydantic.plugin._loader")
print(json.dumps({
    "gc_enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
    "plugins_scanned": loader is not None and loader._plugins is not None,
    "ulid": "ulid" in sys.modules,
    "asyncio": "asyncio" in sys.modules,
    "batch": "aws_lambda_powertools.utilities.batch" in sys.modules,
    "unused_powertools": sorted(m for m in sys.modules if m.startswith((
        "aws_lambda_powertools.event_handler.appsync", "aws_lambda_powertools.event_handler.bedrock",
        "aws_lambda_powertools.utilities.data_classes.appsync",
        "aws_lambda_powertools.utilities.data_classes.code_pipeline",
    ))),
}))
"""


@pytest.fixture(scope="module")
def cold_imports() -> dict[str, dict[str, object]]:
    env = child_environment(TEMPLATE)
    out = {}
    for name, spec in FUNCTIONS.items():
        run = subprocess.run(
            [sys.executable, "-c", PROBE, str(spec.module_path), spec.handler_name],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        )
        out[name] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_collector_runs_again_once_the_handler_is_loaded(cold_imports, name):
    """Paused while modules load (salon.coldstart), never left off: a warm container must still collect."""
    probe = cold_imports[name]
    assert probe["gc_enabled"] is True
    # What was loaded sits in the permanent generation, out of every later sweep.
    assert probe["frozen"] > 10_000


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_cold_start_skips_the_pydantic_plugin_scan_and_the_ulid_metadata_lookup(cold_imports, name):
    """PYDANTIC_DISABLE_PLUGINS (template Globals) spares the scan of every installed package's entry points;
    python-ulid reads its version from package metadata at import, so it loads with the first new id."""
    probe = cold_imports[name]
    assert probe["plugins_scanned"] is False
    assert probe["ulid"] is False


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_powertools_packages_load_only_what_the_function_uses(cold_imports, name):
    """event_handler's and data_classes' __init__ would import every resolver (AppSync's brings asyncio) and
    every event class; salon.coldstart.starting() has them load only the modules asked for."""
    probe = cold_imports[name]
    # Powertools' batch module imports asyncio itself (for its async processor): the stream and jobs functions.
    assert probe["asyncio"] is probe["batch"]
    assert probe["unused_powertools"] == []


NARROWED = r"""
import sys
from salon import coldstart
coldstart.starting()
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, AppSyncResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, SQSEvent, S3Event
import aws_lambda_powertools.event_handler as handlers
import aws_lambda_powertools.utilities.data_classes as events
assert handlers.api_gateway.APIGatewayHttpResolver is APIGatewayHttpResolver
assert content_types.APPLICATION_JSON == "application/json"
assert "AppSyncResolver" in handlers.__all__ and set(handlers.__all__) <= set(dir(handlers)) | {
    n for n in handlers.__all__ if getattr(handlers, n) is not None}
assert S3Event.__module__.endswith("s3_event") and SQSEvent.__module__.endswith("sqs_event")
try:
    handlers.NoSuchThing
except AttributeError:
    print("ok")
"""


def test_a_narrowed_package_still_gives_every_name_its_init_would():
    """Every name of the real __init__ (from its own modules, on first use), submodules, __all__, and an
    AttributeError for anything else."""
    run = subprocess.run(
        [sys.executable, "-c", NARROWED],
        env=child_environment(TEMPLATE),
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert run.stdout.strip() == "ok"
