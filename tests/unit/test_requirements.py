"""The layer ships exactly the versions the tests ran against."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_layer_dependency_is_pinned_and_matches_the_dev_lock() -> None:
    layer = _pins(ROOT / "layers/domain/requirements.txt")
    dev = _pins(ROOT / "requirements-dev.txt")
    assert layer, "the layer has no requirements"
    for name, version in layer.items():
        assert version, f"{name} is not pinned in the layer"
        assert dev.get(name) == version, f"{name}: layer {version} but tests run {dev.get(name)}"


def test_the_layer_has_no_nested_python_folder() -> None:
    # SAM's BuildMethod python3.12 adds python/ itself.
    assert not (ROOT / "layers/domain/python").exists()
