"""The record of every pull, kept in its own small file beside the warehouse.

A pull reads the published copy of the warehouse (``warehouse/published.py``), which is
read-only, and must never wait for a night that holds the live file (design invariant
10). So pulls are recorded in ``<workspace>/pulls.duckdb``, which no night opens. Two
pulls at the same moment take turns: recording one takes milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from transforms.delivery.errors import PullError
from transforms.warehouse import ddl

WAIT_SECONDS = 30.0


def ledger_path(warehouse: Path) -> Path:
    """The pull ledger of the workspace whose live warehouse is ``warehouse``."""
    return warehouse.parent / "pulls.duckdb"


@contextmanager
def open_ledger(path: Path, *, wait: float = WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """The ledger open for writing, its ``pulls`` table created; waits while another pull
    records, then fails in one line."""
    deadline = time.monotonic() + wait
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise PullError(f"cannot record the pull in {path}: {_first_line(exc)}") from exc
            time.sleep(0.1)
    try:
        con.execute(ddl.PULLS_DDL)
        yield con
    finally:
        con.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
