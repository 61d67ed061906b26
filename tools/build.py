"""Build the deployable artifacts as ``sam build`` lays them out, without Docker and without SAM.

    python -m tools.build [--out .aws-sam/build] [--python312 /path/to/python3.12]

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

Every ``.py`` of the output is then compiled to ``__pycache__/*.cpython-312.pyc``
by a Python 3.12 interpreter (``--python312``, ``$PYTHON312``, this interpreter
when it is 3.12, ``python3.12`` on PATH, a pyenv 3.12). ``/opt`` and ``/var/task``
are read-only in Lambda, so without shipped byte code every cold start compiles
every module it imports from source. The pycs are unchecked-hash (PEP 552): they
do not depend on the mtimes a zip round trip keeps or loses, and the deployed
sources never change. No 3.12 interpreter fails the build: byte code that is
silently missing is a slower cold start nobody notices.
"""

from __future__ import annotations

import argparse
import os
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


def find_python312(override: str | None = None) -> str:
    """The Python 3.12 that compiles the byte code: ``override`` or ``$PYTHON312`` when given, else the first
    of this interpreter, ``python3.12`` on PATH and pyenv's 3.12 builds that runs and is 3.12 (pyenv's shim
    is on PATH even when 3.12 is not a selected version, and then fails)."""
    override = override or os.environ.get("PYTHON312")
    if override:
        candidates = [override]
    else:
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        found = [sys.executable, shutil.which("python3.12"), *pyenv.glob("versions/3.12*/bin/python3.12")]
        candidates = [str(path) for path in found if path]
    for candidate in candidates:
        check = [candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"]
        try:
            if subprocess.run(check, capture_output=True, check=False).returncode == 0:
                return candidate
        except OSError:  # not there, or not a program
            continue
    raise SystemExit(
        f"build: no Python 3.12 to compile the byte code Lambda loads (tried: {', '.join(candidates)}); "
        "install python3.12 or pass --python312 /path/to/python3.12 (or set PYTHON312)"
    )


def compile_bytecode(out: Path, python312: str) -> None:
    """Compile every module under ``out`` to unchecked-hash ``*.cpython-312.pyc`` (see the module docstring)."""
    cmd = [python312, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(out)]
    subprocess.run(cmd, check=True)


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


def build(out: Path = DEFAULT_OUT, python312: str | None = None) -> Path:
    """Build every layer and function of the template into ``out``; returns the built template's path."""
    python312 = find_python312(python312)  # before the slow part: a build that cannot finish fails first
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
    compile_bytecode(out, python312)
    template = out / "template.yaml"
    # Intrinsics are written in their long form (``Fn::Sub``), which CloudFormation accepts.
    template.write_text(yaml.safe_dump(doc, sort_keys=False, width=120))
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="build folder (default .aws-sam/build)")
    parser.add_argument("--python312", help="Python 3.12 interpreter that compiles the byte code (default: found)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    template = build(args.out.resolve(), args.python312)
    print(
        f"build: {template.relative_to(Path.cwd()) if template.is_relative_to(Path.cwd()) else template} "
        f"({time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
