"""The data card: what a pulled file holds and where it comes from."""

from __future__ import annotations

import hashlib
import json

import polars as pl

from transforms.delivery import pull


def test_data_card_describes_the_file(con, built, tmp_path):
    """It records snapshot, query, rows, sha256 and each column's type and meaning."""
    result = pull.pull(
        con, "analysis_patient_months", tmp_path / "apm.parquet", centres=["C01", "C02"]
    )
    card = json.loads(result.card.read_text())
    data = pl.read_parquet(result.output)

    assert card["rows"] == data.height == result.rows
    assert set(data["centre_id"]) == {"C01", "C02"}
    assert card["sha256"] == hashlib.sha256(result.output.read_bytes()).hexdigest()
    assert card["snapshot"] == {
        "id": built.second,
        "run_seq": 2,
        "run_id": "run-2",
        "resolved_from": "latest",
    }
    assert card["query"]["centres"] == ["C01", "C02"] and card["query"]["months"] is None
    assert [(c["name"], c["type"]) for c in card["columns"]] == [
        (name, str(dtype)) for name, dtype in data.schema.items()
    ]
    columns = {c["name"]: c for c in card["columns"]}
    assert all(c["description"] for c in card["columns"])
    assert columns["nprs"]["description"] == "mean pain intensity, NPRS 0-10 integer"
    assert columns["sex"]["codes"] == ["F", "M"]
    assert columns["cumulative_dose_mg"]["description"].startswith("mg given from inclusion")
    assert card["cohortflow_version"] and card["sort_key"] == ["patient_key", "month"]
    assert "dtype_backend='pyarrow'" in card["reading"]
