"""A full disk, a denied permission, a read-only file system: one line, the path and the cause.

However the cause surfaces (an OSError, DuckDB's IOException hidden behind "cannot rollback
- no transaction is active", polars' "os error 28", a Prefect server answering 500), the
CLI prints one line naming the path and the cause, and exits 1 without a traceback.
"""

from __future__ import annotations

import errno
import os
from collections import namedtuple

import duckdb
import polars as pl
import pytest

from cohortflow.cli import commands, main
from cohortflow.errors import StorageError, full_disk, storage_error

WAL = "/data/cohort/warehouse.duckdb.wal"


def _rollback_after_full_disk() -> Exception:
    """What a loader's ``except: ROLLBACK; raise`` gives after DuckDB's write failed."""
    try:
        try:
            raise duckdb.IOException(
                f'IO Error: Could not write file "{WAL}": No space left on device'
            )
        except duckdb.IOException:
            raise duckdb.TransactionException(
                "TransactionContext Error: cannot rollback - no transaction is active"
            ) from None  # the context is kept even so
    except duckdb.TransactionException as exc:
        return exc


def test_storage_error_finds_the_cause_behind_a_failed_rollback():
    """It walks the chain of contexts to DuckDB's IO error and takes the path it quotes."""
    problem = storage_error(_rollback_after_full_disk(), "/fallback")
    assert isinstance(problem, StorageError) and problem.code == errno.ENOSPC
    assert str(problem) == (
        f"cannot write {WAL}: no space left on the device; free some space there and run again"
    )


@pytest.mark.parametrize(
    ("exc", "path", "says"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x.csv"), None, "/mnt/ro/x.csv"),
        (OSError(errno.EACCES, "Permission denied"), "/ws/out.csv", "/ws/out.csv"),
        (pl.exceptions.ComputeError("io error: Permission denied (os error 13)"), "/o", "/o"),
        (OSError("No space left on device (os error 28)"), "/ws/q.csv", "/ws/q.csv"),
    ],
)
def test_storage_error_reads_every_library_s_words(exc, path, says):
    problem = storage_error(exc, path)
    assert problem is not None and str(problem).startswith(f"cannot write {says}: ")


def test_storage_error_ignores_other_errors():
    assert storage_error(ValueError("no such column: nprs"), "/ws") is None
    assert storage_error(FileNotFoundError(errno.ENOENT, "gone", "/x")) is None


def test_full_disk_is_judged_by_the_space_left(monkeypatch, tmp_path):
    stats = namedtuple("stats", "f_bavail f_frsize")
    monkeypatch.setattr(os, "statvfs", lambda path: stats(10, 4096))
    assert full_disk(tmp_path) is not None
    monkeypatch.setattr(os, "statvfs", lambda path: stats(10_000, 4096))
    assert full_disk(tmp_path) is None


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            _rollback_after_full_disk(),
            f"cohortflow: cannot write {WAL}: no space left on the device",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/ws/reports/q.csv"),
            "cohortflow: cannot write /ws/reports/q.csv: read-only file system",
        ),
    ],
)
def test_cli_prints_one_line_naming_path_and_cause(tmp_path, capsys, monkeypatch, error, line):
    """It exits 1 with that line on stderr, no traceback."""

    def fails(args):
        raise error

    monkeypatch.setitem(commands.HANDLERS, "status", fails)  # what main() dispatches to
    assert main(["status", "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1 and "Traceback" not in err


def test_cli_names_a_full_workspace_when_the_error_lost_its_cause(tmp_path, capsys, monkeypatch):
    """A Prefect server on a full disk answers "Server error '500'": the workspace is named."""
    stats = namedtuple("stats", "f_bavail f_frsize")

    def fails(args):
        raise RuntimeError("Server error '500 Internal Server Error' for url 'http://127.0.0.1'")

    monkeypatch.setitem(commands.HANDLERS, "status", fails)  # what main() dispatches to
    monkeypatch.setattr(os, "statvfs", lambda path: stats(0, 4096))
    assert main(["status", "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert (
        err == f"cohortflow: cannot write {tmp_path}: no space left on the device; "
        "free some space there and run again\n"
    )


def test_cli_still_raises_what_is_not_a_storage_problem(tmp_path, monkeypatch):
    """A bug stays a bug (with its traceback): only storage problems are turned into lines."""

    def fails(args):
        raise KeyError("nprs")

    monkeypatch.setitem(commands.HANDLERS, "status", fails)  # what main() dispatches to
    with pytest.raises(KeyError):
        main(["status", "--workspace", str(tmp_path)])
