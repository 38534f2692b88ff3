"""``cohortflow serve`` without a Prefect server: a scheduled run fires, and it stops cleanly.

It runs the real command as a subprocess (its own session, so its whole process group can
be checked afterwards) on a small simulated workspace with a per-minute nightly cron, and
finds every process it left by the ``PREFECT_HOME`` in their environment: the server
``serve`` owns runs in a session of its own, and the flow runs in the runner's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from simulator.write import simulate_into_workspace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
RUN_TIMEOUT = 150
STOP_TIMEOUT = 15


def _serve(workspace: Path, env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
    command = [str(BIN / "cohortflow"), "serve", "--workspace", str(workspace)]
    return subprocess.Popen(
        command,
        env=env,
        stdout=open(workspace / f"{log}.out", "wb"),  # closed when the test ends
        stderr=open(workspace / f"{log}.err", "wb"),
        start_new_session=True,
    )


def _completed_runs(warehouse: Path) -> int:
    """Nights run to their end (``partial``: a centre failed, the others loaded).

    0 while the night holds the file: DuckDB refuses a read-only connection then.
    """
    if not warehouse.exists():
        return 0
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            row = con.execute(
                "select count(*) from runs where status in ('completed', 'partial')"
            ).fetchone()
    except duckdb.Error:  # "in use" while a night writes, or no runs table yet
        return 0
    return int(row[0]) if row else 0


def _processes_with(prefect_home: Path) -> list[int]:
    """PIDs whose environment points at this workspace's Prefect home (ours only)."""
    marker = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    simulate_into_workspace(tmp_path / "ws", n_patients=20, n_centres=2)
    return tmp_path / "ws"


def _environment(workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {
        **env,
        "COHORTFLOW_PSEUDONYM_KEY": "serve-test-key-simulated-data-only",
        "COHORTFLOW_SETTLE_SECONDS": "0",
        "COHORTFLOW_NIGHTLY_CRON": "* * * * *",
        "COHORTFLOW_TIMEZONE": "UTC",
        "PREFECT_HOME": str(workspace / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }


def test_serve_runs_the_schedule_without_a_server_and_stops_cleanly(workspace: Path) -> None:
    """It starts its own server, fires the per-minute night, refuses a twin, stops on SIGTERM."""
    env = _environment(workspace)
    first = _serve(workspace, env, "serve")
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        twin_checked = False
        while _completed_runs(workspace / "warehouse.duckdb") == 0:
            assert first.poll() is None, (workspace / "serve.err").read_text()
            assert time.monotonic() < deadline, "no scheduled run completed within 150 s"
            lock = workspace / ".prefect" / "serve.lock"
            if not twin_checked and lock.exists() and lock.stat().st_size:
                _check_twin_refused(workspace, env, first.pid)
                twin_checked = True
            time.sleep(3)
        assert twin_checked
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=STOP_TIMEOUT)
    finally:  # on a failure, leave nothing running behind the test
        for pid in _processes_with(workspace / ".prefect"):
            os.kill(pid, signal.SIGKILL)
    stderr = (workspace / "serve.err").read_text()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "cohortflow: serve stopped"
    time.sleep(1)  # the group's last members are reaped by init
    assert _processes_with(workspace / ".prefect") == []


def _check_twin_refused(workspace: Path, env: dict[str, str], pid: int) -> None:
    """A second ``serve`` on the workspace exits 1 with one line naming the first's PID."""
    started = time.monotonic()
    code = _serve(workspace, env, "twin").wait(timeout=30)
    assert time.monotonic() - started < 10  # at once: before any Prefect server starts
    lines = (workspace / "twin.err").read_text().strip().splitlines()
    assert code == 1
    assert lines == [
        f"cohortflow: cohortflow serve is already running on {workspace} (PID {pid}); "
        "stop it first (kill -TERM it, or Ctrl-C where it runs)"
    ]
