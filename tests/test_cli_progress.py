"""Progress as a person sees it: bars in a terminal, plain timestamped lines elsewhere."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys

import pytest

from cohortflow import progress
from tests.nights import corrected_export

SIMULATE = ["-m", "cohortflow.cli", "simulate", "--patients", "200", "--centres", "4"]
PLAIN_DONE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d Writing centre exports: done \(4/4, \d+\.\d s\)$"
)


def _in_terminal(argv: list[str]) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdin, stdout and stderr."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, its output the terminal
        os.execv(sys.executable, [sys.executable, *argv])
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


def test_simulate_in_a_terminal_draws_progress_bars(tmp_path):
    """It shows each long step with its count as rich draws it (control sequences)."""
    code, screen = _in_terminal([*SIMULATE, "--workspace", str(tmp_path / "ws")])
    assert code == 0, screen
    assert "Writing centre exports" in screen and "4/4" in screen
    assert "Simulating 200 patients" in screen
    assert "\x1b[" in screen  # a live display: cursor and colour sequences
    assert "Simulated 200 patients in 4 centres" in screen


def test_simulate_without_a_terminal_prints_timestamped_lines_only(tmp_path):
    """Piped (cron, Prefect logs), it prints one line per step start and end, with the
    time, and not a single control character."""
    done = subprocess.run(
        [sys.executable, *SIMULATE, "--workspace", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    assert all(c == "\n" or " " <= c != "\x7f" for c in text), repr(text)
    lines = done.stderr.splitlines()
    assert any(PLAIN_DONE.match(line) for line in lines), lines
    assert any(line.endswith("Writing centre exports ...") for line in lines)


def test_plain_lines_repeat_the_count_of_a_long_step(capsys):
    """A step that runs longer than the interval gets its count repeated, so cron logs
    show it is alive; without a display nothing is printed at all."""
    stream = io.StringIO()
    with progress.showing(progress.PlainLines(stream, every=0.0)):
        with progress.step("Checking", total=3) as step:
            step.advance()
            step.advance(2)
    lines = [line.split(" ", 2)[2] for line in stream.getvalue().splitlines()]
    assert lines[0] == "Checking ..." and lines[1:3] == ["Checking: 1/3", "Checking: 3/3"]
    assert re.fullmatch(r"Checking: done \(3/3, \d+\.\d s\)", lines[3])
    with progress.step("Unseen", total=1) as step:  # no display installed: silence
        step.advance()
    assert capsys.readouterr() == ("", "") and "Unseen" not in stream.getvalue()


@pytest.mark.e2e
def test_ingest_shows_its_steps_in_a_terminal_and_plain_lines_in_a_pipe(
    prefect_harness, workspace, monkeypatch
):
    """The night's long steps (centres, forms, checks) as bars in a terminal; piped, the
    whole output (Prefect's log lines included) has no control character."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", "test-only-pseudonymisation-key")
    monkeypatch.setenv("COHORTFLOW_SETTLE_SECONDS", "0")
    ingest = ["-m", "cohortflow.cli", "ingest", "--workspace", str(workspace)]
    code, screen = _in_terminal(ingest)
    assert code == 0, screen
    for step in ("Reading centres' new exports", "Validating and loading", "Data-quality checks"):
        assert step in screen, step
    assert "6/6" in screen and "\x1b[" in screen
    corrected_export(workspace)
    piped = subprocess.run([sys.executable, *ingest], capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0, piped.stderr
    text = piped.stdout + piped.stderr
    assert all(c == "\n" or " " <= c != "\x7f" for c in text), repr(text[:2000])
    done = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d Validating and loading forms: done"
    assert re.search(done, piped.stderr, re.MULTILINE)
    assert "1 files from 1 centres" in piped.stdout  # only C01 changed: one task, one file
