"""One writer at a time: a second process gets a clear message, not a DuckDB traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cohortflow.cli import main
from cohortflow.errors import WarehouseBusy
from transforms import warehouse

HOLD = (
    "import sys, time, duckdb\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def held_warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse.connect(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    yield path
    holder.kill()
    holder.wait()


def test_connect_while_another_process_writes_says_so(held_warehouse):
    with pytest.raises(WarehouseBusy, match="in use by another cohortflow process"):
        warehouse.connect(held_warehouse)


def test_cli_status_while_another_process_writes_prints_one_line(
    held_warehouse, capsys, monkeypatch
):
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", "k")
    (held_warehouse.parent / "centres").mkdir()
    assert main(["status", "--workspace", str(held_warehouse.parent)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "in use by another cohortflow process" in err


def test_a_second_night_exits_at_once_with_one_line(held_warehouse, capsys, monkeypatch):
    """Two nights started together: the second says the warehouse is in use, exit 1."""
    monkeypatch.setenv("COHORTFLOW_PSEUDONYM_KEY", "k")
    (held_warehouse.parent / "centres").mkdir()
    assert main(["run", "--workspace", str(held_warehouse.parent)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "in use by another cohortflow process" in err
