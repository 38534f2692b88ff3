"""Ways to damage a valid simulated export, as centres' tools and copies really do."""

from __future__ import annotations

import csv
import fnmatch
import io
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

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


# --- over the limits, and workbooks that lie -----------------------------------------------


def drop_header(rows: Rows) -> Rows:
    """An edit: the export without its header row (its first record becomes the header)."""
    return rows[1:]


def wide(n: int) -> Callable[[bytes], bytes]:
    """A byte edit: ``n`` more columns on every line (filler names and values)."""

    def edit(b: bytes) -> bytes:
        lines = b.rstrip(b"\n").split(b"\n")
        head = lines[0] + b"".join(b",c%d" % i for i in range(n))
        return b"\n".join([head, *(line + b",x" * n for line in lines[1:])]) + b"\n"

    return edit


def edit_mapping(folder: Path, edit: Callable[[dict], None]) -> None:
    """Edit the centre's mapping file (the YAML as a dict, changed in place)."""
    import yaml

    path = folder.parent.parent / "centres" / f"{folder.name}.yaml"
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(mapping)
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")


def sheet_member(book: zipfile.ZipFile, sheet: str) -> str:
    """The ZIP member holding ``sheet`` (workbook.xml, then its relations)."""
    rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    sheets = ElementTree.fromstring(book.read("xl/workbook.xml")).iter()
    rel_id = next(s.get(rel) for s in sheets if s.get("name") == sheet)
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next(r.get("Target") for r in rels if r.get("Id") == rel_id)
    return "xl/" + target.removeprefix("/xl/")


def zip_bomb(sheet: str, megabytes: int) -> Callable[[bytes], bytes]:
    """A byte edit of a workbook: ``sheet`` becomes its header and ``megabytes`` MB of rows
    of zeros (stored a thousand times smaller: a few tens of KB)."""
    row = b"<row><c><v>0</v></c><c><v>0</v></c><c><v>0</v></c><c><v>0</v></c></row>"
    header = b'<row r="1"><c r="A1" t="inlineStr"><is><t>Patient ID</t></is></c></row>'

    def edit(b: bytes) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(b)) as old, zipfile.ZipFile(out, "w") as new:
            member = sheet_member(old, sheet)
            for info in old.infolist():
                if info.filename != member:
                    new.writestr(info, old.read(info), zipfile.ZIP_DEFLATED)
                    continue
                info = zipfile.ZipInfo(member)
                info.compress_type = zipfile.ZIP_DEFLATED
                with new.open(info, "w") as part:
                    part.write(b"<worksheet><sheetData>" + header)
                    block = row * (1_000_000 // len(row))
                    for _ in range(megabytes):
                        part.write(block)
                    part.write(b"</sheetData></worksheet>")
        return out.getvalue()

    return edit


def declared_size(sheet: str, size: int) -> Callable[[bytes], bytes]:
    """A byte edit of a workbook whose ZIP headers claim ``sheet`` decompresses to ``size``
    bytes (a lie a reader trusting them would allocate for)."""

    def edit(b: bytes) -> bytes:
        with zipfile.ZipFile(io.BytesIO(b)) as book:
            member = sheet_member(book, sheet)
            local = book.getinfo(member).header_offset
        data = bytearray(b)
        struct.pack_into("<I", data, local + 22, size)  # local header: uncompressed size
        end = data.rindex(b"PK\x05\x06")  # end of central directory: where it starts
        entry = struct.unpack_from("<I", data, end + 16)[0]
        while data[entry : entry + 4] == b"PK\x01\x02":
            name_length, extra, comment = struct.unpack_from("<HHH", data, entry + 28)
            if data[entry + 46 : entry + 46 + name_length].decode() == member:
                struct.pack_into("<I", data, entry + 24, size)  # its uncompressed size
            entry += 46 + name_length + extra + comment
        return bytes(data)

    return edit


def formula_in(sheet: str, row: int, column: int, formula: str, cached: float) -> Callable:
    """An edit of a workbook: data row ``row``, column ``column`` (0-based) of ``sheet``
    holds ``formula`` with ``cached`` as its last computed value (what calamine reads)."""
    import xlsxwriter

    def edit(path: Path) -> None:
        sheets = pl.read_excel(path, sheet_id=0, engine="calamine", infer_schema_length=0)
        buffer = io.BytesIO()
        with xlsxwriter.Workbook(buffer) as book:
            for name, frame in sheets.items():
                worksheet = book.add_worksheet(name)
                worksheet.write_row(0, 0, frame.columns)
                for i, values in enumerate(frame.rows(), 1):
                    worksheet.write_row(i, 0, list(values))
                if name == sheet:
                    worksheet.write_formula(row, column, formula, None, cached)
        path.write_bytes(buffer.getvalue())

    return edit
