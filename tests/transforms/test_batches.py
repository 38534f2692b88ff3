"""A night loaded in batches equals the same files loaded one at a time, in order.

The loader validates each form's files of all centres together and writes them in
batches of at most one file per centre; the warehouse must not be able to tell.
"""

from __future__ import annotations

import polars as pl

from schemas.forms import FORMS
from tests.conftest import TEST_KEY
from tests.nights import corrected_export
from transforms import ingest, warehouse
from transforms.ingest import load_prepared
from transforms.staging.mapping import load_all_mappings
from transforms.staging.prepare import prepare_centre


def night(ws, run_id, *, one_at_a_time: bool):
    con = warehouse.connect(ws / f"warehouse-{one_at_a_time}.duckdb")
    warehouse.start_run(con, run_id)
    known = warehouse.known_files(con)
    items = [
        item
        for mapping in load_all_mappings(ws / "centres").values()
        for item in prepare_centre(ws / "inbox", mapping, known)
    ]
    if one_at_a_time:
        reports = [r for item in items for r in load_prepared(con, [item], run_id, TEST_KEY)]
    else:
        reports = load_prepared(con, items, run_id, TEST_KEY)
    warehouse.finish_run(con, run_id, status="completed", snapshot_id=warehouse.snapshot_id(con))
    return con, reports


def contents(con) -> dict[str, pl.DataFrame]:
    """Every table the loader writes, in a fixed order, without load timestamps."""
    tables = [f.table for f in FORMS.values()]
    tables += [f"{t}_history" for t in tables] + ["changes", "absent_rows", "quarantine"]
    found = {t: con.sql(f"SELECT * FROM {t}").pl() for t in tables}
    found["ingested_files"] = con.sql("SELECT * EXCLUDE (ingested_at) FROM ingested_files").pl()
    return {t: frame.sort(frame.columns, nulls_last=True) for t, frame in found.items()}


def second_correction(ws) -> None:
    """C01 sends, the same night as its first correction, a later one of another score."""
    first = ws / "inbox" / "C01" / "C01_followup_20171022.csv"
    rows = pl.read_csv(first, infer_schema=False)
    again = rows.with_columns(
        nprs=pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("0")).otherwise(pl.col("nprs"))
    )
    again.write_csv(ws / "inbox" / "C01" / "C01_followup_20171122.csv")


def test_batched_nights_equal_files_loaded_one_at_a_time(workspace):
    for one_at_a_time in (True, False):
        night(workspace, "run-1", one_at_a_time=one_at_a_time)[0].close()
    corrected_export(workspace)
    second_correction(workspace)  # two follow-up files of C01 in one night: two batches

    batched, batched_reports = night(workspace, "run-2", one_at_a_time=False)
    single, single_reports = night(workspace, "run-2", one_at_a_time=True)
    assert batched_reports == single_reports
    c01 = [r for r in batched_reports if r.centre_id == "C01"]
    assert [(r.file_name, r.rows_changed) for r in c01] == [
        ("C01_followup_20171022.csv", 1),
        ("C01_followup_20171122.csv", 1),
    ]
    expected = contents(single)
    got = contents(batched)
    for table, frame in expected.items():
        assert got[table].equals(frame), table
    assert expected["changes"].height == 2
    assert expected["absent_rows"].height == 2  # the dropped row, missing from both exports
    assert expected["quarantine"].height > 0
    assert warehouse.snapshot_id(batched) == warehouse.snapshot_id(single)


def test_every_table_holds_one_row_per_natural_key_after_corrections(workspace):
    """The tables declare no primary key (its index cost a third of the load): the loader
    alone keeps one current row per natural key, through corrections in two batches."""
    night(workspace, "run-1", one_at_a_time=False)[0].close()
    corrected_export(workspace)
    second_correction(workspace)
    con, _ = night(workspace, "run-2", one_at_a_time=False)
    for form in FORMS.values():
        key = ", ".join(form.key)
        rows, keys = con.execute(
            f"SELECT count(*), count(DISTINCT ({key})) FROM {form.table}"
        ).fetchall()[0]
        assert rows == keys > 0, form.table
    current = con.execute("SELECT count(*) FROM follow_ups_history WHERE _valid_to IS NULL")
    assert current.fetchall() == con.execute("SELECT count(*) FROM follow_ups").fetchall()


def test_a_file_that_breaks_batch_validation_is_rejected_alone(workspace, monkeypatch):
    """Should validating a form's files together fail unexpectedly (a library panic on
    some input), the file that fails alone is rejected, naming the error; the others load."""
    real = ingest.validate_batch

    def panics_on_c02(files, form):
        if any("C02" in str(f.frame["patient_id"].drop_nulls().head(1).to_list()) for f in files):
            if form.name == "follow_up":
                raise RuntimeError("index out of bounds")
        return real(files, form)

    monkeypatch.setattr(ingest, "validate_batch", panics_on_c02)
    con, reports = night(workspace, "run-1", one_at_a_time=False)
    follow_ups = {r.centre_id: r for r in reports if r.form == "follow_up"}
    assert follow_ups["C02"].status == "rejected"
    assert "internal error while validating (RuntimeError: index out of bounds)" in (
        follow_ups["C02"].error
    )
    assert all(r.status == "loaded" for c, r in follow_ups.items() if c != "C02")
    assert con.execute("SELECT count(*) FROM follow_ups WHERE centre_id = 'C02'").fetchall() == [
        (0,)
    ]
    assert con.execute("SELECT count(DISTINCT centre_id) FROM follow_ups").fetchall() == [
        (len(follow_ups) - 1,)
    ]
