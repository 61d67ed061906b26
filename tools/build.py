"""Build the deployable artifacts as ``sam build`` lays them out, without Docker and without SAM.

    python -m tools.build [--out .aws-sam/build]

- ``<out>/DomainLayer/python/``: the layer's pinned wheels, fetched for the
  Lambda platform (python3.12 on arm64: ``manylinux*_aarch64`` up to glibc 2.34, ``cp312``)
  with pip's platform options, and the ``salon`` package. Transitive
  dependencies are held to the versions the tests run with
  (``requirements-dev.txt`` as pip constraints).
- ``<out>/<FunctionLogicalId>/``: each function's code folder, plus the
  wheels of its own ``requirements.txt`` when it has one.
- ``<out>/template.yaml``: the template with ``CodeUri``/``ContentUri``
  pointing at those folders, which ``sam deploy --template-file`` takes as is.

Only binary wheels are accepted (``--only-binary=:all:``), so a package
without a wheel for the platform fails the build instead of being compiled
for this machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / ".aws-sam" / "build"
# Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34) on Graviton: wheels for any manylinux up to
# glibc 2.34 run there (pip does not widen a manylinux_2_x platform to the older ones by itself).
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
PYTHON_VERSION = "3.12"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache", "requirements.txt")


def pip_install(requirements: Path, target: Path) -> None:
    """Install ``requirements`` into ``target`` as wheels for the Lambda platform."""
    target.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--upgrade",
        "--target",
        str(target),
        "-r",
        str(requirements),
        "-c",
        str(ROOT / "requirements-dev.txt"),
    ]
    subprocess.run(cmd, check=True)
    # pip's own bookkeeping for --target installs; Lambda never needs it.
    shutil.rmtree(target / "bin", ignore_errors=True)


def _load_template() -> dict[str, Any]:
    from devstack.template import load_template

    return load_template(ROOT / "template.yaml")


def build_layer(logical_id: str, props: dict[str, Any], out: Path) -> None:
    source = ROOT / props["ContentUri"]
    site = out / logical_id / "python"
    if (source / "requirements.txt").exists():
        pip_install(source / "requirements.txt", site)
    for child in sorted(source.iterdir()):
        if child.is_dir() and (child / "__init__.py").exists():
            shutil.copytree(child, site / child.name, ignore=IGNORE, dirs_exist_ok=True)
    props["ContentUri"] = logical_id


def build_function(logical_id: str, props: dict[str, Any], out: Path) -> None:
    source = ROOT / props["CodeUri"]
    dest = out / logical_id
    shutil.copytree(source, dest, ignore=IGNORE, dirs_exist_ok=True)
    if (source / "requirements.txt").exists():
        pip_install(source / "requirements.txt", dest)
    props["CodeUri"] = logical_id


def build(out: Path = DEFAULT_OUT) -> Path:
    """Build every layer and function of the template into ``out``; returns the built template's path."""
    doc = _load_template()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    builders = {"AWS::Serverless::LayerVersion": build_layer, "AWS::Serverless::Function": build_function}
    # Each artifact has its own folder, so they build side by side (the pip downloads dominate).
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(builders[res["Type"]], logical_id, res["Properties"], out)
            for logical_id, res in doc["Resources"].items()
            if res["Type"] in builders
        ]
        for future in futures:
            future.result()
    template = out / "template.yaml"
    # Intrinsics are written in their long form (``Fn::Sub``), which CloudFormation accepts.
    template.write_text(yaml.safe_dump(doc, sort_keys=False, width=120))
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="build folder (default .aws-sam/build)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    template = build(args.out.resolve())
    print(
        f"build: {template.relative_to(Path.cwd()) if template.is_relative_to(Path.cwd()) else template} "
        f"({time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
