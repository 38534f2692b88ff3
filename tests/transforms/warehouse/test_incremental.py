"""After loading, a night costs what it changed: the snapshot id is kept by each batch,
and only the patients whose rows changed have their analysis views rebuilt. Both must
equal what a full pass over the warehouse gives."""

from __future__ import annotations

import polars as pl
import pytest

from tests.conftest import TEST_KEY
from tests.nights import corrected_export, night
from transforms import warehouse
from transforms.derived import views
from transforms.staging.pseudonym import patient_key
from transforms.warehouse import digest
from transforms.warehouse import views as stored

pytestmark = pytest.mark.slow  # two or three nights each on a simulated workspace: 2-3 s each


def stored_views(con) -> dict[str, pl.DataFrame]:
    frames = warehouse.analysis_views(con)
    assert set(frames) == {*views.VIEW_NAMES, "adverse_events"}
    return {name: frames[name] for name in views.VIEW_NAMES}


def assert_views_are_the_whole_build(con) -> None:
    whole = views.build_views(warehouse.current_tables(con))
    for name, frame in stored_views(con).items():
        assert frame.height > 0 and frame.equals(whole[name]), name


def quarantined_night(ws) -> None:
    """C01 re-exports its follow-ups with one score out of range (quarantined)."""
    old = ws / "inbox" / "C01" / "C01_followup_20171022.csv"
    rows = pl.read_csv(old, infer_schema=False)
    rows.with_columns(
        nprs=pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("15")).otherwise("nprs")
    ).write_csv(ws / "inbox" / "C01" / "C01_followup_20171122.csv")


def test_digests_kept_by_batches_equal_a_full_pass_night_after_night(workspace):
    con, first = night(workspace, "run-1")
    assert digest.verify(con) == []
    assert first == warehouse.content_hash(warehouse.current_tables(con))
    con.close()

    corrected_export(workspace)  # one value corrected (old version XORed out), one absent
    con, second = night(workspace, "run-2")
    assert digest.verify(con) == []
    assert second == warehouse.content_hash(warehouse.current_tables(con)) != first
    con.close()

    quarantined_night(workspace)  # the quarantined row keeps its earlier version
    con, third = night(workspace, "run-3")
    assert con.execute("SELECT count(*) FROM quarantine WHERE run_id = 'run-3'").fetchall() != [
        (0,)
    ]
    assert digest.verify(con) == []
    assert third == warehouse.content_hash(warehouse.current_tables(con))


def test_a_table_changed_behind_cohortflows_back_is_named_by_verify(workspace):
    con, _ = night(workspace, "run-1")
    con.execute("UPDATE follow_ups SET nprs = 10 - nprs WHERE month = 3")
    assert digest.verify(con) == ["follow_ups"]


def test_views_are_rebuilt_for_the_changed_patients_only(workspace, monkeypatch):
    con, first = night(workspace, "run-1")
    assert warehouse.refresh_views(con, first) is True  # first build: whole
    assert con.execute("SELECT count(*) FROM views_stale").fetchall() == [(0,)]
    con.close()

    target, new_score, _ = corrected_export(workspace)
    con, second = night(workspace, "run-2")
    key = patient_key(TEST_KEY, "C01", target["record_id"])
    stale = {k for (k,) in con.execute("SELECT patient_key FROM views_stale").fetchall()}
    assert stale == {key}  # the dropped row is flagged absent, not changed

    def no_whole_build(*args, **kwargs):
        raise AssertionError("one changed patient must not rebuild every view")

    monkeypatch.setattr(stored, "materialise_view_chunks", no_whole_build)
    assert warehouse.refresh_views(con, second) is True
    assert con.execute("SELECT * FROM views_built").fetchall() == [(second,)]
    assert con.execute("SELECT count(*) FROM views_stale").fetchall() == [(0,)]
    nprs = con.execute(
        "SELECT nprs FROM analysis_patient_months WHERE patient_key = ? AND month = 3", [key]
    ).fetchall()
    assert nprs == [(new_score,)]
    assert_views_are_the_whole_build(con)


def test_views_of_unchanged_content_are_kept_and_the_stale_list_cleared(workspace):
    """Rows changed and changed back within a night: same snapshot, same views."""
    con, first = night(workspace, "run-1")
    warehouse.refresh_views(con, first)
    before = stored_views(con)
    con.execute("INSERT INTO views_stale SELECT patient_key FROM patients LIMIT 3")
    assert warehouse.refresh_views(con, first) is False
    assert con.execute("SELECT count(*) FROM views_stale").fetchall() == [(0,)]
    for name, frame in stored_views(con).items():
        assert frame.equals(before[name]), name


@pytest.mark.parametrize("stale", [0, 8])
def test_a_change_no_batch_listed_or_too_many_stale_patients_rebuild_all(
    workspace, monkeypatch, stale
):
    con, first = night(workspace, "run-1")
    warehouse.refresh_views(con, first)
    con.execute(
        "DELETE FROM analysis_patients WHERE patient_key IN "
        "(SELECT patient_key FROM patients LIMIT 2)"
    )  # damage a whole build repairs
    con.execute(f"INSERT INTO views_stale SELECT patient_key FROM patients LIMIT {stale}")
    monkeypatch.setattr(stored, "PATIENTS_PER_VIEW_CHUNK", 7)
    assert warehouse.refresh_views(con, "another-snapshot") is True
    assert_views_are_the_whole_build(con)


def test_a_warehouse_from_before_gets_digests_and_views_rebuilt_whole_once(workspace):
    con, first = night(workspace, "run-1")
    warehouse.refresh_views(con, first)
    con.execute("DROP TABLE table_digests")
    con.execute("DROP TABLE views_stale")
    con.close()

    reader = warehouse.connect(workspace / "warehouse.duckdb", read_only=True)
    assert warehouse.snapshot_id(reader) == first  # no digests to read: hashed whole
    reader.close()
    con = warehouse.connect(workspace / "warehouse.duckdb")
    assert digest.verify(con) == []
    assert warehouse.snapshot_id(con) == first
    assert con.execute("SELECT count(*) FROM views_built").fetchall() == [(0,)]
    assert warehouse.refresh_views(con, first) is True
    assert_views_are_the_whole_build(con)
