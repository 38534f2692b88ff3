"""The order a centre's exports are applied in: the date each was exported, never its name.

A later export corrects an earlier one, so applying two exports of a form in the wrong
order undoes the correction (design.md, invariant 9): ``suivi_C02_15102017`` sorts after
``suivi_C02_01112017``. Each form's mapping declares where the export date comes from
(``export_date``: the file name, a column, or the modification time as a last resort);
``dated`` reads it, ``in_export_order`` sorts a centre's files of the night by it (name
order only between equal dates), and ``hold_late_exports`` keeps a file exported before
the latest export already loaded from undoing that export's newer values.

Without a declaration the modification time orders the files, and a night where that
order matters (several files of one form) says so: a copy can change a modification time.
Dates from the modification time order files within a night only; across nights they are
not trusted to hold a file back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

import polars as pl

from cohortflow.errors import FileRejected
from schemas.forms import FORMS
from transforms.staging.dates import parse_dates
from transforms.staging.inbox import UNRECOGNISED, ExportFile, Rejection
from transforms.staging.mapping import EXCEL_DATE, ColumnDate, FormMapping, NameDate
from transforms.staging.read import read_text_table

FROM_FILE_NAME = "file name"
FROM_MODIFIED = "modification time"
FROM_MODIFIED_UNDECLARED = "modification time (no export date declared)"
RULE = "export date"
FUTURE_DAYS = 1  # a declared export date later than tomorrow is misread (format?)


def shown(day: dt.date | None) -> str:
    """A date as the centres write it (day first)."""
    return day.strftime("%d/%m/%Y") if day else "no date"


def from_data(source: str | None) -> bool:
    """Whether an export date was read from the file (name or column), not from its mtime."""
    return source is not None and not source.startswith(FROM_MODIFIED)


def dated(
    export: ExportFile, content: bytes, mapping: FormMapping, exempt: frozenset[str] = frozenset()
) -> ExportFile:
    """The file with its export date, read as its form's mapping declares.

    Raises ``FileRejected`` when a declared date cannot be read: guessing the date of a
    file whose name or column breaks the declared rule could apply it out of order.
    """
    source = mapping.export_date
    if isinstance(source, NameDate):
        day, where = _date_in_name(export, source), FROM_FILE_NAME
    elif isinstance(source, ColumnDate):
        day = _date_in_column(export, content, mapping, source, exempt)
        where = _column_source(source)
    else:
        modified = export.modified if export.modified is not None else export.path.stat().st_mtime
        day = dt.datetime.fromtimestamp(modified).date()
        where = FROM_MODIFIED if source else FROM_MODIFIED_UNDECLARED
        return replace(export, export_date=day, export_date_source=where, modified=modified)
    if day > dt.date.today() + dt.timedelta(days=FUTURE_DAYS):
        field = f"forms.{export.form}.export_date.format"
        raise FileRejected(
            str(export.path),
            RULE,
            f"{shown(day)} (from the {where}) is in the future: is {field} right?",
        )
    return replace(export, export_date=day, export_date_source=where)


def _column_source(source: ColumnDate) -> str:
    return f"column {source.column!r}" + (", its latest date" if source.take == "latest" else "")


def _date_in_name(export: ExportFile, source: NameDate) -> dt.date:
    """The date the pattern's group finds in the file name, read with the format."""
    declared = (
        f"forms.{export.form}.export_date (pattern '{source.pattern}', format '{source.format}')"
    )
    found = re.search(source.pattern, export.path.name)
    if found is None or found.group(1) is None:
        raise FileRejected(
            str(export.path),
            RULE,
            f"the file name does not match {declared}: rename the file as the centre's other "
            "exports are named, or correct the pattern in the centre's mapping",
        )
    try:
        return dt.datetime.strptime(found.group(1), source.format).date()
    except ValueError:
        raise FileRejected(
            str(export.path),
            RULE,
            f"{found.group(1)!r} in the file name is not a date as {declared} says: "
            "check the format, or ask the centre to rename the file",
        ) from None


def _date_in_column(
    export: ExportFile,
    content: bytes,
    mapping: FormMapping,
    source: ColumnDate,
    exempt: frozenset[str],
) -> dt.date:
    """The column's latest date, or its one date (``take: constant``); any text in it that
    is not a date rejects the file (it would make the date a guess)."""
    where = f"column {source.column!r} (forms.{export.form}.export_date.column)"
    days = _column_days(export, content, mapping, source, where, exempt)
    distinct = days.unique().sort()
    if distinct.is_empty():
        raise FileRejected(str(export.path), RULE, f"{where} holds no date")
    if source.take == "constant" and len(distinct) > 1:
        span = f"{shown(distinct[0])} to {shown(distinct[-1])}"
        raise FileRejected(
            str(export.path),
            RULE,
            f"{where} holds {len(distinct)} different dates ({span}) but "
            f"forms.{export.form}.export_date.take is 'constant'; use 'latest' if that is meant",
        )
    return distinct[-1]


def _column_days(
    export: ExportFile,
    content: bytes,
    mapping: FormMapping,
    source: ColumnDate,
    where: str,
    exempt: frozenset[str],
) -> pl.Series:
    """The column's dates (missing-value markers left out), or the file rejected naming
    the first text that is not a date and its row."""
    raw = read_text_table(content, mapping.format, export.path, exempt=exempt)
    if source.column not in raw.columns:
        raise FileRejected(str(export.path), RULE, f"{where} is not in the header")
    text = (
        raw.select(pl.col(source.column).str.strip_chars().alias("text"))
        .with_row_index("row", offset=1)
        .filter(pl.col("text").is_not_null() & ~pl.col("text").is_in(mapping.missing_values))
        .with_columns(day=_parsed(pl.col("text"), source.format))
    )
    bad = text.filter(pl.col("day").is_null())
    if bad.height:
        row, value = bad.row(0)[:2]
        wanted = source.format or "%Y-%m-%d"
        detail = f"{where}, data row {row}: {value!r} is not a date ({wanted})"
        raise FileRejected(str(export.path), RULE, detail)
    return text["day"]


def _parsed(text: pl.Expr, fmt: str | None) -> pl.Expr:
    if fmt == EXCEL_DATE:
        return parse_dates(text, fmt)
    if fmt is None:  # ISO, also with a time of day (an extraction timestamp)
        return text.str.replace(r"[ T].*$", "").str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    return text.str.strptime(pl.Datetime, fmt, strict=False).dt.date()


class _HasFile(Protocol):
    @property
    def file(self) -> ExportFile: ...


Item = TypeVar("Item", bound=_HasFile)


def in_export_order(items: Sequence[Item]) -> list[Item]:
    """A centre's files of the night in load order: by form (inclusion first), then by
    export date, name order only between equal dates (modification times when the date
    comes from them: two exports of one day)."""
    forms = [*FORMS, UNRECOGNISED]

    def key(item: Item) -> tuple:
        f = item.file
        moment = 0.0 if from_data(f.export_date_source) else (f.modified or 0.0)
        rank = forms.index(f.form) if f.form in forms else len(forms)
        return rank, f.export_date or dt.date.min, moment, f.path.name

    return sorted(items, key=key)


@dataclass(frozen=True)
class LoadedExport:
    """An export already in the warehouse, with the date it was made (``ingested_files``)."""

    centre_id: str
    form: str
    file_hash: str
    file_name: str
    export_date: dt.date | None
    export_date_source: str | None


def hold_late_exports(
    prepared: Sequence[Item], loaded: Iterable[LoadedExport]
) -> list[Item | Rejection]:
    """New files exported before the latest export already loaded for their centre and
    form, rejected: applied now they would undo that export's newer values. A file loaded
    before and staged again (its mapping changed) is the loader's to place, never held.
    Only dates read from the files count (see the module docstring)."""
    latest: dict[tuple[str, str], LoadedExport] = {}
    again: set[tuple[str, str]] = set()
    for row in loaded:
        again.add((row.file_hash, row.form))
        if row.export_date is None or not from_data(row.export_date_source):
            continue
        newest = latest.get((row.centre_id, row.form))
        if newest is None or newest.export_date is None or row.export_date > newest.export_date:
            latest[(row.centre_id, row.form)] = row
    return [
        item if (item.file.file_hash, item.file.form) in again else _held(item, latest)
        for item in prepared
    ]


def _held(item: Item, latest: dict[tuple[str, str], LoadedExport]) -> Item | Rejection:
    f = item.file
    newest = latest.get((f.centre_id, f.form))
    if isinstance(item, Rejection) or newest is None or newest.export_date is None:
        return item
    if f.export_date is None or not from_data(f.export_date_source):
        return item
    if f.export_date >= newest.export_date:
        return item
    if getattr(item, "full_export", False):
        advice = (
            "nothing is lost: the newer full export holds all the centre's current rows; "
            "move this file out of the inbox to clear this message"
        )
    else:
        advice = "if it holds rows no later export has, ask the centre for a new export of them"
    return Rejection(
        f,
        f"late export: exported {shown(f.export_date)} (date from {f.export_date_source}), "
        f"before the export of {shown(newest.export_date)} already loaded "
        f"({newest.file_name}): not applied, so that it does not undo that export's newer "
        f"values; {advice}",
    )


class _Reported(Protocol):
    """A line of the night's per-file report (``transforms.ingest.FileReport``)."""

    @property
    def centre_id(self) -> str: ...
    @property
    def form(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def file_name(self) -> str: ...
    @property
    def export(self) -> ExportFile | None: ...
    @property
    def restaged(self) -> bool: ...


@dataclass(frozen=True)
class AppliedOrder:
    """A centre's exports of one form applied in one night, in the order applied."""

    centre_id: str
    form: str
    files: tuple[ExportFile, ...]

    @property
    def ambiguous(self) -> bool:
        """No export date declared: the order came from modification times."""
        return any(f.export_date_source == FROM_MODIFIED_UNDECLARED for f in self.files)

    def describe(self) -> str:
        """One line for people: the order, and where it came from."""
        head = f"{self.centre_id} {self.form}: {len(self.files)} exports"
        if self.ambiguous:
            names = ", ".join(f.path.name for f in self.files)
            return (
                f"{head} in one night and no export date declared in its mapping: applied in "
                f"order of modification time ({names}); declare forms.{self.form}.export_date "
                "in the centre's mapping so that the order comes from the data"
            )
        dates = [f.export_date for f in self.files]
        ties = "; equal dates in file-name order" if len(set(dates)) < len(dates) else ""
        order = ", ".join(map(shown, dates))
        source = self.files[0].export_date_source
        return f"{head} applied in export order {order} (date from {source}){ties}"


def applied_orders(reports: Iterable[_Reported]) -> list[AppliedOrder]:
    """Where order mattered tonight: a centre's form with more than one new export loaded
    (files staged again after a mapping change are not new: the loader keeps the newer
    export's values whatever their order)."""
    groups: dict[tuple[str, str], list[ExportFile]] = {}
    for r in reports:
        if r.status == "loaded" and r.export is not None and r.form and not r.restaged:
            groups.setdefault((r.centre_id, r.form), []).append(r.export)
    return [AppliedOrder(c, f, tuple(files)) for (c, f), files in groups.items() if len(files) > 1]


def file_notes(reports: Iterable[_Reported]) -> list[str]:
    """Warnings about single files (a modification time in the future), once per file."""
    notes = (
        f"{r.centre_id}/{r.file_name}: {note}"
        for r in reports
        if r.export is not None
        for note in r.export.notes
    )
    return list(dict.fromkeys(notes))


def export_warnings(reports: Sequence[_Reported]) -> list[str]:
    """The night's warnings about export order and file dates."""
    ambiguous = [o.describe() for o in applied_orders(reports) if o.ambiguous]
    return ambiguous + file_notes(reports)
