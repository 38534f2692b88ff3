"""Pull harmonised tables and analysis views for analysts: reproducible, documented, safe.

A pull reads one state of the warehouse (the current one, an exact past ``snapshot``, or
the state after the last completed run started at or before ``as_of``), derives the
analysis views from that state's tables (a past snapshot gives past views), filters,
selects and writes parquet or CSV with a data card beside it (``<out>.card.json``).
Both files are written to temporary files in the output folder and renamed into place
in the transaction that records the pull in the ``pulls`` table.

* Reproducible: rows sorted by natural key, no timestamp inside the data file, parquet
  written with fixed settings. The same snapshot and query give the same bytes (with the
  same polars version: parquet records its writer).
* Lineage columns (``_file_hash``, ``_source_row``, ``_run_id``) are dropped unless
  ``lineage=True`` or named in ``columns``: they trace files and runs, which a data
  manager needs and an analysis does not.
* CSV is spreadsheet-safe: text cells starting with ``= + - @``, tab or CR get a leading
  ``'`` (OWASP CSV injection); numbers, dates (ISO) and booleans are left alone. The
  ``fr`` dialect uses ``;`` and a decimal comma.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import polars as pl

import cohortflow
from cohortflow.errors import CohortflowError
from schemas.forms import FORMS, VIEW_KEYS
from transforms import warehouse
from transforms.delivery import dictionary
from transforms.derived import views
from transforms.warehouse import ddl, history
from transforms.warehouse.runs import now

TABLES = {form.table: form for form in FORMS.values()}
PULLABLE = (*TABLES, *views.VIEW_NAMES)
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
CSV_DIALECTS = {"default": (",", False), "fr": (";", True)}  # separator, decimal comma
FORMULA_START = r"^[=+\-@\t\r]"  # what a spreadsheet may evaluate (OWASP CSV injection)
# Fixed parquet settings: explicit so that a polars default changing cannot change bytes.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "statistics": True,
    "row_group_size": 262_144,
}
PARQUET_READING = (
    "pandas turns integer columns with nulls into floats unless read with "
    "pd.read_parquet(path, dtype_backend='pyarrow'); polars, DuckDB, R arrow keep the types"
)


class PullError(CohortflowError):
    """A pull that cannot be done as asked; the message says what is valid."""


class UnknownTable(PullError):
    """The table or view named is not pullable."""


class UnknownColumn(PullError):
    """A column asked for is not in the table."""


class UnknownSnapshot(PullError):
    """No completed run produced the snapshot (or none had run at the date asked)."""


class OutputNotWritable(PullError):
    """The output file cannot be written where asked."""


@dataclass(frozen=True)
class PullQuery:
    """What to pull: a table or view, its columns and the rows kept."""

    table: str
    columns: tuple[str, ...] | None = None
    centres: tuple[str, ...] | None = None
    months: tuple[int, ...] | None = None
    lineage: bool = False


@dataclass(frozen=True)
class Target:
    """Where and how the pulled rows are written."""

    path: Path
    fmt: str  # parquet or csv
    csv_dialect: str = "default"


@dataclass(frozen=True)
class State:
    """One state of the warehouse: its tables, snapshot id and the run that closed it."""

    tables: dict[str, pl.DataFrame]
    snapshot_id: str
    run_seq: int | None  # last completed run with this data; None: no run closed it
    run_id: str | None
    resolved_from: str  # "latest", "snapshot" or "as_of <moment>"
    warnings: tuple[str, ...] = ()


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
    as_of: dt.datetime | dt.date | str | None = None,
    lineage: bool = False,
    csv_dialect: str = "default",
    user: str | None = None,
) -> PullResult:
    """Write one table or view of one warehouse state, its data card, and record the pull.

    ``fmt`` defaults to the extension of ``out`` (``.csv``: CSV, else parquet). What
    ``cohortflow pull`` does, given its parsed options.
    """
    query = make_query(table, columns=columns, centres=centres, months=months, lineage=lineage)
    target = Target(Path(out), output_format(Path(out), fmt, csv_dialect), csv_dialect)
    check_output(con, target.path)
    _ensure_pulls_table(con)
    state = resolve_state(con, snapshot=snapshot, as_of=as_of)
    frame, warnings = select_rows(dataset(state.tables, table), query)
    requested = {"snapshot": snapshot, "as_of": _text(as_of), "format": target.fmt}
    if target.fmt == "csv":
        requested["csv_dialect"] = csv_dialect
    return _publish(
        con, frame, target, state, warnings, query=query, requested=requested, user=_user(user)
    )


def _publish(
    con: duckdb.DuckDBPyConnection,
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
    with _staging() as stage:
        data = stage(
            target.path, lambda path: write_data(frame, path, target.fmt, target.csv_dialect)
        )
        result = PullResult(
            output=target.path,
            card=card_path(target.path),
            table=query.table,
            format=target.fmt,
            snapshot_id=state.snapshot_id,
            run_seq=state.run_seq,
            rows=frame.height,
            columns=tuple(frame.columns),
            content_hash=_sha256(data),
            warnings=(*state.warnings, *warnings),
        )
        card = data_card(
            result, state, frame, {**asdict(query), **requested}, target.csv_dialect, user=user
        )
        card_file = stage(result.card, lambda path: _write_json(card, path))
        _commit(con, [(data, result.output), (card_file, result.card)], _pull_record(result, card))
    return result


def make_query(
    table: str,
    *,
    columns: Sequence[str] | None = None,
    centres: Sequence[str] | None = None,
    months: Sequence[int] | None = None,
    lineage: bool = False,
) -> PullQuery:
    """A checked query: the table is validated here, before any SQL is built."""
    if table not in PULLABLE:
        raise UnknownTable(f"unknown table {table!r}: choose one of {', '.join(PULLABLE)}")
    columns, centres, months = _as_tuple(columns), _as_tuple(centres), _as_tuple(months)
    centres = None if centres is None else tuple(str(c) for c in centres)
    if columns is not None and (not columns or len(set(columns)) < len(columns)):
        raise PullError("columns must name at least one column, each once")
    if months is not None and not all(type(m) is int for m in months):
        raise PullError(f"months must be whole numbers (0-12), got {list(months)}")
    return PullQuery(table, columns, centres, months, lineage)


def _as_tuple(values) -> tuple | None:
    """A single string is one value, not a sequence of characters."""
    if values is None:
        return None
    return (values,) if isinstance(values, str | int) else tuple(values)


def output_format(out: Path, fmt: str | None, csv_dialect: str = "default") -> str:
    """The format asked, else the extension's; an extension that contradicts it is an error."""
    implied = FORMATS.get(out.suffix.lower())
    fmt = fmt or implied or "parquet"
    if fmt not in ("parquet", "csv"):
        raise PullError(f"unknown format {fmt!r}: choose parquet or csv")
    if implied and implied != fmt:
        raise PullError(f"{out.name} ends in {out.suffix} but the format is {fmt}: rename it")
    if csv_dialect not in CSV_DIALECTS:
        raise PullError(f"unknown CSV dialect {csv_dialect!r}: choose {', '.join(CSV_DIALECTS)}")
    if fmt != "csv" and csv_dialect != "default":
        raise PullError("the CSV dialect applies to CSV output only (use --format csv)")
    return fmt


def check_output(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    """Fail before any work when the output cannot be written, or would hit the warehouse."""
    if not out.parent.is_dir():
        raise OutputNotWritable(f"cannot write {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise OutputNotWritable(f"cannot write {out}: it is a folder, give a file name")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputNotWritable(f"cannot write {out}: no write permission on {out.parent}")
    databases = con.execute("SELECT path FROM duckdb_databases() WHERE path IS NOT NULL")
    protected = {Path(p).resolve() for (p,) in databases.fetchall()}
    protected |= {p.with_name(p.name + ".wal") for p in protected}
    if out.resolve() in protected or card_path(out).resolve() in protected:
        raise OutputNotWritable(f"refusing to write {out}: it is the warehouse itself")


def card_path(out: Path) -> Path:
    """Where the data card of ``out`` goes: beside it, named after it."""
    return out.with_name(out.name + ".card.json")


def _ensure_pulls_table(con: duckdb.DuckDBPyConnection) -> None:
    """Every pull is recorded, so a pull needs the warehouse open for writing."""
    try:
        con.execute(ddl.PULLS_DDL)
    except duckdb.Error as exc:
        raise PullError(
            f"cannot record the pull in the warehouse ({str(exc).splitlines()[0]}): "
            "open it for writing"
        ) from exc


# --- which state of the warehouse ------------------------------------------------------


def resolve_state(
    con: duckdb.DuckDBPyConnection,
    *,
    snapshot: str | None = None,
    as_of: dt.datetime | dt.date | str | None = None,
) -> State:
    """The warehouse as asked: latest (current tables), an exact snapshot, or as of a time."""
    if snapshot is not None and as_of is not None:
        raise PullError("give a snapshot or an as_of time, not both")
    if snapshot is not None:
        return _snapshot_state(con, snapshot)
    if as_of is not None:
        return _as_of_state(con, parse_as_of(as_of))
    return _latest_state(con)


def _latest_state(con: duckdb.DuckDBPyConnection) -> State:
    tables = warehouse.current_tables(con)
    snapshot = warehouse.content_hash(tables)
    run = warehouse.first_row(
        con,
        """SELECT run_seq, run_id FROM runs WHERE status = 'completed' AND snapshot_id = ?
           ORDER BY run_seq DESC LIMIT 1""",
        [snapshot],
    )
    if run is None:
        note = (
            f"the current data (snapshot {snapshot}) was not closed by a completed run "
            "(a run failed or none ran): this pull cannot be repeated by its snapshot id"
        )
        return State(tables, snapshot, None, None, "latest", (note,))
    return State(tables, snapshot, run[0], run[1], "latest")


def _snapshot_state(con: duckdb.DuckDBPyConnection, snapshot: str) -> State:
    seq = warehouse.snapshot_run_seq(con, snapshot)
    if seq is None:
        known = con.execute(
            """SELECT snapshot_id FROM runs WHERE status = 'completed'
               GROUP BY snapshot_id ORDER BY max(run_seq) DESC LIMIT 5"""
        ).fetchall()
        listed = ", ".join(s for (s,) in known) or "none (no run has completed)"
        raise UnknownSnapshot(f"unknown snapshot {snapshot!r}: latest known: {listed}")
    tables = warehouse.materialise_snapshot(con, snapshot)
    run_id = warehouse.first_row(con, "SELECT run_id FROM runs WHERE run_seq = ?", [seq])[0]
    return State(tables, snapshot, seq, run_id, "snapshot")


def _as_of_state(con: duckdb.DuckDBPyConnection, moment: dt.datetime) -> State:
    run = warehouse.first_row(
        con,
        """SELECT run_seq, run_id, snapshot_id FROM runs
           WHERE status = 'completed' AND started_at <= ? ORDER BY run_seq DESC LIMIT 1""",
        [moment],
    )
    if run is None:
        first = warehouse.first_row(con, "SELECT min(started_at) FROM runs")[0]
        if first is None or moment < first:
            since = f"the first run started {first:%Y-%m-%d %H:%M:%S} UTC" if first else "none yet"
            raise UnknownSnapshot(f"as_of {moment:%Y-%m-%d %H:%M:%S} is before any run ({since})")
        raise UnknownSnapshot(f"no run had completed by {moment:%Y-%m-%d %H:%M:%S} UTC")
    seq, run_id, snapshot = run
    tables = history.tables_as_of(con, seq)
    if warehouse.content_hash(tables) != snapshot:
        raise PullError(f"run {run_id} (snapshot {snapshot}) cannot be rebuilt from history")
    return State(tables, snapshot, seq, run_id, f"as_of {moment.isoformat()}")


def parse_as_of(value: dt.datetime | dt.date | str) -> dt.datetime:
    """A moment in naive UTC, as ``runs.started_at``; a bare date means the end of that day."""
    if isinstance(value, str):
        value = _parse_iso(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.max)
    raise PullError(f"as_of must be a date or date-time, got {value!r}")


def _parse_iso(text: str) -> dt.date | dt.datetime:
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            return parse(text.strip())
        except ValueError:
            continue
    raise PullError(
        f"as_of {text!r} is not an ISO date or date-time (2026-11-27, 2026-11-27T03:00Z)"
    )


# --- what is written ------------------------------------------------------------------


def natural_key(name: str) -> tuple[str, ...]:
    """The columns that identify a row of a table or view (its sort order in a pull)."""
    return TABLES[name].key if name in TABLES else VIEW_KEYS[name]


def dataset(tables: dict[str, pl.DataFrame], name: str) -> pl.DataFrame:
    """A table or view of one state (views derived from that state's tables), in key order."""
    frame = tables[name] if name in TABLES else views.build_views(tables)[name]
    return frame.sort(natural_key(name), maintain_order=True)


def select_rows(frame: pl.DataFrame, query: PullQuery) -> tuple[pl.DataFrame, list[str]]:
    """Filter and select as asked; a filter that matches nothing is a warning, not an error."""
    columns = _output_columns(frame, query)
    kept = frame.filter(_row_filter(frame, query))
    return kept.select(columns), _filter_warnings(frame, kept, query)


def _output_columns(frame: pl.DataFrame, query: PullQuery) -> list[str]:
    if query.columns is None:
        dropped = () if query.lineage else warehouse.LINEAGE_COLUMNS
        return [c for c in frame.columns if c not in dropped]
    unknown = [c for c in query.columns if c not in frame.columns]
    if unknown:
        raise UnknownColumn(
            f"unknown column {', '.join(map(repr, unknown))} in {query.table}: "
            f"valid columns are {', '.join(frame.columns)}"
        )
    extra = [c for c in warehouse.LINEAGE_COLUMNS if c in frame.columns] if query.lineage else []
    return [*query.columns, *[c for c in extra if c not in query.columns]]


def _row_filter(frame: pl.DataFrame, query: PullQuery) -> pl.Expr:
    keep = pl.lit(True)
    if query.centres is not None:
        keep &= pl.col("centre_id").is_in(list(query.centres))
    if query.months is not None:
        if "month" not in frame.columns:
            raise PullError(f"{query.table} has no month column: drop the months filter")
        keep &= pl.col("month").is_in(list(query.months))
    return keep


def _filter_warnings(frame: pl.DataFrame, kept: pl.DataFrame, query: PullQuery) -> list[str]:
    warnings = []
    filters = (("centre", "centre_id", query.centres), ("month", "month", query.months))
    for what, column, asked in filters:
        present = set(frame[column].to_list()) if asked is not None else set()
        missing = [str(v) for v in asked or () if v not in present]
        if missing:
            warnings.append(f"no rows in {query.table} for {what} {', '.join(missing)}")
    if kept.height == 0:
        warnings.append(f"no rows to pull from {query.table}: the output has the header only")
    return warnings


def write_data(frame: pl.DataFrame, path: Path, fmt: str, csv_dialect: str = "default") -> None:
    """Write the pulled rows in the format asked."""
    if fmt == "csv":
        write_csv(frame, path, csv_dialect)
    else:
        frame.write_parquet(path, **PARQUET_OPTIONS)


def write_csv(frame: pl.DataFrame, path: Path, dialect: str = "default") -> None:
    """CSV a spreadsheet opens safely: formulas neutralised, ISO dates, no exponent notation."""
    separator, decimal_comma = CSV_DIALECTS[dialect]
    spreadsheet_safe(frame).write_csv(
        path,
        separator=separator,
        decimal_comma=decimal_comma,
        date_format="%Y-%m-%d",
        float_scientific=False,
        null_value="",
        line_terminator="\n",
    )


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to text a spreadsheet would run as a formula (numbers are not text)."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


# --- data card ------------------------------------------------------------------------


def data_card(
    result: PullResult,
    state: State,
    frame: pl.DataFrame,
    query: dict,
    csv_dialect: str = "default",
    *,
    user: str,
) -> dict:
    """What the file holds and where it comes from, for whoever receives it."""
    card = {
        "file": result.output.name,
        "format": result.format,
        "sha256": result.content_hash,
        "rows": result.rows,
        "table": result.table,
        "about": _about(result.table),
        "snapshot": {
            "id": state.snapshot_id,
            "run_seq": state.run_seq,
            "run_id": state.run_id,
            "resolved_from": state.resolved_from,
        },
        "query": query,
        "sort_key": list(natural_key(result.table)),
        "columns": column_dictionary(result.table, frame),
        "warnings": list(result.warnings),
        "pulled_at": now().isoformat(timespec="seconds") + "Z",
        "pulled_by": user,
        "cohortflow_version": cohortflow.__version__,
        "polars_version": pl.__version__,
    }
    if result.format == "csv":
        card["csv"] = _csv_notes(csv_dialect)
    else:
        card["reading"] = PARQUET_READING
    return card


def _csv_notes(dialect: str) -> dict:
    separator, decimal_comma = CSV_DIALECTS[dialect]
    return {
        "dialect": dialect,
        "separator": separator,
        "decimal_mark": "," if decimal_comma else ".",
        "null": "empty cell",
        "dates": "ISO 8601 (YYYY-MM-DD)",
        "text_neutralised": "text starting with = + - @ tab or CR is prefixed with '",
    }


def _about(table: str) -> str:
    if table in TABLES:
        return (TABLES[table].schema.__doc__ or "").strip()
    return views.VIEW_ABOUT[table]


def column_dictionary(table: str, frame: pl.DataFrame) -> list[dict]:
    """Name, type, description (units) and rules or codes of each column of a pull."""
    docs = _column_docs(table)
    return [
        {"name": name, "type": str(dtype), **docs.get(name, {"description": ""})}
        for name, dtype in frame.schema.items()
    ]


def _column_docs(table: str) -> dict[str, dict]:
    """The data dictionary's sources, in its precedence (see transforms/dictionary.py)."""
    forms = [TABLES[table]] if table in TABLES else list(FORMS.values())
    docs: dict[str, dict] = {}
    for form in forms:
        for name, column in form.schema.to_schema().columns.items():
            docs[name] = _schema_doc(column)
    docs |= {name: {"description": text} for name, text in dictionary.COMMON.items()}
    if table not in TABLES:
        docs |= {name: {"description": text} for name, text in views.DERIVED_COLUMNS.items()}
    return docs


def _schema_doc(column) -> dict:
    doc = {"description": column.description or ""}
    rules = [str(check.error or check.name) for check in column.checks]
    codes = [v for c in column.checks for v in c.statistics.get("allowed_values", [])]
    if rules:
        doc["rules"] = ", ".join(rules)
    if codes:
        doc["codes"] = codes
    return doc


# --- writing files and the record together --------------------------------------------


@contextmanager
def _staging() -> Iterator[Callable[[Path, Callable[[Path], None]], Path]]:
    """Temporary files beside their targets, removed unless they were moved into place."""
    staged: list[Path] = []

    def stage(target: Path, write: Callable[[Path], None]) -> Path:
        temp = _temp_beside(target)
        staged.append(temp)
        write(temp)
        with temp.open("rb") as handle:
            os.fsync(handle.fileno())
        return temp

    try:
        yield stage
    finally:
        for temp in staged:
            temp.unlink(missing_ok=True)


def _temp_beside(target: Path) -> Path:
    """A new file in the target's folder (a rename there is atomic), with normal permissions."""
    try:
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputNotWritable(f"cannot write in {target.parent}: {exc.strerror}") from exc
    os.close(handle)
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(name, 0o666 & ~mask)
    return Path(name)


def _commit(con, moves: list[tuple[Path, Path]], record: dict) -> None:
    """Record the pull and rename its files in one transaction: no file without its record."""
    names = ", ".join(record)  # our own column names, never input
    marks = ", ".join("?" * len(record))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"INSERT INTO pulls ({names}) VALUES ({marks})", [*record.values()])
        for temp, target in moves:
            os.replace(temp, target)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


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


def _write_json(document: dict, path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _user(user: str | None) -> str:
    if user:
        return user
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no USER variable (some containers)
        return "unknown"


def _text(value) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else value


# --- what can be pulled ---------------------------------------------------------------


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
    as_of: dt.datetime | dt.date | str | None = None,
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
            "about": _about(name),
        }
        for name in PULLABLE
    ]
    return Pullable(runs, pl.DataFrame(rows), state.snapshot_id, state.resolved_from)
