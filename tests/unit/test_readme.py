"""The README's configuration table stays true to the settings."""

import re
from pathlib import Path

from arqd.core.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def table_rows() -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", README, re.M)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_documented_with_its_default() -> None:
    rows = table_rows()
    defaults = Settings.from_env({})
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias.choices[0]  # type: ignore[union-attr]
        assert alias in rows, f"{alias} is missing from the README's configuration table"
        value = getattr(defaults, name)
        if value is not None:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            assert rows[alias] == f"`{shown}`", f"{alias}: README says {rows[alias]}"


def test_the_table_lists_no_setting_that_does_not_exist() -> None:
    known = {f.validation_alias.choices[0] for f in Settings.model_fields.values()}  # type: ignore[union-attr]
    assert set(table_rows()) <= known
