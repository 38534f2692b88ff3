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

# The child says "batch" as each load transaction starts: the parent kills it a random
# moment after the k-th, so that every kill lands inside the loading, however loaded the
# machine (a kill timed by the clock alone missed under load).
INGEST = """
import sys
from pathlib import Path
from transforms import ingest, warehouse
from transforms.ingest import load_prepared
load_batch = ingest.load_batch
def announced(*args, **kwargs):
    print("batch", flush=True)
    return load_batch(*args, **kwargs)
ingest.load_batch = announced
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


def _ingest(ws, run_id, *, kill_at: tuple[int, float] | None = None) -> int | bool:
    """Run one ingestion in a child process: the number of load batches it ran; with
    ``kill_at=(k, delay)``, SIGKILL it ``delay`` seconds after its k-th load batch
    starts, and say whether it finished first."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-c", INGEST, str(ws), run_id, TEST_KEY]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if kill_at is None:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err.decode()
        return out.count(b"batch")
    batches, delay = kill_at
    assert child.stdout is not None
    for line in child.stdout:  # EOF: the child finished before its k-th batch
        batches -= line.strip() == b"batch"
        if batches == 0:
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            break
    child.communicate(timeout=300)
    return child.returncode == 0


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
    batches = _ingest(clean, "clean-run")
    total = _files_recorded(clean)

    rng = random.Random(20230516)
    interrupted = []
    for attempt in range(KILLS):
        left = 1 - _files_recorded(crashed) / total  # a kill anywhere in what is left
        kill_at = (rng.randint(1, max(1, int(0.8 * batches * left))), rng.uniform(0.0, 0.03))
        if not _ingest(crashed, f"killed-{attempt}", kill_at=kill_at):
            interrupted.append((kill_at[0], _files_recorded(crashed)))
        con = warehouse.connect(crashed / "warehouse.duckdb")
        _assert_consistent(con)
        con.close()
    print(f"kills (batch, files recorded of {total}): {interrupted}")
    assert len(interrupted) == KILLS, "a kill came after the ingestion finished"
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
