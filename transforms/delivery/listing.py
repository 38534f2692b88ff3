"""What can be pulled: the snapshots one can pin a pull to, and each dataset's row count.

What ``cohortflow pull --list`` prints: every run with its snapshot id (a failed run has
none), then every table and view of one state (the latest unless a snapshot or an
``as_of`` time is given) with its rows, whether it has a month column, and what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from transforms.delivery.catalogue import PULLABLE, TABLES, about
from transforms.delivery.state import Moment, resolve_state
from transforms.derived import views


@dataclass(frozen=True)
class Pullable:
    """The snapshots one can pin a pull to, and the tables and views of one state."""

    snapshots: pl.DataFrame  # run_seq, run_id, started_at, status, completed, snapshot_id
    tables: pl.DataFrame  # name, kind, rows, has_month, about
    snapshot_id: str
    resolved_from: str

    def __str__(self) -> str:
        snapshots = self.snapshots.with_columns(pl.col("started_at").dt.strftime("%F %T"))
        with pl.Config(
            tbl_rows=-1,
            tbl_cols=-1,
            tbl_width_chars=200,
            fmt_str_lengths=90,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
            tbl_formatting="ASCII_MARKDOWN",
        ):
            return (
                f"Snapshots (one per run; pin a pull with --snapshot ID or --as-of TIME):\n"
                f"{snapshots}\n\nTables and views at snapshot {self.snapshot_id} "
                f"({self.resolved_from}):\n{self.tables}"
            )


def list_pullable(
    con: duckdb.DuckDBPyConnection,
    *,
    snapshot: str | None = None,
    as_of: Moment | None = None,
) -> Pullable:
    """Known snapshots (from runs) and every pullable table and view with its row count."""
    state = resolve_state(con, snapshot=snapshot, as_of=as_of)
    runs = con.sql(
        """SELECT run_seq, run_id, started_at, status, status = 'completed' AS completed,
                  snapshot_id
           FROM runs ORDER BY run_seq"""
    ).pl()
    frames = state.tables | views.build_views(state.tables)
    rows = [
        {
            "name": name,
            "kind": "table" if name in TABLES else "view",
            "rows": frames[name].height,
            "has_month": "month" in frames[name].columns,
            "about": about(name),
        }
        for name in PULLABLE
    ]
    return Pullable(runs, pl.DataFrame(rows), state.snapshot_id, state.resolved_from)
