"""Every pre-condition is checked before Prefect starts: one stderr line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

import duckdb
import pytest

from cohortflow.cli import main
from cohortflow.cli.preconditions import writer_lock
from cohortflow.settings import Settings
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.slow  # real subprocesses and a Prefect night: up to 9 s each


def _one_line(err: str) -> str:
    err = err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def _cli(workspace, *args: str) -> subprocess.CompletedProcess:
    """The real command in its own process: a second writer, as at 02:00 with cron."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COHORTFLOW_", "PREFECT_"))}
    env["COHORTFLOW_PSEUDONYM_KEY"] = TEST_KEY
    command = [sys.executable, "-m", "cohortflow.cli", *args, "--workspace", str(workspace)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["run", "ingest", "fit", "quality"])
def test_second_writer_beside_an_open_warehouse_gets_one_line(workspace, command):
    """It refuses with exit 1 and one line while another process writes the warehouse,
    and Prefect never starts (nothing in the workspace's Prefect folder)."""
    from transforms import warehouse

    con = warehouse.connect(workspace / "warehouse.duckdb")  # the night writing
    try:
        done = _cli(workspace, command)
    finally:
        con.close()
    assert done.returncode == 1
    assert "in use by another cohortflow process" in _one_line(done.stderr)
    assert not (workspace / ".prefect").exists()


@pytest.mark.parametrize("command", ["run", "fit", "quality"])
def test_writer_lock_held_refuses_a_second_command_naming_the_first(
    workspace, capsys, monkeypatch, command
):
    """It refuses while another command holds the workspace's writer lock, even before
    that command has opened the warehouse (two runs half a second apart)."""
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    duckdb.connect(str(workspace / "warehouse.duckdb")).close()  # fit/quality need one
    with _lock_held_by_another_process(workspace) as holder:
        assert main([command, "--workspace", str(workspace)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert f"in use by `cohortflow run` (PID {holder})" in err


HOLD_LOCK = """
import sys, time
from pathlib import Path
from cohortflow.locks import writer_lock
with writer_lock(Path(sys.argv[1]), "run"):
    print("held", flush=True)
    time.sleep(120)
"""


@contextmanager
def _lock_held_by_another_process(workspace):
    """The writer lock held by a child process (taken again in this process, it is this
    process's own: a no-op, as when the CLI's flow takes it after the CLI)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(workspace)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield child.pid
    finally:
        child.kill()
        child.wait()


def test_writer_lock_taken_again_by_its_holder_is_a_no_op(tmp_path):
    """It lets the process that holds it take it again (the CLI, then its flow), and
    still refuses another process meanwhile."""
    settings = Settings.from_env(tmp_path)
    with writer_lock(settings, "run"), writer_lock(settings, "run (nightly flow)"):
        probe = subprocess.run(
            [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], capture_output=True, text=True
        )
        assert probe.returncode == 1 and "in use by `cohortflow run`" in probe.stderr


def test_writer_lock_is_released_when_the_command_ends(tmp_path):
    """It can be taken again after the holder ends (a killed holder releases it too)."""
    settings = Settings.from_env(tmp_path)
    with writer_lock(settings, "fit"):
        pass
    with writer_lock(settings, "run"):
        assert "`cohortflow run`" in (tmp_path / ".cohortflow-writer.lock").read_text()


def test_run_with_every_mapping_broken_stops_in_one_line(tmp_path, capsys, monkeypatch):
    """It has nothing to run: exit 1, one line naming each broken file."""
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    (tmp_path / "centres").mkdir()
    (tmp_path / "centres" / "C01.yaml").write_text("centre_id: C01\nforms: {}\nextra: 1\n")
    (tmp_path / "centres" / "C02.yaml").write_text("centre_id: C02\nforms: [\n")
    assert main(["run", "--workspace", str(tmp_path)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("cohortflow: no valid mapping file: ")
    assert "C01.yaml: invalid mapping: extra" in err and "C02.yaml: cannot read" in err


@pytest.mark.e2e
def test_ingest_with_a_broken_mapping_loads_the_other_centres(
    prefect_harness, workspace, capsys, monkeypatch
):
    """Invariant 4: C02's broken mapping is named (stderr, summary, runs); C01, C03-C06 load;
    the night ends "Completed with warnings" (exit 0); quality and status do not crash."""
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")
    mapping = workspace / "centres" / "C02.yaml"
    mapping.write_text(mapping.read_text() + "colour: blue\n")

    assert main(["ingest", "--workspace", str(workspace)]) == 0
    captured = capsys.readouterr()
    warning = captured.err.splitlines()[0]  # then the flow's own log lines
    assert "Traceback" not in captured.err
    assert warning.startswith("cohortflow: warning: centre C02 is not read tonight")
    assert f"{mapping}: invalid mapping: colour" in warning
    assert "ERROR   C02 not read (the other centres were loaded)" in captured.out

    con = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    files = con.execute("SELECT DISTINCT centre_id FROM ingested_files").fetchall()
    centres = {centre for (centre,) in files}
    status, message = con.execute("SELECT status, message FROM runs").fetchone()
    con.close()
    assert centres == {"C01", "C03", "C04", "C05", "C06"}
    assert status == "partial" and message.startswith(f"C02: {mapping}: invalid mapping")

    assert main(["ingest", "--workspace", str(workspace)]) == 0  # the key check passes too
    assert main(["quality", "--workspace", str(workspace)]) == 0
    assert main(["status", "--workspace", str(workspace)]) == 0
