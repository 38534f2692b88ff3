"""Ways to damage a valid simulated export, as centres' tools and copies really do."""

from __future__ import annotations

import csv
import fnmatch
import io
import random
from collections.abc import Callable
from pathlib import Path

import polars as pl

from transforms.staging.mapping import CentreMapping, CsvFormat, load_centre_mapping

Rows = list[list[str]]  # a CSV's records, the header first


def mapping_of(folder: Path) -> CentreMapping:
    """The mapping of the centre whose inbox folder this is (workspace/inbox/<centre>)."""
    return load_centre_mapping(folder.parent.parent / "centres" / f"{folder.name}.yaml")


def export_of(folder: Path, form: str) -> Path:
    """The centre's export file holding ``form`` (for a workbook: the workbook)."""
    pattern = mapping_of(folder).forms[form].file_pattern
    return next(p for p in sorted(folder.glob(pattern)))


def edit_csv(path: Path, edit: Callable[[Rows], Rows]) -> None:
    """Rewrite a CSV export through ``edit``, in the centre's own delimiter and encoding."""
    fmt = _csv_format(path)
    text = path.read_bytes().decode(fmt.encoding)
    rows = list(csv.reader(io.StringIO(text), delimiter=fmt.delimiter))
    out = io.StringIO()
    csv.writer(out, delimiter=fmt.delimiter, lineterminator="\n").writerows(edit(rows))
    path.write_bytes(out.getvalue().encode(fmt.encoding))


def _csv_format(path: Path) -> CsvFormat:
    forms = mapping_of(path.parent).forms.values()
    return next(m.format for m in forms if fnmatch.fnmatch(path.name, m.file_pattern))


def set_cell(column: str, row: int, value: str) -> Callable[[Rows], Rows]:
    """An edit: data row ``row`` (1-based, the header not counted) gets ``value``."""

    def edit(rows: Rows) -> Rows:
        rows[row][rows[0].index(column)] = value
        return rows

    return edit


def add_column(name: str, values: Callable[[int], str]) -> Callable[[Rows], Rows]:
    """An edit: a new last column, ``values(i)`` on data row i."""

    def edit(rows: Rows) -> Rows:
        return [rows[0] + [name]] + [r + [values(i)] for i, r in enumerate(rows[1:], 1)]

    return edit


def drop_column(name: str) -> Callable[[Rows], Rows]:
    def edit(rows: Rows) -> Rows:
        k = rows[0].index(name)
        return [r[:k] + r[k + 1 :] for r in rows]

    return edit


def append_row(copy_of: int, **changes: str) -> Callable[[Rows], Rows]:
    """An edit: data row ``copy_of`` again at the end, with some values changed."""

    def edit(rows: Rows) -> Rows:
        row = list(rows[copy_of])
        for column, value in changes.items():
            row[rows[0].index(column)] = value
        return [*rows, row]

    return edit


def edit_bytes(path: Path, edit: Callable[[bytes], bytes]) -> None:
    path.write_bytes(edit(path.read_bytes()))


def garbage(n: int, seed: int = 9) -> bytes:
    """``n`` random bytes, the same every run."""
    return random.Random(seed).randbytes(n)


def edit_parquet(path: Path, edit: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    edit(pl.read_parquet(path)).write_parquet(path)


def rewrite_sheet(path: Path, sheet: str, header: list[str]) -> None:
    """Rewrite one sheet of a workbook with another header row (values kept, as text)."""
    import xlsxwriter  # the tests, like the simulator, write workbooks

    sheets = pl.read_excel(path, sheet_id=0, engine="calamine")
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer) as book:
        for name, frame in sheets.items():
            if name != sheet:
                frame.write_excel(book, worksheet=name)
                continue
            worksheet = book.add_worksheet(name)
            worksheet.write_row(0, 0, header)
            for i, row in enumerate(frame.cast(pl.String).rows(), 1):
                worksheet.write_row(i, 0, list(row))
    path.write_bytes(buffer.getvalue())


def workbook_bytes() -> bytes:
    """A small valid workbook (what a centre sends when it saves as .xlsx by mistake)."""
    import xlsxwriter

    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer) as book:
        book.add_worksheet("Sheet1").write_row(0, 0, ["record_id", "nprs"])
    return buffer.getvalue()
