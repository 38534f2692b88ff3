"""The program ends its process itself once a long command is done (no interpreter
teardown: 1.5-4 s after a night), with the command's status, exit handlers run and
streams flushed; a command called from Python (the tests) returns as before."""

from __future__ import annotations

import atexit
import sys

import pytest

from cohortflow.cli import commands


class Exited(Exception):
    """os._exit, stood in for: the test process must live on."""


@pytest.fixture
def exits(monkeypatch):
    """Record os._exit's status (and raise instead of ending the test run)."""
    statuses: list[int] = []

    def fake_exit(status: int) -> None:
        statuses.append(status)
        raise Exited

    monkeypatch.setattr(commands.os, "_exit", fake_exit)
    return statuses


def test_program_ends_a_long_command_with_its_status_after_the_exit_handlers(
    exits, monkeypatch, tmp_path, capsys
):
    """It runs the exit handlers, then ends with the command's status (0 here; 1 for a
    command that failed in one line)."""
    handled: list[str] = []  # the real handlers are pytest's own: stood in for too
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: handled.append("ran"))
    args = ["cohortflow", "simulate", "--patients", "30", "--centres", "4"]
    monkeypatch.setattr(sys, "argv", [*args, "--workspace", str(tmp_path / "ws")])
    with pytest.raises(Exited):
        commands.main()
    assert exits == [0] and handled == ["ran"]
    assert "Simulated 30 patients" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["cohortflow", "run", "--workspace", str(tmp_path / "no")])
    with pytest.raises(Exited):
        commands.main()
    assert exits == [0, 1] and handled == ["ran", "ran"]


def test_command_called_with_arguments_returns_its_status(exits, tmp_path):
    """It returns (no exit) when given its arguments, as the tests call it."""
    assert commands.main(["run", "--workspace", str(tmp_path / "no")]) == 1
    assert exits == []
