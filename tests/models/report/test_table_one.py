"""Table 1 computed with polars equals ``tableone``'s, cell by cell (the library is the
reference: it took 10.9 s at a million patients, on every night the models refit)."""

from __future__ import annotations

import warnings

import polars as pl
import pytest

from models.report.table_one import (
    CATEGORICAL,
    NO_VALUES,
    SKEWED,
    table_one,
    table_one_rows,
)


def _tableone_cells(patients: pl.DataFrame, columns: list[str]) -> tuple[list[str], list[tuple]]:
    """tableone 0.9.6 called as the report called it before, as (heads, rows)."""
    from tableone import TableOne

    groups = {False: "HADS-D <= 7", True: "HADS-D >= 8"}
    frame = patients.select(
        *columns,
        pl.col("depressed").replace_strict(groups, default=None, return_dtype=pl.String),
    ).to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = TableOne(
            frame,
            columns=columns,
            categorical=[c for c in CATEGORICAL if c in columns],
            nonnormal=[c for c in SKEWED if c in columns],
            groupby="depressed",
            missing=True,
            overall=True,
        ).tableone
    heads = [str(c[1]) for c in table.columns]
    rows = [(v, str(level), *map(_worded, values)) for (v, level), values in table.iterrows()]
    return heads, rows


def _worded(cell: object) -> str:
    """tableone's cell as Table 1 words it: a measure with no value says so."""
    return NO_VALUES if str(cell) in ("nan (nan)", "nan [nan,nan]") else str(cell)


def _ours(patients: pl.DataFrame, columns: list[str]) -> tuple[list[str], list[tuple]]:
    groups, rows = table_one_rows(patients, columns, {c: c for c in columns})
    cells = [(r.variable, r.level, r.missing, *r.cells) for r in rows]
    return ["Missing", *groups], cells


def test_table_one_equals_tableone_on_the_simulated_study(study):
    patients = study.views["analysis_patients"]
    columns = ["age", "weight_kg", "nprs_baseline", "hads_d_baseline", *SKEWED, *CATEGORICAL]
    assert _ours(patients, columns) == _tableone_cells(patients, columns)


AWKWARD = pl.DataFrame(
    {
        # means and quartiles landing on .x5, a missing value, one patient alone in a group
        "age": [40.0, 41.0, None, 43.0, 44.5, 46.25, 50.0, 61.0],
        "total_dose_mg": [1.0, 2.0, 3.0, 4.0, 100.0, 7.0, None, 2.5],
        "n_administrations": [1, 1, 2, 2, 3, 12, 4, 4],
        "sex": ["F", "M", None, "F", "F", None, "M", "F"],
        "pain_diagnosis": ["crps", "other", "crps", "crps", "other", "crps", "crps", "other"],
        "depressed": [False, True, False, None, True, False, False, False],
    }
)


@pytest.mark.parametrize(
    "patients",
    [
        AWKWARD,
        AWKWARD.filter(pl.col("depressed").is_not_null()),  # every patient in a group
        AWKWARD.with_columns(depressed=pl.lit(False)),  # one group only
        AWKWARD.with_columns(depressed=pl.Series([True] + [False] * 7)),  # a group of one
        AWKWARD.with_columns(  # a measure nobody of a group has
            age=pl.when(pl.col("depressed")).then(None).otherwise("age"),
            total_dose_mg=pl.when(pl.col("depressed")).then(None).otherwise("total_dose_mg"),
        ),
    ],
    ids=["nulls and ties", "no unscored", "one group", "group of one", "a group without values"],
)
def test_table_one_equals_tableone_on_awkward_cases(patients):
    columns = ["age", "total_dose_mg", "n_administrations", "sex", "pain_diagnosis"]
    assert _ours(patients, columns) == _tableone_cells(patients, columns)


def test_table_one_values_by_hand():
    """The figures themselves, worked out by hand for the awkward cohort."""
    columns = ["age", "total_dose_mg", "sex"]
    groups, rows = table_one_rows(AWKWARD, columns, {c: c for c in columns})
    by_name = {(r.variable, r.level): (r.missing, *r.cells) for r in rows}
    assert groups == ["Overall", "HADS-D <= 7", "HADS-D >= 8"]
    assert by_name[("n", "")] == ("", "8", "5", "2")
    # age: 7 values, mean 325.75 / 7 = 46.54, SD sqrt(311.3 / 6) = 7.20
    assert by_name[("age, mean (SD)", "")][:2] == ("1", "46.5 (7.2)")
    # doses of the 5 non-depressed: 1, 3, 7, None, 2.5 -> median 2.75 (written 2.8), Q1 2.125
    assert by_name[("total_dose_mg, median [Q1,Q3]", "")][2] == "2.8 [2.1,4.0]"
    # sex: 2 of the 8 missing, shown as a level, percentages of each column's patients
    assert by_name[("sex, n (%)", "None")] == ("", "2 (25.0)", "2 (40.0)", "0 (0.0)")
    assert by_name[("sex, n (%)", "F")] == ("", "4 (50.0)", "2 (40.0)", "1 (50.0)")


def test_table_one_says_no_values_for_a_measure_a_group_lacks():
    """A column where every patient lacks a measure reads "no values", not "nan (nan)"."""
    lacking = AWKWARD.with_columns(age=pl.when(pl.col("depressed")).then(None).otherwise("age"))
    groups, rows = table_one_rows(lacking, ["age"], {"age": "age"})
    (age,) = [r for r in rows if r.variable == "age, mean (SD)"]
    assert groups[2] == "HADS-D >= 8" and age.cells[2] == NO_VALUES
    assert age.missing == "3" and age.cells[1] != NO_VALUES
    page = table_one(lacking)
    assert NO_VALUES in page and "nan (nan)" not in page


def test_table_one_html_carries_the_published_figure():
    page = table_one(AWKWARD)
    assert "<th>Missing</th><th>Overall</th><th>HADS-D &lt;= 7</th><th>HADS-D &gt;= 8</th>" in page
    assert "1 patients whose baseline HADS-D is not scored" in page
