"""A first night's outbound files written by worker processes (one per core): the same
files as written in one process; a worker's failure is the night's; no worker outlives
a command killed by SIGKILL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cohortflow.locks import process_alive
from tests.conftest import TEST_KEY
from tests.nights import night
from transforms import warehouse
from transforms.quality import outbox, run_quality
from transforms.staging.mapping import load_all_mappings

pytestmark = pytest.mark.slow  # spawned workers import the staging code: ~2 s each


@pytest.fixture
def checked(workspace):
    """The small workspace after a night and a quality run: its open queries and lines."""
    con, snapshot = night(workspace, "n1")
    warehouse.refresh_views(con, snapshot)
    result = run_quality(
        con,
        run_id="dq-1",
        workspace_reports=workspace / "reports",
        now=dt.datetime(2017, 11, 1, tzinfo=dt.UTC),
        with_gx=False,
    )
    con.close()
    return workspace, result


def _write(workspace, result, folder: str, workers: int):
    return outbox.write_outbound_files(
        workspace / folder,
        result.open_queries,
        result.information,
        inbox=workspace / "inbox",
        mappings=load_all_mappings(workspace / "centres"),
        secret=TEST_KEY,
        workers=workers,
    )


def test_worker_processes_write_the_files_one_process_writes(checked, monkeypatch):
    """Every centre's CSV and digest are byte for byte those written in this process, the
    centre's own ids in them."""
    workspace, result = checked
    monkeypatch.setattr(outbox, "PROCESSES_FROM", 2)  # a few lines: workers all the same
    here = _write(workspace, result, "outbox-here", workers=1)
    there = _write(workspace, result, "outbox-workers", workers=2)
    assert sorted(here) == sorted(there) and len(here) == 6
    for centre in here:
        for name in (f"{centre}_queries.csv", outbox.DIGEST, f"{centre}_queries.xlsx"):
            assert (workspace / "outbox-workers" / centre / name).is_file()
        for name in (f"{centre}_queries.csv", outbox.DIGEST):
            mine = (workspace / "outbox-here" / centre / name).read_bytes()
            assert (workspace / "outbox-workers" / centre / name).read_bytes() == mine
    c01 = (workspace / "outbox-workers" / "C01" / "C01_queries.csv").read_text()
    assert "patient (your id)" in c01 and len(c01.splitlines()) > 1


def test_a_workers_failure_is_raised(checked, monkeypatch):
    """A centre whose folder cannot be written fails the step, with the error itself."""
    workspace, result = checked
    monkeypatch.setattr(outbox, "PROCESSES_FROM", 2)
    (workspace / "outbox-workers").mkdir()
    (workspace / "outbox-workers" / "C03").write_text("a file where a folder goes")
    with pytest.raises(OSError):
        _write(workspace, result, "outbox-workers", workers=2)


PARENT = textwrap.dedent(
    """
    import os, sys, time
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from cohortflow.children import die_with_parent

    if __name__ == "__main__":
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            1, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
        )
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 120).result()
    """
)


def test_workers_end_when_their_command_is_killed(tmp_path):
    """SIGKILL on the command (no cleanup runs): its worker gets SIGTERM from the kernel."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert process_alive(worker)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(worker)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its (dead) parent's reaper."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
