"""One sheet of an .xlsx workbook looked at before it is read: its size in rows and columns,
and the cells that hold a formula.

The reader (calamine) gives a formula cell's cached value, the number the workbook last
computed: ``=RAND()`` saved as 0 would load as an NPRS of 0. So a sheet with formula
cells is rejected, naming the cells and the functions they call (never their operands,
which may be data). The sheet's XML is streamed from the ZIP once, in blocks, counting
rows and formula tags; only when there are formulas is it parsed (incrementally, up to the
first few) to name them.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from xml.etree import ElementTree

from cohortflow.errors import FileRejected

READ_BLOCK = 1 << 20
HEAD = 4096  # bytes at the start of a sheet searched for its <dimension>
MAX_INDEX_PART = 16 << 20  # workbook.xml and its relations: small in any real workbook
NAMED_FORMULAS = 3  # formula cells named in a rejection
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"([A-Z]+)\d+(?::([A-Z]+)\d+)?\"")
_FUNCTION = re.compile(r"([A-Z][A-Z0-9._]*)\s*\(")


@dataclass(frozen=True)
class WorkbookScan:
    """What one pass over a sheet's XML found."""

    rows: int = 0  # <row> elements, the header's included
    columns: int | None = None  # the sheet's declared dimension, when it has one
    formulas: int = 0  # cells holding a formula
    named: tuple[tuple[str, str], ...] = ()  # (cell, functions called) of the first few

    @property
    def data_rows(self) -> int:
        return max(self.rows - 1, 0)


def scan_sheet(archive: zipfile.ZipFile, sheet: str) -> WorkbookScan:
    """Rows, declared columns and formula cells of ``sheet`` (empty if there is no such
    sheet: the reader then says so in its own words)."""
    part = sheet_part(archive, sheet)
    if part is None:
        return WorkbookScan()
    rows, formulas, head = _count_tags(archive, part)
    scan = WorkbookScan(rows, _declared_columns(head), formulas)
    if formulas:
        scan = WorkbookScan(scan.rows, scan.columns, formulas, _first_formulas(archive, part))
    return scan


def sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The ZIP member holding the sheet named ``sheet`` (workbook.xml and its relations)."""
    book = _small_xml(archive, "xl/workbook.xml")
    relations = _small_xml(archive, "xl/_rels/workbook.xml.rels")
    if book is None or relations is None:
        return None
    # by local names: transitional and strict OOXML differ in their namespaces only
    rel_id = next((_rel_id(s) for s in _named(book, "sheet") if s.get("name") == sheet), None)
    target = next(
        (r.get("Target") for r in _named(relations, "Relationship") if r.get("Id") == rel_id),
        None,
    )
    if not target:
        return None
    part = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
    part = posixpath.normpath(part)
    return part if part in archive.namelist() else None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _named(root: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [e for e in root.iter() if _local(e.tag) == name]


def _rel_id(sheet: ElementTree.Element) -> str | None:
    return next((v for k, v in sheet.attrib.items() if _local(k) == "id" and k != "id"), None)


def _small_xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_INDEX_PART:
        raise ValueError(f"{name} declares {info.file_size:,} bytes: not a workbook index")
    return ElementTree.fromstring(archive.read(info))


def _count_tags(archive: zipfile.ZipFile, part: str) -> tuple[int, int, bytes]:
    """(<row> tags, formula tags, the first block) in one streamed pass.

    Counted with ``bytes.count`` (gigabytes a second), in the namespace prefix the sheet's
    root element uses. A tag cut by a block boundary is counted once: each count is taken
    over the previous block's tail plus the new block, minus the count over the tail alone.
    """
    counts = _Counts()
    with archive.open(part) as stream:
        while block := stream.read(READ_BLOCK):
            counts.add(block)
    counts.add(b"", final=True)
    return counts.rows, counts.formulas, counts.head


class _Counts:
    """Running counts over the blocks of a sheet. The first HEAD bytes are held until the
    root element (and so the namespace prefix) is known, then counted like the rest."""

    def __init__(self) -> None:
        self.rows = self.formulas = 0
        self.head, self.tail = b"", b""
        self.tags: _Tags | None = None

    def add(self, block: bytes, final: bool = False) -> None:
        if self.tags is None:
            self.head += block
            if len(self.head) < HEAD and not final:
                return
            self.tags, block = _Tags.of(self.head), self.head
        window = self.tail + block
        self.rows += self.tags.rows(window) - self.tags.rows(self.tail)
        self.formulas += self.tags.formulas(window) - self.tags.formulas(self.tail)
        self.tail = window[-16:]


_ROOT = re.compile(rb"<(\w{1,8}:)?worksheet[\s>]")


@dataclass(frozen=True)
class _Tags:
    """The tags counted, in the sheet's namespace prefix ('' or e.g. 'x:')."""

    prefix: bytes

    @classmethod
    def of(cls, head: bytes) -> _Tags:
        root = _ROOT.search(head)
        return cls(root.group(1) or b"" if root else b"")

    def rows(self, data: bytes) -> int:
        """<row ...> and <row>, not <rowBreaks> (the one other tag starting so)."""
        opened = b"<" + self.prefix + b"row"
        return data.count(opened) - data.count(opened + b"Breaks")

    def formulas(self, data: bytes) -> int:
        """<f>, <f ...> and <f/> (not <filter...>)."""
        return sum(data.count(b"<" + self.prefix + b"f" + end) for end in (b">", b" ", b"/"))


def _declared_columns(head: bytes) -> int | None:
    """Columns the sheet's <dimension ref="A1:D40"> spans (absent in some writers' files)."""
    match = _DIMENSION.search(head)
    if not match:
        return None
    first, last = match.group(1), match.group(2) or match.group(1)
    return _column_number(last.decode()) - _column_number(first.decode()) + 1


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _first_formulas(archive: zipfile.ZipFile, part: str) -> tuple[tuple[str, str], ...]:
    """(cell, functions called) of the first few formula cells, parsed incrementally."""
    named: list[tuple[str, str]] = []
    rows = None  # sheetData: emptied after each row, so memory stays one row's worth
    with archive.open(part) as stream:
        for event, element in ElementTree.iterparse(stream, events=("start", "end")):
            tag = _local(element.tag)
            if event == "start":
                rows = element if tag == "sheetData" else rows
            elif tag == "c":
                formula = next((f for f in element if _local(f.tag) == "f"), None)
                if formula is not None:
                    calls = sorted(set(_FUNCTION.findall(formula.text or "")))
                    named.append((element.get("r") or "?", ", ".join(calls)))
                if len(named) == NAMED_FORMULAS:
                    break
            elif tag == "row" and rows is not None:
                rows.clear()
    return tuple(named)


def formula_rejection(path, sheet: str, scan: WorkbookScan) -> FileRejected:
    """The file rejected: formula cells would load as their cached values."""
    cells = "; ".join(f"{ref} ({calls})" if calls else ref for ref, calls in scan.named)
    more = ", ..." if scan.formulas > len(scan.named) else ""
    return FileRejected(
        str(path),
        "formula cells",
        f"sheet {sheet!r} has {scan.formulas} cell(s) holding a formula ({cells}{more}): "
        "their cached results would be read as data; ask for an export of values only "
        "(e.g. copy the sheet and paste as values)",
    )
