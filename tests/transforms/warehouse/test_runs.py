"""Crash debris in ``runs``: a run left ``running`` by a dead process is closed as
``abandoned`` by the next run; live runs and other hosts' runs are never touched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from transforms import warehouse
from transforms.warehouse.runs import process_alive


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped: nothing answers to it."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _left_running(con, run_id: str, pid: int, host: str | None = None) -> None:
    """A run row as a process killed mid-run leaves it (inserted as-is: no clean-up)."""
    con.execute(
        "INSERT INTO runs (run_id, run_seq, started_at, status, pid, host)"
        " SELECT ?, coalesce(max(run_seq), 0) + 1, now(), 'running', ?, ? FROM runs",
        [run_id, pid, host or socket.gethostname()],
    )


def _run(con, run_id: str) -> tuple:
    return con.execute(
        "SELECT status, finished_at IS NOT NULL, message FROM runs WHERE run_id = ?", [run_id]
    ).fetchone()


def test_start_run_records_the_process_and_host(tmp_path):
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    warehouse.start_run(con, "r1")
    row = con.execute("SELECT pid, host, status FROM runs WHERE run_id = 'r1'").fetchone()
    assert row == (os.getpid(), socket.gethostname(), "running")


def test_run_of_a_dead_process_is_marked_abandoned_by_the_next_start(tmp_path):
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    dead = _dead_pid()
    assert not process_alive(dead)
    _left_running(con, "killed", dead)
    _left_running(con, "live", os.getpid())
    warehouse.start_run(con, "next")
    status, finished, message = _run(con, "killed")
    assert (status, finished) == ("abandoned", True)
    assert message.startswith("found abandoned by run next")
    assert _run(con, "live") == ("running", False, None)
    assert _run(con, "next") == ("running", False, None)


def test_runs_of_another_host_or_without_a_pid_are_never_touched(tmp_path):
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    _left_running(con, "elsewhere", _dead_pid(), host="another-host.example")
    warehouse.start_run(con, "old")
    con.execute("UPDATE runs SET pid = NULL, host = NULL WHERE run_id = 'old'")
    warehouse.start_run(con, "next")
    assert _run(con, "elsewhere") == ("running", False, None)
    assert _run(con, "old") == ("running", False, None)


def test_finished_runs_keep_their_status(tmp_path):
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    _left_running(con, "done", _dead_pid())
    warehouse.finish_run(con, "done", status="completed", message="ok")
    warehouse.start_run(con, "next")
    assert _run(con, "done") == ("completed", True, "ok")


def test_failed_run_message_names_a_stop_that_has_no_text():
    """It never records an empty message: a SIGTERM or Ctrl-C is named, an error keeps
    its text, and an error without text its type."""
    from transforms.warehouse import why_failed

    assert why_failed(KeyboardInterrupt()).startswith("stopped before it finished (Keyboard")
    assert why_failed(ValueError("bad month")) == "bad month"
    assert why_failed(RuntimeError()) == "RuntimeError"
    assert len(why_failed(ValueError("x" * 900))) == 500
