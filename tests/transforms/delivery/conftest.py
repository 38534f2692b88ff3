"""A warehouse with two nights and a failed one, shared by the delivery tests (copied per test)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY
from tests.nights import corrected_export, night
from transforms import warehouse
from transforms.staging.pseudonym import patient_key


@dataclass(frozen=True)
class Built:
    path: Path
    first: str  # snapshot of run-1
    second: str  # snapshot of run-2 (one follow-up corrected)
    key: str  # the corrected patient (C01, month 3)
    old_nprs: int
    new_nprs: int


@pytest.fixture(scope="package")
def built(small_export_workspace, tmp_path_factory) -> Built:
    """Two nights a month apart (the second corrects one NPRS), then a failed night."""
    ws = tmp_path_factory.mktemp("pull") / "ws"
    shutil.copytree(small_export_workspace, ws)
    con, first = night(ws, "run-1")
    con.close()
    target, new_nprs, _ = corrected_export(ws)
    con, second = night(ws, "run-2")
    con.execute(
        """UPDATE runs SET started_at = CASE run_id WHEN 'run-1' THEN TIMESTAMP '2026-01-10 02:00'
                                                   ELSE TIMESTAMP '2026-02-10 02:00' END"""
    )
    con.execute(
        "INSERT INTO runs (run_id, run_seq, started_at, status) "
        "VALUES ('run-3', 3, TIMESTAMP '2026-03-10 02:00', 'failed')"
    )
    con.close()
    key = patient_key(TEST_KEY, "C01", target["record_id"])
    return Built(ws / "warehouse.duckdb", first, second, key, int(target["nprs"]), new_nprs)


@pytest.fixture
def con(built, tmp_path):
    """A private copy of the built warehouse (pulls write to it)."""
    path = tmp_path / "warehouse" / "warehouse.duckdb"  # its own folder: DuckDB adds a .wal
    path.parent.mkdir()
    shutil.copy(built.path, path)
    connection = warehouse.connect(path)
    yield connection
    connection.close()
