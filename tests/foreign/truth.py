"""A foreign centre loaded from its exports and compared with its truth, value by value.

The truths are written by hand beside the exports (tests/data/foreign/<style>/truth/, see
its README): canonical columns, the centre's local ids, doses in the unit the warehouse
keeps them in (mg, or mg/kg when the centre gave them per kg), and the first-year dose
in mg the analysis views compute.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from schemas.forms import FORMS
from tests.conftest import TEST_KEY
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.staging.mapping import load_centre_mapping
from transforms.staging.prepare import prepare_centre
from transforms.staging.pseudonym import patient_key

FOREIGN = Path(__file__).parents[1] / "data" / "foreign"
STYLES = sorted(p.name for p in FOREIGN.iterdir() if (p / "truth").is_dir())
# weights converted from pounds are rounded to 2 decimals in the truth (README)
TOLERANCE = {"weight_kg": 0.005, "first_year_dose_mg": 0.001}


def load_style(style: str, mapping_text: str, ws: Path, centre: str = "F01"):
    """A workspace holding the style's exports as centre ``centre`` and its mapping, loaded
    by the night's own functions; returns the open connection (views refreshed)."""
    shutil.copytree(FOREIGN / style / "inbox", ws / "inbox" / centre)
    (ws / "centres").mkdir(parents=True)
    path = ws / "centres" / f"{centre}.yaml"
    path.write_text(mapping_text, encoding="utf-8")
    mapping = load_centre_mapping(path)
    con = warehouse.connect(ws / "warehouse.duckdb")
    warehouse.start_run(con, "foreign", kind="night")
    reports = load_prepared(con, prepare_centre(ws / "inbox", mapping, set()), "foreign", TEST_KEY)
    snapshot = warehouse.snapshot_id(con)
    warehouse.refresh_views(con, snapshot, whole=True)
    return con, reports


def differences(con, style: str, centre: str = "F01") -> list[str]:
    """Every way the warehouse differs from the style's truth (none: it equals it)."""
    found = []
    for path in sorted((FOREIGN / style / "truth").glob("*.csv")):
        if path.stem == "expected_quarantine":
            continue
        table, columns, key = _compared(path.stem)
        want = pl.read_csv(path, infer_schema=False).with_columns(
            patient_key=pl.col("patient_id").map_elements(
                lambda p: patient_key(TEST_KEY, centre, p), return_dtype=pl.String
            )
        )
        got = con.sql(f"SELECT * FROM {table} WHERE centre_id = ?", params=[centre]).pl()
        got = got.select("patient_key", *[pl.col(s).alias(c) for c, s in columns.items()])
        found += _compare(path.stem, want.select(got.columns), got, key)
    return found


def _compared(name: str) -> tuple[str, dict[str, str], list[str]]:
    if name == "dose_mg_total":
        return "analysis_patients", {"first_year_dose_mg": "total_dose_mg"}, ["patient_key"]
    form = FORMS[name]
    return form.table, {c: c for c in form.columns() if c != "patient_id"}, list(form.key)


def _compare(name: str, want: pl.DataFrame, got: pl.DataFrame, key: list[str]) -> list[str]:
    as_text = [pl.col(c).cast(pl.String).str.replace(r"\.0$", "") for c in got.columns]
    want, got = want.select(as_text), got.select(as_text)
    if want.height != got.height:
        return [f"{name}: {got.height} rows in the warehouse, {want.height} in the truth"]
    both = want.join(got, on=key, how="full", suffix="_wh", coalesce=True)
    found = []
    for c in (c for c in got.columns if c not in key):
        a, b = both[c], both[f"{c}_wh"]
        wrong = a.is_null() != b.is_null()
        if c in TOLERANCE or c.startswith("dose"):
            gap = (a.cast(pl.Float64) - b.cast(pl.Float64)).abs()
            wrong |= (gap > TOLERANCE.get(c, 1e-6)).fill_null(False)
        else:
            wrong |= (a != b).fill_null(False)
        if wrong.any():
            example = both.filter(wrong).select(*key, c, f"{c}_wh").head(2).rows()
            found.append(f"{name}.{c}: {wrong.sum()} values differ, e.g. {example}")
    return found
