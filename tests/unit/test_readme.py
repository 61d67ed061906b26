"""The README's configuration table lists every setting, with its default."""

from pathlib import Path

from salon.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_with_its_default() -> None:
    text = README.read_text()
    for name, field in Settings.model_fields.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name.upper()}` |")), None)
        assert row is not None, f"{name.upper()} is missing from the README's configuration table"
        default = str(field.default) if field.default != "" else "(empty)"
        assert default in row, f"{name.upper()}: README does not show the default {default}"
