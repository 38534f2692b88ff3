"""The files a pull writes: format, CSV dialect, fixed parquet settings, atomic publication.

* Reproducible: no timestamp inside the data file, parquet written with fixed settings.
  The same rows give the same bytes (with the same polars version: parquet records its
  writer).
* CSV is spreadsheet-safe (``staging.spreadsheet``, shared with every CSV written for
  people): text cells a spreadsheet would run get a leading ``'`` (OWASP CSV injection);
  numbers, dates (ISO) and booleans are left alone. The ``fr`` dialect uses ``;`` and a
  decimal comma.
* Atomic: each file is written to a temporary file in its target's folder (a rename there
  is atomic) and renamed into place in the transaction that records it, so there is no
  file without its record and a failure leaves the previous output as it was.
* Safe to point anywhere: an existing file is replaced only when asked (``force``), and
  never a device, a pipe, a link, a folder, the warehouse, nor anything inside the
  workspace's own folders (inbox, mappings, reports, artifacts, Prefect's home).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from cohortflow.errors import storage_error
from transforms.delivery.errors import OutputNotWritable, PullError
from transforms.staging.spreadsheet import spreadsheet_safe

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
CSV_DIALECTS = {"default": (",", False), "fr": (";", True)}  # separator, decimal comma

Stage = Callable[[Path, Callable[[Path], None]], Path]  # (target, write) -> temporary file


@dataclass(frozen=True)
class Target:
    """Where and how the pulled rows are written."""

    path: Path
    fmt: str  # parquet or csv
    csv_dialect: str = "default"


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


def write_data(frame: pl.DataFrame, path: Path, fmt: str, csv_dialect: str = "default") -> None:
    """Write the pulled rows in the format asked."""
    if fmt == "csv":
        write_csv(frame, path, csv_dialect)
    else:
        write_parquet(frame, path)


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Parquet with fixed settings, explicit: a polars default changing cannot change bytes."""
    frame.write_parquet(
        path,
        compression="zstd",
        compression_level=3,
        statistics=True,
        row_group_size=262_144,
    )


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
