"""Pulled files: spreadsheet-safe CSV in both dialects, parquet that keeps its types."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from transforms import warehouse
from transforms.delivery import pull
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
