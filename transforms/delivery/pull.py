"""Pull harmonised tables and analysis views for analysts: reproducible, documented, safe.

A pull reads one state of the warehouse (the current one, an exact past ``snapshot``, or
the state after the last completed run started at or before ``as_of``), derives the
analysis views from that state's tables (a past snapshot gives past views), filters,
selects and writes parquet, CSV, Stata, SPSS or SAS transport (the format asked, or the
extension's) with a data card beside it (``<out>.card.json``).
Both files are written to temporary files in the output folder and renamed into place
in the transaction that records the pull in the ``pulls`` table (of the pull ledger,
``ledger.py``, when the CLI reads the published read-only copy).

This module is the entry point of ``cohortflow pull``; the steps live beside it:

* ``catalogue``: the pullable tables and views, their natural keys (the sort order);
* ``state``: which state of the warehouse (latest, snapshot, as of a time);
* ``query``: the columns, centres and months kept, and the warnings of a filter;
* ``files``: format, CSV dialects, spreadsheet-safe cells, fixed parquet settings, and
  the atomic staging and commit of the files with their record; ``statfiles``: Stata,
  SPSS and SAS transport files with variable and value labels;
* ``columns``: each column's label, unit, codes and derivation (card, labels, metadata);
* ``card``: the data card and its column dictionary;
* ``listing``: what can be pulled (``cohortflow pull --list``);
* ``errors``: the one-line errors a pull raises.

The same snapshot and query give the same bytes (with the same polars version: parquet
records its writer).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import polars as pl

import cohortflow
from transforms.delivery.card import data_card, write_card
from transforms.delivery.catalogue import dataset
from transforms.delivery.columns import column_docs
from transforms.delivery.errors import (
    OutputNotWritable,
    PullError,
    UnknownColumn,
    UnknownSnapshot,
    UnknownTable,
)
from transforms.delivery.files import (
    Target,
    card_path,
    check_output,
    commit,
    output_format,
    sha256,
    staging,
    write_data,
)
from transforms.delivery.listing import Pullable, list_pullable
from transforms.delivery.query import PullQuery, make_query, select_rows
from transforms.delivery.state import Moment, State, resolve_state
from transforms.delivery.statfiles import format_warnings
from transforms.warehouse import ddl

__all__ = [  # what callers of ``cohortflow pull`` use (the CLI imports pull and list_pullable)
    "OutputNotWritable",
    "PullError",
    "PullResult",
    "Pullable",
    "UnknownColumn",
    "UnknownSnapshot",
    "UnknownTable",
    "list_pullable",
    "pull",
]


@dataclass(frozen=True)
class PullResult:
    """What a pull wrote: enough to report it and to check the file later."""

    output: Path
    card: Path
    table: str
    format: str
    snapshot_id: str
    run_seq: int | None
    rows: int
    columns: tuple[str, ...]
    content_hash: str  # sha256 of the output file
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """What the CLI prints after a pull (warnings go to stderr separately)."""
        run = f"run {self.run_seq}" if self.run_seq is not None else "no completed run"
        return (
            f"{self.rows} rows of {self.table} at snapshot {self.snapshot_id} ({run}) "
            f"-> {self.output}\ndata card: {self.card}\nsha256: {self.content_hash}"
        )


def pull(
    con: duckdb.DuckDBPyConnection,
    table: str,
    out: Path | str,
    *,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
    centres: Sequence[str] | None = None,
    months: Sequence[int] | None = None,
    snapshot: str | None = None,
    as_of: Moment | None = None,
    lineage: bool = False,
    csv_dialect: str = "default",
    user: str | None = None,
    force: bool = False,
    protected: Sequence[Path] = (),
    ledger: duckdb.DuckDBPyConnection | None = None,
) -> PullResult:
    """Write one table or view of one warehouse state, its data card, and record the pull.

    ``fmt`` defaults to the extension of ``out`` (``.parquet``, ``.csv``, ``.dta``,
    ``.sav``, ``.xpt``; another extension, or none, is an error). An existing output (or
    card) is replaced only with ``force``; nothing is written inside ``protected`` folders
    (the CLI passes the workspace's own). ``ledger``: where the pull is recorded
    (``ledger.py``; the CLI reads a read-only copy); None: in ``con`` itself. What
    ``cohortflow pull`` does, given its parsed options.
    """
    query = make_query(table, columns=columns, centres=centres, months=months, lineage=lineage)
    record_in = con if ledger is None else ledger
    for database in {id(con): con, id(record_in): record_in}.values():  # neither file
        check_output(database, Path(out), force=force, protected=protected)
    target = Target(Path(out), output_format(Path(out), fmt, csv_dialect), csv_dialect)
    _ensure_pulls_table(record_in)
    state = resolve_state(con, snapshot=snapshot, as_of=as_of)
    frame, warnings = select_rows(dataset(state.tables, table), query)
    warnings += format_warnings(frame, target.fmt)
    requested = {"snapshot": snapshot, "as_of": _text(as_of), "format": target.fmt}
    if target.fmt == "csv":
        requested["csv_dialect"] = csv_dialect
    return _publish(
        record_in,
        frame,
        target,
        state,
        warnings,
        query=query,
        requested=requested,
        user=_user(user),
    )


def _publish(
    ledger: duckdb.DuckDBPyConnection,
    frame: pl.DataFrame,
    target: Target,
    state: State,
    warnings: list[str],
    *,
    query: PullQuery,
    requested: dict,
    user: str,
) -> PullResult:
    """Stage the data and its card beside the target, then record and rename them at once."""
    with staging() as stage:
        docs = column_docs(query.table)
        data = stage(
            target.path,
            lambda path: write_data(
                frame, path, target.fmt, target.csv_dialect, docs, table=query.table
            ),
        )
        result = _result(frame, target, state, table=query.table, data=data, warnings=warnings)
        card = data_card(
            frame,
            target,
            state,
            table=result.table,
            sha256=result.content_hash,
            query={**asdict(query), **requested},
            warnings=result.warnings,
            user=user,
        )
        card_file = stage(result.card, lambda path: write_card(card, path))
        moves = [(data, result.output), (card_file, result.card)]
        commit(ledger, moves, table="pulls", record=_pull_record(result, card))
    return result


def _result(
    frame: pl.DataFrame,
    target: Target,
    state: State,
    *,
    table: str,
    data: Path,
    warnings: list[str],
) -> PullResult:
    """What the pull writes, its hash taken from the staged data file ``data``."""
    return PullResult(
        output=target.path,
        card=card_path(target.path),
        table=table,
        format=target.fmt,
        snapshot_id=state.snapshot_id,
        run_seq=state.run_seq,
        rows=frame.height,
        columns=tuple(frame.columns),
        content_hash=sha256(data),
        warnings=(*state.warnings, *warnings),
    )


def _ensure_pulls_table(con: duckdb.DuckDBPyConnection) -> None:
    """Every pull is recorded, so a pull needs the warehouse open for writing."""
    try:
        con.execute(ddl.PULLS_DDL)
    except duckdb.Error as exc:
        raise PullError(
            f"cannot record the pull in the warehouse ({str(exc).splitlines()[0]}): "
            "open it for writing"
        ) from exc


def _pull_record(result: PullResult, card: dict) -> dict:
    """A row of ``pulls``: the card's query, so the record and the card never disagree."""
    return {
        "pulled_at": dt.datetime.fromisoformat(card["pulled_at"].removesuffix("Z")),
        "os_user": card["pulled_by"],
        "table_name": result.table,
        "query": json.dumps(card["query"], sort_keys=True),
        "snapshot_id": result.snapshot_id,
        "run_seq": result.run_seq,
        "format": result.format,
        "rows": result.rows,
        "output_path": str(result.output.resolve()),
        "content_hash": result.content_hash,
        "cohortflow_version": cohortflow.__version__,
    }


def _user(user: str | None) -> str:
    """The user named, else the OS login name (``unknown`` when there is none)."""
    if user:
        return user
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no USER variable (some containers)
        return "unknown"


def _text(value: Moment | None) -> str | None:
    """An ``as_of`` as the card and the record show it (ISO text, as given if text)."""
    return value.isoformat() if isinstance(value, dt.date) else value
