"""A load killed at any point leaves the warehouse as before the file in flight."""

from __future__ import annotations

import os
import random
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

pytestmark = pytest.mark.slow  # kills subprocesses at random points: 15 s

INGEST = """
import sys
from pathlib import Path
from transforms import warehouse
from transforms.ingest import load_prepared
from transforms.staging.prepare import prepare_centre
from transforms.staging.mapping import load_all_mappings
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


def _files_recorded(ws) -> int:
    path = ws / "warehouse.duckdb"
    if not path.exists():
        return 0
    con = warehouse.connect(path, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM ingested_files").fetchall()[0][0]
    finally:
        con.close()


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


KILLS = 6


def test_ingestion_killed_repeatedly_at_random_points_ends_as_a_clean_run(tmp_path):
    """SIGKILL at seeded random points of successive attempts, each resuming the last;
    after every kill the warehouse is consistent, and the final run equals a clean one."""
    clean = tmp_path / "clean"
    simulate_into_workspace(clean, n_patients=150, n_centres=12, seed=3, fault_rate=0.03)
    crashed = tmp_path / "crashed"
    shutil.copytree(clean, crashed)
    started = time.perf_counter()
    _ingest(clean, "clean-run")
    duration = time.perf_counter() - started
    started = time.perf_counter()
    _ingest(clean, "nothing-new")  # start-up and discovery only: no kill point before that
    overhead = time.perf_counter() - started
    total = _files_recorded(clean)

    rng = random.Random(20230516)
    interrupted = []
    for attempt in range(KILLS):
        remaining = 1 - _files_recorded(crashed) / total
        kill_after = overhead + rng.uniform(0.05, 0.95) * (duration - overhead) * remaining
        if not _ingest(crashed, f"killed-{attempt}", kill_after=kill_after):
            interrupted.append((round(kill_after, 1), _files_recorded(crashed)))
        con = warehouse.connect(crashed / "warehouse.duckdb")
        _assert_consistent(con)
        con.close()
    print(f"clean run {duration:.1f} s; kills (s, files recorded of {total}): {interrupted}")
    assert len(interrupted) >= KILLS // 2, "most attempts finished before their kill"
    _ingest(crashed, "rerun")

    con = warehouse.connect(crashed / "warehouse.duckdb")
    _assert_consistent(con)
    reference = warehouse.connect(clean / "warehouse.duckdb", read_only=True)
    assert warehouse.snapshot_id(con) == warehouse.snapshot_id(reference)
    for table in ("quarantine", "ingested_files"):
        count = f"SELECT count(*) FROM {table}"
        assert con.execute(count).fetchall() == reference.execute(count).fetchall(), table
    statuses = con.execute("SELECT DISTINCT status FROM runs WHERE run_id LIKE 'killed-%'")
    # a killed run is closed by the next one as abandoned: none stays "running" for good
    assert set(statuses.fetchall()) <= {("abandoned",), ("completed",)}
