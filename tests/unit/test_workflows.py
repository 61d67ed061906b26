"""The CI and deploy workflows do what the README says they do."""

from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def test_ci_runs_make_test_on_python_312_for_pushes_and_pull_requests() -> None:
    ci = _load("ci.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])
    (job,) = ci["jobs"].values()
    assert job["timeout-minutes"] <= 20
    setup = next(s for s in _steps(job) if str(s.get("uses", "")).startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "3.12"
    assert any(str(s.get("run", "")).startswith("make test") for s in _steps(job))
    assert ci["permissions"] == {"contents": "read"}


def test_deploy_assumes_a_role_by_oidc_after_the_tests_and_deploys_the_built_template() -> None:
    deploy = _load("deploy.yml")
    assert deploy["permissions"]["id-token"] == "write"
    assert deploy["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    job = deploy["jobs"]["deploy"]
    assert job["needs"] == "test"
    assert "environment" in job, "a GitHub environment gates each stage (reviewers for prod)"
    steps = _steps(job)
    creds = next(s for s in steps if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials"))
    assert "role-to-assume" in creds["with"]
    assert not any(k in creds["with"] for k in ("aws-access-key-id", "aws-secret-access-key")), "no stored keys"
    runs = [str(s.get("run", "")) for s in steps]
    build = next(i for i, r in enumerate(runs) if r.startswith("make build"))
    sam = next(i for i, r in enumerate(runs) if "sam deploy" in r)
    assert build < sam
    assert steps.index(creds) < sam
    assert "--config-env" in runs[sam]
    assert ".aws-sam/build/template.yaml" in runs[sam]
