"""The check catalogue is consistent: ids, categories, thresholds, engines, GX suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import expectations as ex
from schemas.forms import FORMS
from transforms import warehouse
from transforms.derived import views
from transforms.quality import SQL_CHECKS


def test_catalogue_ids_are_unique_and_categorised():
    """It declares each check once, in a Kahn category (or timeliness), with a threshold."""
    ids = [c.check_id for c in ex.CHECKS]
    assert len(ids) == len(set(ids))
    for check in ex.CHECKS:
        assert check.category in ex.CATEGORIES, check.check_id
        assert check.check_id.startswith(check.category[:4]), check.check_id
        assert check.threshold.pct is not None or check.threshold.count is not None


def test_every_check_has_exactly_one_engine():
    """GX checks carry expectations; every other check has a DuckDB/polars function."""
    duckdb_checks = {c.check_id for c in ex.CHECKS if not c.expectations}
    assert duckdb_checks == set(SQL_CHECKS)


def test_every_table_has_its_natural_key_checked_for_uniqueness():
    """Harmonised tables and analysis views alike."""
    tables = {f.table for f in FORMS.values()} | set(views.VIEW_NAMES)
    unique = {c.table for c in ex.CHECKS if c.subcategory == "uniqueness"}
    assert unique == tables


def _columns() -> dict[str, set[str]]:
    con = warehouse.connect(Path(":memory:"))
    tables = {
        f.table: {r[0] for r in con.execute(f"DESCRIBE {f.table}").fetchall()}
        for f in FORMS.values()
    }
    con.close()
    derived = set(views.DERIVED_COLUMNS)
    every = set().union(*tables.values())
    return tables | {name: every | derived for name in views.VIEW_NAMES}


@pytest.mark.parametrize("check", ex.gx_checks(), ids=lambda c: c.check_id)
def test_gx_expectations_name_existing_columns(check):
    """Each expectation's columns exist in its table (or its view's derived columns)."""
    columns = _columns()[check.table]
    for _name, kwargs in check.expectations:
        named = [kwargs["column"]] if "column" in kwargs else kwargs["column_list"]
        assert set(named) <= columns, (check.check_id, named)


def test_build_suites_gives_one_gx_suite_per_table_with_check_ids(tmp_path):
    """The suites are real GX 1.x suites; each expectation names its check in meta."""
    from transforms.quality.gx import ephemeral_context

    context = ephemeral_context(tmp_path / "docs")
    suites = ex.build_suites(context)
    assert set(suites) == {c.table for c in ex.gx_checks()}
    ketamine = suites["ketamine_doses"]
    assert ketamine.name == ex.suite_name("ketamine_doses")
    metas = {e.meta["check_id"] for e in ketamine.expectations}
    assert metas == {"comp_dose_known", "plau_dose_max", "plau_unique_ketamine_doses"}
    n_expectations = sum(len(s.expectations) for s in suites.values())
    assert n_expectations == sum(len(c.expectations) for c in ex.gx_checks())
