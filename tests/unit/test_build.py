"""`make build`: the artifacts `sam deploy` ships are built for python3.12 on arm64, with the pinned versions.

The build runs once per test session into a temporary folder (wheels come from
PyPI or pip's cache; a few seconds with a warm cache). It needs a Python 3.12
to compile the byte code, as `make build` does (tools.build.find_python312).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devstack.template import Template
from tests.unit.test_requirements import _pins
from tools.build import build, find_python312

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "build"
    build(out)
    return out


def _dist_versions(site: Path) -> dict[str, str]:
    versions = {}
    for info in site.glob("*.dist-info"):
        meta = (info / "METADATA").read_text(errors="replace")
        name = next(line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Name:"))
        version = next(line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Version:"))
        versions[name.lower().replace("_", "-").replace(".", "-")] = version
    return versions


def test_layer_holds_exactly_the_pinned_versions(built: Path) -> None:
    site = built / "DomainLayer" / "python"
    installed = _dist_versions(site)
    for name, version in _pins(ROOT / "layers/domain/requirements.txt").items():
        assert installed.get(name) == version, f"{name}: layer has {installed.get(name)}, pinned {version}"
    # Transitive dependencies are held to the versions the tests ran against.
    dev = _pins(ROOT / "requirements-dev.txt")
    for name, version in installed.items():
        if name in dev:
            assert dev[name] == version, f"{name}: layer has {version}, tests run {dev[name]}"


def test_compiled_extensions_are_cp312_aarch64_linux_builds(built: Path) -> None:
    site = built / "DomainLayer" / "python"
    extensions = list(site.rglob("*.so"))
    assert any(p.parent.name == "pydantic_core" for p in extensions), "pydantic_core's extension is missing"
    for ext in extensions:
        assert ext.name.endswith(".cpython-312-aarch64-linux-gnu.so") or ext.name.endswith(".abi3.so"), ext
    tags = [
        line.split(":", 1)[1].strip()
        for wheel in site.glob("*.dist-info/WHEEL")
        for line in wheel.read_text().splitlines()
        if line.startswith("Tag:")
    ]
    binary = [t for t in tags if not t.endswith("-none-any")]
    assert binary, "no platform wheels at all: the build did not target the Lambda platform"
    for tag in binary:
        assert tag.startswith(("cp312-", "cp38-abi3", "cp39-abi3", "cp310-abi3", "cp311-abi3")), tag
        assert "aarch64" in tag, tag
    # Nothing built for this machine slipped in.
    assert not list(site.rglob("*x86_64*.so"))
    assert not list(site.rglob("*cpython-311*"))


def test_functions_with_their_own_requirements_get_them_for_the_platform(built: Path) -> None:
    own = [fn for fn in Template().functions().values() if (fn.code_uri / "requirements.txt").exists()]
    for fn in own:
        site = built / fn.logical_id
        installed = _dist_versions(site)
        for name, version in _pins(fn.code_uri / "requirements.txt").items():
            assert installed.get(name) == version, f"{fn.logical_id}: {name} {installed.get(name)}, pinned {version}"
        for ext in site.rglob("*.so"):
            assert "x86_64" not in ext.name, ext
            assert "cpython-311" not in ext.name, ext
        assert not list(site.rglob("*x86_64*.so*")), "libraries built for this machine"


def test_layer_is_laid_out_as_sam_builds_it(built: Path) -> None:
    site = built / "DomainLayer" / "python"
    assert (site / "salon" / "__init__.py").exists()
    assert (site / "salon" / "services" / "fanout.py").exists()
    assert not (site / "python").exists(), "nested python/python: Lambda would not find the packages"
    assert not (site / "bin").exists()


# PEP 552: the pyc header's second word is a bit field; bit 0 set = hash-based, bit 1 set = check the source.
UNCHECKED_HASH = 0b01


def test_byte_code_is_shipped_for_python312_as_unchecked_hash(built: Path) -> None:
    # Every module has its 3.12 byte code next to it, and there is no other byte code (no 3.11, no stray pyc).
    sources = list(built.rglob("*.py"))
    for source in sources:
        assert (source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc").exists(), source
    pycs = list(built.rglob("*.pyc"))
    assert len(pycs) == len(sources)
    for pyc in pycs:
        assert pyc.parent.name == "__pycache__", pyc
        assert pyc.name.endswith(".cpython-312.pyc"), pyc
    ours = [built / "DomainLayer/python/salon/__init__.py", built / "DomainLayer/python/salon/api.py"]
    ours += [built / logical_id / fn.module_path.name for logical_id, fn in Template().functions().items()]
    for source in ours:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == UNCHECKED_HASH, pyc
    # Python 3.12 itself takes them as current: its magic number, and the hash of the source next to them.
    check = (
        "import importlib.util, sys\n"
        "for source in sys.argv[1:]:\n"
        "    pyc = importlib.util.cache_from_source(source)\n"
        "    data = open(pyc, 'rb').read()\n"
        "    assert data[:4] == importlib.util.MAGIC_NUMBER, pyc\n"
        "    assert data[8:16] == importlib.util.source_hash(open(source, 'rb').read()), pyc\n"
    )
    result = subprocess.run(
        [find_python312(), "-c", check, *map(str, ours)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_built_template_points_at_the_built_folders(built: Path) -> None:
    source = Template()
    doc = Template(built / "template.yaml")
    for logical_id, fn in doc.functions().items():
        assert fn.properties["CodeUri"] == logical_id
        assert (built / logical_id).is_dir()
        original = source.functions()[logical_id].module_path
        if original.exists():
            assert (built / logical_id / original.name).read_text() == original.read_text()
    assert doc.resources["DomainLayer"]["Properties"]["ContentUri"] == "DomainLayer"
    # Everything else is the source template, unchanged.
    for logical_id, res in source.resources.items():
        if res["Type"] not in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            assert doc.resources[logical_id] == res, logical_id
    assert yaml.safe_load((built / "template.yaml").read_text())["Transform"] == "AWS::Serverless-2016-10-31"


def test_built_template_passes_cfn_lint(built: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(built / "template.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_samconfig_has_dev_and_prod_with_only_template_parameters() -> None:
    import shlex
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    parameters = set(Template().doc["Parameters"])
    stacks = set()
    for env in ("dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        stacks.add(deploy["stack_name"])
        assert "CAPABILITY_IAM" in deploy["capabilities"]
        overrides = dict(pair.split("=", 1) for pair in shlex.split(deploy["parameter_overrides"]))
        assert set(overrides) <= parameters, set(overrides) - parameters
        assert overrides["Stage"] == env
    assert len(stacks) == 2, "dev and prod must be different stacks"
