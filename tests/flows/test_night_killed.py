"""A whole night (``cohortflow run``, its own Prefect server) killed at random points of
each phase: ingestion, model fit and publication, data quality, the copy for readers.

After each SIGKILL: no process of the night survives (its Prefect server included), no
half results folder is visible, readers still open a committed copy. A rerun then ends
equal to a clean night, the killed run marked ``abandoned`` (design invariants 2, 3, 10).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from simulator.write import simulate_into_workspace
from tests.conftest import TEST_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # nine real nights: about 2 minutes

# each phase starts when the previous one logs its end (Prefect's INFO lines)
PHASES = {
    "ingestion": "Beginning flow run",
    "fit and publication": "Task run 'refresh-views",
    "data quality": "Task run 'fit-and-publish-models",
    "copy for readers": "Task run 'data-quality",
}


class Night:
    """``cohortflow run`` in a child process, its stderr lines timed as they arrive."""

    def __init__(self, workspace: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COHORTFLOW_"))}
        env |= {"COHORTFLOW_PSEUDONYM_KEY": TEST_KEY, "COHORTFLOW_SETTLE_SECONDS": "0"}
        env["PYTHONPATH"] = os.getcwd()
        command = [sys.executable, "-m", "cohortflow.cli", "run", "--workspace", str(workspace)]
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.monotonic() - self.started, line))

    def seen(self, marker: str) -> float | None:
        """When the line of ``marker`` arrived (for a task: the line of its end)."""
        for at, line in list(self.lines):
            if marker in line and (not marker.startswith("Task run") or "Finished" in line):
                return at
        return None

    def wait(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill_in(self, marker: str, delay: float) -> bool:
        """SIGKILL ``delay`` s after ``marker``; False if the night ended first."""
        while self.seen(marker) is None:
            if self.process.poll() is not None:
                return False
            time.sleep(0.02)
        time.sleep(delay)
        if self.process.poll() is not None:
            return False
        self.process.send_signal(signal.SIGKILL)
        self.wait()
        return True


def _phase_durations(night: Night) -> dict[str, float]:
    """How long each phase took in a clean night (from its log lines)."""
    starts = [night.seen(marker) for marker in PHASES.values()]
    ends = [*starts[1:], night.lines[-1][0]]
    return {phase: max(e - s, 0.05) for phase, s, e in zip(PHASES, starts, ends, strict=True)}


def _servers_of(workspace: Path) -> list[int]:
    """Prefect server processes whose home is this workspace's."""
    home = f"PREFECT_HOME={workspace / '.prefect'}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"prefect" in (proc / "cmdline").read_bytes() and home in (
                proc / "environ"
            ).read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _no_server_left(workspace: Path, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while _servers_of(workspace):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _visible_results(workspace: Path) -> dict[str, set[str]]:
    """Each visible results folder and its files (hidden ``.partial`` folders excluded)."""
    root = workspace / "artifacts"
    if not root.exists():
        return {}
    return {
        d.name: {f.name for f in d.iterdir()}
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".")
    }


def _parquet_digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.parquet")}


def _committed_snapshot(workspace: Path) -> str | None:
    """The snapshot readers get (the published copy), checked against the runs it holds."""
    copy = workspace / "published" / "warehouse.duckdb"
    if not copy.exists():
        return None
    con = duckdb.connect(str(copy), read_only=True)
    try:
        rows = con.execute(
            "SELECT snapshot_id FROM runs WHERE status IN ('completed', 'partial') "
            "ORDER BY run_seq DESC LIMIT 1"
        ).fetchall()
        return rows[0][0] if rows else None
    finally:
        con.close()


def _state(workspace: Path):
    con = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    try:
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("patients", "follow_ups", "quarantine", "ingested_files")
        }
        runs = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
        snapshot = con.execute(
            "SELECT snapshot_id FROM runs WHERE status = 'completed' ORDER BY run_seq DESC LIMIT 1"
        ).fetchone()[0]
        return counts, runs, snapshot
    finally:
        con.close()


def test_night_killed_in_each_phase_leaves_no_debris_and_reruns_to_a_clean_night(tmp_path):
    """It kills a night once per phase, each on a fresh copy of the same inbox, then
    reruns it: every rerun equals the clean night (tables, snapshot, results bytes)."""
    template = tmp_path / "template"
    simulate_into_workspace(template, n_patients=120, n_centres=6, seed=11, fault_rate=0.03)
    clean_ws = tmp_path / "clean"
    shutil.copytree(template, clean_ws)
    clean = Night(clean_ws)
    assert clean.wait() == 0, "".join(line for _, line in clean.lines)
    durations = _phase_durations(clean)
    clean_counts, _, clean_snapshot = _state(clean_ws)
    (clean_run,) = _visible_results(clean_ws)
    clean_results = _parquet_digests(clean_ws / "artifacts" / clean_run)

    rng = random.Random(20261129)
    killed_in = {}
    for index, (phase, marker) in enumerate(PHASES.items()):
        ws = tmp_path / f"killed-{index}"
        shutil.copytree(template, ws)
        night = Night(ws)
        killed_in[phase] = night.kill_in(marker, rng.uniform(0, durations[phase]))

        assert _no_server_left(ws), f"{phase}: Prefect server outlived the killed night"
        for run, files in _visible_results(ws).items():
            assert "manifest.json" in files, f"{phase}: half results folder {run} visible"
        assert _committed_snapshot(ws) in (None, clean_snapshot), phase

        rerun = Night(ws)
        assert rerun.wait() == 0, "".join(line for _, line in rerun.lines)
        assert _no_server_left(ws, within=5)
        counts, runs, snapshot = _state(ws)
        assert counts == clean_counts and snapshot == clean_snapshot, phase
        assert _committed_snapshot(ws) == clean_snapshot, phase
        if killed_in[phase]:
            assert sorted(runs.values()).count("completed") >= 1
            assert "running" not in runs.values(), f"{phase}: a killed run left running"
        results = _visible_results(ws)
        published = [run for run in results if runs.get(run) != "abandoned"]
        assert len(results) == len(published) == 1, f"{phase}: {results}"  # one set, committed
        assert _parquet_digests(ws / "artifacts" / published[0]) == clean_results, phase
    print(f"clean night phases (s): {durations}; killed in phase: {killed_in}")
    assert sum(killed_in.values()) >= 3, f"most nights ended before their kill: {killed_in}"
