"""The house keeps its shape: layers import downwards only, no cycles, no oversized module.

The layering rule (docs/architecture.md) is written as import-linter contracts in
pyproject.toml; import-linter reads every import, those inside functions included, so a
cycle cannot hide behind a deferred import.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cohortflow", "flows", "schemas", "transforms", "models", "simulator")
MAX_LINES = 500


def test_import_contracts_hold(monkeypatch, capsys):
    """It runs the contracts of pyproject.toml: layers, rooms of transforms and models,
    no cycles between the modules of a package."""
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    status = lint_imports(config_filename="pyproject.toml", no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert "BROKEN" not in report and "KEPT" in report


def _modules():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_source_module_is_short_enough_to_read(path):
    """It keeps every module under 500 lines (one concern a module)."""
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it"
