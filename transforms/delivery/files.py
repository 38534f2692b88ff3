"""The files a pull writes: format, CSV dialect, fixed parquet settings, atomic publication.

* Reproducible: no timestamp inside the data file, parquet written with fixed settings.
  The same rows give the same bytes (with the same polars version: parquet records its
  writer).
* CSV is spreadsheet-safe (``staging.spreadsheet``, shared with every CSV written for
  people): text cells a spreadsheet would run get a leading ``'`` (OWASP CSV injection);
  numbers, dates (ISO) and booleans are left alone. The ``fr`` dialect uses ``;`` and a
  decimal comma. Floats are written at the precision a
  double holds (15 significant digits, as R's ``write.csv``): ``19.53957``, never the
  arithmetic's ``19.539569999999998``.
* Parquet carries each column's label, unit and description in its schema (Arrow field
  metadata) and, for DuckDB readers, as JSON under the file key ``cohortflow.columns``.
* Stata, SPSS and SAS files carry variable and value labels (``statfiles.py``).
* The format comes from ``--format`` or the extension; an unknown extension is an error.
* Safe to point anywhere: an existing file is replaced only when asked (``force``), and
  never a device, a pipe, a link, a folder, the warehouse, nor anything inside the
  workspace's own folders (inbox, mappings, reports, artifacts, Prefect's home).
* Atomic: each file is written to a temporary file in its target's folder (a rename there
  is atomic) and renamed into place in the transaction that records it, so there is no
  file without its record and a failure leaves the previous output as it was.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from cohortflow.errors import storage_error
from transforms.delivery.columns import ColumnDoc
from transforms.delivery.errors import OutputNotWritable, PullError
from transforms.delivery.statfiles import STATS_FORMATS, write_stats_file
from transforms.staging.spreadsheet import spreadsheet_safe

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".dta": "dta",
    ".sav": "sav",
    ".xpt": "xpt",
}
FORMAT_CHOICES = "parquet (.parquet), csv (.csv), dta (Stata), sav (SPSS), xpt (SAS transport)"
CSV_DIALECTS = {"default": (",", False), "fr": (";", True)}  # separator, decimal comma
# The significant digits a double and a float hold (CSV floats are written at this precision).
SIGNIFICANT_DIGITS: dict[pl.DataType | type[pl.DataType], int] = {pl.Float64: 15, pl.Float32: 7}

Stage = Callable[[Path, Callable[[Path], None]], Path]  # (target, write) -> temporary file


@dataclass(frozen=True)
class Target:
    """Where and how the pulled rows are written."""

    path: Path
    fmt: str  # parquet, csv, dta, sav or xpt
    csv_dialect: str = "default"


def output_format(out: Path, fmt: str | None, csv_dialect: str = "default") -> str:
    """The format asked, else the extension's; an unknown extension, or one that
    contradicts the format asked, is an error (never a file whose name lies)."""
    implied = _implied_format(out, fmt)
    fmt = fmt or implied
    if fmt not in set(FORMATS.values()):
        raise PullError(f"unknown format {fmt!r}: choose {FORMAT_CHOICES}")
    if implied and implied != fmt:
        raise PullError(f"{out.name} ends in {out.suffix} but the format is {fmt}: rename it")
    if csv_dialect not in CSV_DIALECTS:
        raise PullError(f"unknown CSV dialect {csv_dialect!r}: choose {', '.join(CSV_DIALECTS)}")
    if fmt != "csv" and csv_dialect != "default":
        raise PullError("the CSV dialect applies to CSV output only (use --format csv)")
    return fmt


def _implied_format(out: Path, fmt: str | None) -> str | None:
    """The format of ``out``'s extension; an unknown one (``x.xlsx``) is refused."""
    if out.suffix.lower() in FORMATS:
        return FORMATS[out.suffix.lower()]
    if out.suffix:
        raise PullError(f"{out.name}: unknown extension {out.suffix}; pull writes {FORMAT_CHOICES}")
    if fmt is None:
        raise PullError(f"{out.name} has no extension: name the file {FORMAT_CHOICES}")
    return None


def check_output(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    *,
    force: bool = False,
    protected: Sequence[Path] = (),
) -> None:
    """Fail before any work when the output cannot be written, would replace a file not
    asked to (``force``), is no regular file, or lies in the warehouse or ``protected``."""
    if not out.parent.is_dir():
        raise OutputNotWritable(f"cannot write {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputNotWritable(f"cannot write {out}: no write permission on {out.parent}")
    databases = con.execute("SELECT path FROM duckdb_databases() WHERE path IS NOT NULL")
    warehouse = {Path(p).resolve() for (p,) in databases.fetchall()}
    warehouse |= {p.with_name(p.name + ".wal") for p in warehouse}
    if out.resolve() in warehouse or card_path(out).resolve() in warehouse:
        raise OutputNotWritable(f"refusing to write {out}: it is the warehouse itself")
    inside = next((p for p in protected if out.resolve().is_relative_to(p.resolve())), None)
    if inside is not None:
        raise OutputNotWritable(
            f"refusing to write {out}: it is inside {inside}, which cohortflow keeps; "
            "write pulls elsewhere"
        )
    for path in (out, card_path(out)):
        _check_target(path, force)


def _check_target(path: Path, force: bool) -> None:
    """A target is a regular file path: new, or an existing regular file when ``force``."""
    if path.is_symlink():
        raise OutputNotWritable(f"refusing to write {path}: it is a symbolic link")
    if not path.exists():
        return
    if path.is_dir():
        raise OutputNotWritable(f"cannot write {path}: it is a folder, give a file name")
    if not path.is_file():
        raise OutputNotWritable(
            f"refusing to write {path}: not a regular file (a device, pipe or socket)"
        )
    if not force:
        raise OutputNotWritable(
            f"{path} exists: a pull never replaces a file unless asked (--force)"
        )


def card_path(out: Path) -> Path:
    """Where the data card of ``out`` goes: beside it, named after it."""
    return out.with_name(out.name + ".card.json")


# --- the data file ----------------------------------------------------------------------


def write_data(
    frame: pl.DataFrame,
    path: Path,
    fmt: str,
    csv_dialect: str = "default",
    docs: dict[str, ColumnDoc] | None = None,
    *,
    table: str = "data",
) -> None:
    """Write the pulled rows in the format asked, with the columns' ``docs`` (labels)."""
    docs = docs or {}
    if fmt == "csv":
        write_csv(frame, path, csv_dialect)
    elif fmt in STATS_FORMATS:
        write_stats_file(frame, path, fmt, docs, table=table)
    else:
        write_parquet(frame, path, docs)


def write_parquet(
    frame: pl.DataFrame, path: Path, docs: dict[str, ColumnDoc] | None = None
) -> None:
    """Parquet with fixed settings, explicit: a polars default changing cannot change bytes."""
    frame.write_parquet(
        path,
        compression="zstd",
        compression_level=3,
        statistics=True,
        row_group_size=262_144,
        arrow_schema=described_schema(frame, docs or {}),
        metadata={"cohortflow.columns": _columns_json(frame, docs or {})},
    )


def described_schema(frame: pl.DataFrame, docs: dict[str, ColumnDoc]) -> pa.Schema:
    """The frame's Arrow schema, each documented field with its label, unit, description."""
    fields = []
    for arrow_field in frame.to_arrow().schema:
        doc = docs.get(arrow_field.name)
        if doc is not None:
            meta = {"label": doc.label, "unit": doc.unit, "description": doc.description}
            arrow_field = arrow_field.with_metadata({k: v for k, v in meta.items() if v})
        fields.append(arrow_field)
    return pa.schema(fields)


def _columns_json(frame: pl.DataFrame, docs: dict[str, ColumnDoc]) -> str:
    """The same facts as one JSON text (DuckDB reads file keys: parquet_kv_metadata)."""
    columns = {name: docs[name].as_card() for name in frame.columns if name in docs}
    return json.dumps(columns, ensure_ascii=False, sort_keys=True)


def write_csv(frame: pl.DataFrame, path: Path, dialect: str = "default") -> None:
    """CSV a spreadsheet opens safely: formulas neutralised, ISO dates, no exponent notation,
    floats at their stored precision."""
    separator, decimal_comma = CSV_DIALECTS[dialect]
    spreadsheet_safe(stored_precision(frame)).write_csv(
        path,
        separator=separator,
        decimal_comma=decimal_comma,
        date_format="%Y-%m-%d",
        float_scientific=False,
        null_value="",
        line_terminator="\n",
    )


def stored_precision(frame: pl.DataFrame) -> pl.DataFrame:
    """Floats rounded to the significant digits their type holds (a double 15, as R's
    ``write.csv``; a float 7), so the CSV shows ``19.53957``, not the noise of the
    arithmetic that made it (``19.539569999999998``). Read back, a value differs from the
    stored one by less than the type's own precision."""
    return frame.with_columns(
        _at_precision(frame[name], SIGNIFICANT_DIGITS[dtype])
        for name, dtype in frame.schema.items()
        if dtype in SIGNIFICANT_DIGITS
    )


def _at_precision(column: pl.Series, digits: int) -> pl.Series:
    """polars' vectorised rounding, exact where its scaling by 10^k is (|x| in 1e-8 to
    1e15, all clinical values); Python's correctly rounded ``%.15g`` for the rare rest."""
    rounded = column.cast(pl.Float64).round_sig_figs(digits)
    size = column.abs()
    rare = (size < 1e-8) | (size >= 1e15)
    rare = (rare & column.is_finite() & (size > 0)).fill_null(False)
    if not rare.any():
        return rounded
    exact = [_rounded(value, digits) for value in column.filter(rare)]
    return rounded.scatter(rare.arg_true(), exact)


def _rounded(value: float, digits: int) -> float:
    """``value`` at ``digits`` significant digits (one fewer where rounding up would pass
    the largest double)."""
    short = float(f"{value:.{digits}g}")
    return short if math.isfinite(short) else float(f"{value:.{digits - 1}g}")


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (a pull may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- writing files and their record together ---------------------------------------------


@contextmanager
def staging() -> Iterator[Stage]:
    """Temporary files beside their targets, removed unless they were moved into place."""
    staged: list[Path] = []

    def stage(target: Path, write: Callable[[Path], None]) -> Path:
        temp = _temp_beside(target)
        staged.append(temp)
        try:
            write(temp)
            with temp.open("rb") as handle:
                os.fsync(handle.fileno())
        except Exception as exc:  # a full disk, in whatever words the writer uses
            problem = storage_error(exc, target)
            if problem is None:
                raise
            raise problem from exc
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


def commit(
    con: duckdb.DuckDBPyConnection, moves: list[tuple[Path, Path]], *, table: str, record: dict
) -> None:
    """Insert ``record`` into ``table`` and rename the staged files in one transaction.

    So there is no file without its record, and no record without its file. ``table`` and
    the record's keys are our own names, never input.
    """
    names = ", ".join(record)
    marks = ", ".join("?" * len(record))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", [*record.values()])
        for temp, target in moves:
            os.replace(temp, target)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
