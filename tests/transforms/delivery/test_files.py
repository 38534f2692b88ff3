"""Pulled files: spreadsheet-safe CSV in both dialects, parquet that keeps its types."""

from __future__ import annotations

import datetime as dt
import json
import math

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import warehouse
from transforms.delivery import files, pull
from transforms.delivery.files import spreadsheet_safe


def test_spreadsheet_safe_neutralises_formulas_and_keeps_numbers():
    """It prefixes text a spreadsheet would evaluate; negative numbers stay numbers."""
    frame = pl.DataFrame(
        {
            "text": ["=1+1", "+A", "-x", "@SUM(A1)", "\tcmd", "ok", "a-b"],
            "n": [-3, 1, 2, 3, 4, 5, 6],
            "x": [-2.5, 0.1, 1e-7, 2.0, 3.0, 4.0, 5.0],
            "day": [dt.date(2026, 1, 2)] * 7,
        }
    )
    safe = spreadsheet_safe(frame)
    assert safe["text"].to_list() == ["'=1+1", "'+A", "'-x", "'@SUM(A1)", "'\tcmd", "ok", "a-b"]
    assert safe["n"].to_list() == [-3, 1, 2, 3, 4, 5, 6]


def test_write_csv_is_spreadsheet_safe_in_both_dialects(tmp_path):
    """It writes neutralised text, plain negative numbers, ISO dates; fr uses ; and 2,5."""
    con = warehouse.connect(tmp_path / "tiny.duckdb")
    for n, (centre, weight) in enumerate([("=1+1", -3.5), ("+A", 70.25), ("-x", 80.0)]):
        con.execute(
            "INSERT INTO patients VALUES (?, ?, 'F', ?, NULL, ?, DATE '2026-01-02', 'h', 1, 'r')",
            [f"p{n}", centre, 40 - 50 * (n == 0), weight],
        )
    columns = ["centre_id", "age", "weight_kg", "inclusion_date"]
    plain = pull.pull(con, "patients", tmp_path / "p.csv", columns=columns)
    fr = pull.pull(con, "patients", tmp_path / "fr.csv", csv_dialect="fr", columns=columns)

    assert plain.output.read_text().splitlines() == [
        "centre_id,age,weight_kg,inclusion_date",
        "'=1+1,-10,-3.5,2026-01-02",
        "'+A,40,70.25,2026-01-02",
        "'-x,40,80,2026-01-02",
    ]
    assert fr.output.read_text().splitlines() == [
        "centre_id;age;weight_kg;inclusion_date",
        "'=1+1;-10;-3,5;2026-01-02",
        "'+A;40;70,25;2026-01-02",
        "'-x;40;80;2026-01-02",
    ]
    card = json.loads(fr.card.read_text())
    assert card["csv"]["separator"] == ";" and card["csv"]["decimal_mark"] == ","
    assert any("not closed by a completed run" in w for w in fr.warnings)  # no run at all
    con.close()


def test_write_parquet_reads_back_with_its_types(con, tmp_path):
    """It keeps dates as dates and integers (even with nulls) as integers in DuckDB and Arrow."""
    out = pull.pull(con, "analysis_patients", tmp_path / "ap.parquet").output
    described = {r[0]: r[1] for r in duckdb.sql(f"DESCRIBE SELECT * FROM '{out}'").fetchall()}
    assert described["inclusion_date"] == "DATE"
    assert described["age"] == described["nprs_one_year"] == "BIGINT"
    assert described["weight_kg"] == "DOUBLE" and described["depressed"] == "BOOLEAN"

    schema = pq.read_schema(out)
    assert schema.field("inclusion_date").type == pa.date32()
    assert schema.field("nprs_one_year").type == pa.int64()
    frame = pd.read_parquet(out, dtype_backend="pyarrow")
    assert str(frame["nprs_one_year"].dtype) == "int64[pyarrow]"
    assert str(frame["inclusion_date"].dtype) == "date32[day][pyarrow]"
    assert pd.read_parquet(out)["age"].dtype == "int64"
    first = con.execute("SELECT age, inclusion_date FROM patients ORDER BY patient_key LIMIT 1")
    assert tuple(frame.iloc[0][["age", "inclusion_date"]]) == first.fetchone()


def test_write_csv_writes_floats_at_their_stored_precision_in_both_dialects(tmp_path):
    """It writes a score left by arithmetic one step below 19.53957 (19.539569999999998,
    the issue's example) as 19.53957 and 19,53957, read back within a double's precision;
    values already short stay as they are."""
    noisy = math.nextafter(19.53957, 0)
    assert repr(noisy) == "19.539569999999998"
    frame = pl.DataFrame({"w": [noisy, 70.25, 1e-7, 123456.789012345678, None]})
    plain, fr = tmp_path / "p.csv", tmp_path / "fr.csv"
    files.write_csv(frame, plain)
    files.write_csv(frame, fr, "fr")
    assert plain.read_text().splitlines() == [
        "w",
        "19.53957",
        "70.25",
        "0.0000001",
        "123456.789012346",
        "",
    ]
    assert fr.read_text().splitlines()[1:3] == ["19,53957", "70,25"]
    back = pl.read_csv(fr, separator=";", decimal_comma=True)["w"]
    assert back.equals(pl.read_csv(plain)["w"])
    assert abs(back[0] - noisy) / noisy < 1e-15


@given(st.floats(allow_nan=False, allow_infinity=False))
@settings(max_examples=300, deadline=None)
def test_stored_precision_keeps_15_significant_digits(value):
    """It never writes more than 15 significant digits, and the text reads back to within
    one part in 10^14 of the stored double."""
    text = files.stored_precision(pl.DataFrame({"x": [value]})).write_csv(
        include_header=False, float_scientific=False
    )
    digits = text.strip().lstrip("-").replace(".", "").lstrip("0").rstrip("0")
    assert len(digits) <= 15, text
    assert abs(float(text) - value) <= 1e-14 * abs(value) + 1e-300


def test_write_parquet_carries_labels_units_and_descriptions(con, tmp_path):
    """It puts each column's label, unit and description in the Arrow schema and the same
    facts as JSON under the file key cohortflow.columns (what DuckDB can read)."""
    out = pull.pull(con, "analysis_patients", tmp_path / "ap.parquet").output
    age = pq.read_schema(out).field("age").metadata
    assert age == {
        b"label": b"Age at inclusion",
        b"unit": b"years",
        b"description": b"years at inclusion",
    }
    rows = duckdb.sql(
        f"SELECT value FROM parquet_kv_metadata('{out}') WHERE key = 'cohortflow.columns'"
    ).fetchall()
    columns = json.loads(rows[0][0])
    assert columns["total_dose_mg"]["unit"] == "mg"
    assert columns["sex"]["codes"] == ["F", "M"]
    assert columns["depressed"]["label"] == "Depressive symptoms at baseline (HADS-D >= 8)"
