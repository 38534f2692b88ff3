"""Pulls for Stata, SPSS and SAS: read back with their labels and the parquet pull's values."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import polars as pl
import pyreadstat
import pytest

from transforms.delivery import pull
from transforms.delivery.columns import column_docs
from transforms.delivery.errors import PullError

TABLE = "analysis_patients"  # text codes, booleans, integers with nulls, floats, dates
READERS = {
    "dta": pyreadstat.read_dta,
    "sav": pyreadstat.read_sav,
    "xpt": pyreadstat.read_xport,
}


@pytest.fixture
def parquet(con, tmp_path) -> pl.DataFrame:
    """The same rows pulled as parquet: the reference every other format must match."""
    return pl.read_parquet(pull.pull(con, TABLE, tmp_path / "ref.parquet").output)


def _as_written(frame: pl.DataFrame, fmt: str) -> pd.DataFrame:
    """The parquet values as the format holds them: booleans 0/1, integers as doubles,
    dates as dates, null text empty (Stata and SPSS have no missing text)."""
    casts = [pl.col(pl.Boolean).cast(pl.Float64), pl.col(pl.Int64, pl.Int32).cast(pl.Float64)]
    if fmt != "xpt":
        casts.append(pl.col(pl.String).fill_null(""))
    return frame.with_columns(casts).to_pandas()


@pytest.mark.parametrize("fmt", ["dta", "sav", "xpt"])
def test_pull_stats_file_reads_back_with_labels_and_the_parquet_values(con, parquet, tmp_path, fmt):
    """It writes the dictionary's variable labels, codes as labelled integers (not in SAS
    transport), and the same values as the parquet pull, row for row."""
    result = pull.pull(con, TABLE, tmp_path / f"patients.{fmt}")
    labelled = fmt != "xpt"
    options = {"apply_value_formats": True} if labelled else {}
    data, meta = READERS[fmt](str(result.output), **options)
    docs = column_docs(TABLE)

    assert meta.column_names == parquet.columns and len(data) == parquet.height
    assert meta.column_names_to_labels["age"] == "Age at inclusion, years"
    assert meta.column_names_to_labels["hads_d_baseline"] == "HADS-D at baseline, points, 0-21"
    assert all(meta.column_names_to_labels[n] == docs[n].variable_label() for n in data.columns)
    if labelled:
        assert meta.variable_value_labels["sex"] == {1: "F", 2: "M"}
        assert meta.variable_value_labels["depressed"] == {0: "no", 1: "yes"}
        assert list(meta.variable_value_labels["pain_diagnosis"].values())[:2] == [
            "neuropathic",
            "fibromyalgia",
        ]
        data[["sex", "pain_diagnosis"]] = data[["sex", "pain_diagnosis"]].astype(object)
        data["depressed"] = data["depressed"].map({"no": 0.0, "yes": 1.0})
    expected = _as_written(parquet, fmt)
    for name in ("sex", "pain_diagnosis"):
        data[name] = data[name].where(data[name].notna(), expected[name])  # null codes
    data["inclusion_date"] = pd.to_datetime(data["inclusion_date"])
    expected["inclusion_date"] = pd.to_datetime(expected["inclusion_date"])
    pd.testing.assert_frame_equal(data, expected, check_dtype=False, check_categorical=False)


def test_pull_dta_reads_in_pandas_with_categories_and_labels(con, parquet, tmp_path):
    """It reads in pandas.read_stata: coded columns as categories of the codes, labels kept."""
    out = pull.pull(con, TABLE, tmp_path / "p.dta").output
    frame = pd.read_stata(out)
    with pd.io.stata.StataReader(out) as reader:
        labels = reader.variable_labels()
    assert frame["sex"].astype(str).tolist() == parquet["sex"].to_list()
    assert list(frame["sex"].cat.categories) == ["F", "M"]
    assert frame["age"].tolist() == parquet["age"].to_list()
    assert labels["weight_kg"] == "Weight at inclusion, kg"
    assert frame["nprs_change"].isna().sum() == parquet["nprs_change"].null_count()


@pytest.mark.slow  # starts R
def test_pull_dta_reads_in_r_haven_with_its_labels(con, parquet, tmp_path):
    """It reads in R with haven (skipped, with a message, where R or haven is missing)."""
    rscript = shutil.which("Rscript")
    if rscript is None or subprocess.run([rscript, "-e", "library(haven)"]).returncode != 0:
        pytest.skip("R with haven is not installed (apt-get install r-cran-haven): R not tried")
    out = pull.pull(con, TABLE, tmp_path / "p.dta").output
    script = (
        f'library(haven); d <- read_dta("{out}"); '
        'cat(attr(d$age, "label"), "\\n", sep=""); '
        'cat(paste(as.character(as_factor(d$sex)), collapse=","), "\\n", sep=""); '
        'cat(format(sum(d$age), nsmall=0), "\\n", sep=""); '
        'cat(format(d$inclusion_date[1]), "\\n", sep="")'
    )
    done = subprocess.run([rscript, "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    label, sexes, age_sum, first_date = done.stdout.splitlines()
    assert label == "Age at inclusion, years"
    assert sexes.split(",") == parquet["sex"].to_list()
    assert int(age_sum) == parquet["age"].sum()
    assert first_date == str(parquet["inclusion_date"][0])


def test_pull_sav_renames_lineage_columns_and_says_so(con, tmp_path):
    """It writes _file_hash as lineage_file_hash (SPSS names cannot start with _), warns,
    and the card names the change."""
    result = pull.pull(con, "patients", tmp_path / "p.sav", lineage=True)
    _, meta = pyreadstat.read_sav(str(result.output), metadataonly=True)
    card = json.loads(result.card.read_text())
    assert "lineage_file_hash" in meta.column_names and "_file_hash" not in meta.column_names
    assert "sav names cannot start with '_': _file_hash is written as lineage_file_hash" in (
        result.warnings
    )
    assert card["sav"]["renamed"]["_run_id"] == "lineage_run_id"
    assert card["sav"]["value_labels"]["sex"] == {"1": "F", "2": "M"}


@pytest.mark.parametrize(
    ("out", "fmt", "message"),
    [
        ("x.xlsx", None, "x.xlsx: unknown extension .xlsx; pull writes parquet (.parquet), csv"),
        ("x.xlsx", "parquet", "unknown extension .xlsx"),
        ("x", None, "x has no extension: name the file parquet (.parquet), csv (.csv), dta"),
        ("x.dta", "sav", "x.dta ends in .dta but the format is sav"),
    ],
)
def test_pull_refuses_an_unknown_or_contradicting_extension(con, tmp_path, out, fmt, message):
    """It names the formats and writes nothing (no parquet file under an Excel name)."""
    with pytest.raises(PullError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pull.pull(con, "patients", tmp_path / out, fmt=fmt)
    assert not (tmp_path / out).exists()


def test_pull_format_option_writes_a_file_without_extension(con, tmp_path):
    """It takes --format for a name without an extension."""
    result = pull.pull(con, "patients", tmp_path / "patients_for_stata", fmt="dta")
    assert result.format == "dta" and pd.read_stata(result.output).shape[0] == result.rows
