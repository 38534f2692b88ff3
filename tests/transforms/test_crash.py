"""A load killed at any point leaves the warehouse as before the file in flight."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from schemas.forms import FORMS
from simulator.write import simulate_into_workspace
from tests.conftest import TEST_KEY
from transforms import warehouse

INGEST = """
import sys
from pathlib import Path
from transforms import warehouse
from transforms.ingest import load_prepared, prepare_centre
from transforms.mapping import load_all_mappings
ws = Path(sys.argv[1])
con = warehouse.connect(ws / "warehouse.duckdb")
run = sys.argv[2]
warehouse.start_run(con, run)
known = warehouse.known_files(con)
for m in load_all_mappings(ws / "centres").values():
    load_prepared(con, prepare_centre(ws / "inbox", m, known), run, sys.argv[3])
warehouse.finish_run(con, run, status="completed", snapshot_id=warehouse.snapshot_id(con))
"""


def _ingest(ws, run_id, *, kill_after: float | None = None) -> bool:
    """Run one ingestion in a child process; SIGKILL it after ``kill_after`` seconds."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-c", INGEST, str(ws), run_id, TEST_KEY]
    child = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err.decode()
        return True
    time.sleep(kill_after)
    finished = child.poll() is not None
    if not finished:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return finished


def _assert_consistent(con) -> None:
    """Every row belongs to a file recorded as loaded, and every loaded file's rows are there."""
    loaded = {
        (h, f)
        for h, f in con.execute(
            "SELECT file_hash, form FROM ingested_files WHERE status = 'loaded'"
        ).fetchall()
    }
    for form in FORMS.values():
        per_file = con.execute(
            f"SELECT _file_hash, count(*) FROM {form.table}_history GROUP BY 1"
        ).fetchall()
        for file_hash, n in per_file:
            assert (file_hash, form.name) in loaded, form.table
            recorded = con.execute(
                "SELECT rows_new + rows_changed FROM ingested_files "
                "WHERE file_hash = ? AND form = ?",
                [file_hash, form.name],
            ).fetchall()[0][0]
            assert recorded == n, (form.table, file_hash)
    orphans = con.execute(
        "SELECT count(*) FROM quarantine q WHERE NOT EXISTS (SELECT 1 FROM ingested_files f "
        "WHERE f.file_hash = q.file_hash AND f.form = q.form)"
    ).fetchall()
    assert orphans == [(0,)]


@pytest.mark.parametrize("kill_after", [3.0, 5.0])
def test_killed_ingestion_leaves_a_consistent_warehouse_and_a_rerun_completes(tmp_path, kill_after):
    clean = tmp_path / "clean"
    simulate_into_workspace(clean, n_patients=150, n_centres=12, seed=3, fault_rate=0.03)
    crashed = tmp_path / "crashed"
    shutil.copytree(clean, crashed)
    _ingest(clean, "clean-run")

    finished = _ingest(crashed, "killed-run", kill_after=kill_after)
    assert not finished, "the ingestion ended before the kill: use a larger cohort"
    con = warehouse.connect(crashed / "warehouse.duckdb")
    _assert_consistent(con)
    files_before_kill = con.execute("SELECT count(*) FROM ingested_files").fetchall()[0][0]
    print(f"killed after {kill_after}s with {files_before_kill} files loaded")
    con.close()
    _ingest(crashed, "rerun")

    con = warehouse.connect(crashed / "warehouse.duckdb")
    _assert_consistent(con)
    reference = warehouse.connect(clean / "warehouse.duckdb", read_only=True)
    assert warehouse.snapshot_id(con) == warehouse.snapshot_id(reference)
    count = "SELECT count(*) FROM quarantine"
    assert con.execute(count).fetchall() == reference.execute(count).fetchall()
    status = con.execute("SELECT status FROM runs WHERE run_id = 'killed-run'").fetchall()
    assert status in ([("running",)], [])  # started (or not yet), never completed
