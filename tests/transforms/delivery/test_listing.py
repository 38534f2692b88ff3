"""The listing of what can be pulled: snapshots, tables and views with their rows."""

from __future__ import annotations

from transforms.delivery.catalogue import PULLABLE
from transforms.delivery.listing import list_pullable


def test_list_pullable_shows_snapshots_and_row_counts(con, built):
    """It lists every run's snapshot and each table and view with its rows."""
    listing = list_pullable(con)
    snaps = listing.snapshots.select("run_id", "completed", "snapshot_id").rows()
    assert snaps == [
        ("run-1", True, built.first),
        ("run-2", True, built.second),
        ("run-3", False, None),
    ]
    rows = dict(listing.tables.select("name", "rows").rows())
    assert set(rows) == set(PULLABLE)
    assert rows["follow_ups"] == con.execute("SELECT count(*) FROM follow_ups").fetchone()[0]
    assert rows["analysis_patients"] == rows["patients"]
    text = str(listing)
    assert built.first in text and "analysis_patient_months" in text
    assert list_pullable(con, snapshot=built.first).snapshot_id == built.first
