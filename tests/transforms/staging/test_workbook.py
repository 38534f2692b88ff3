"""A workbook's sheet scanned before it is read: rows, declared columns, formula cells."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from cohortflow.errors import FileRejected
from transforms.staging import workbook
from transforms.staging.workbook import WorkbookScan, formula_rejection, scan_sheet


def _xlsx(formulas: dict[str, tuple[str, float]], rows: int = 3) -> bytes:
    """Sheets 'Data' (a header, ``rows`` rows, ``formulas`` at cells) and 'Other'."""
    import xlsxwriter

    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer) as book:
        book.add_worksheet("Other").write_formula("A1", "=NOW()", None, 0)
        sheet = book.add_worksheet("Data")
        sheet.write_row(0, 0, ["id", "nprs", "x"])
        for i in range(1, rows + 1):
            sheet.write_row(i, 0, [f"P{i}", i])
        for cell, (formula, cached) in formulas.items():
            sheet.write_formula(cell, formula, None, cached)
    return buffer.getvalue()


@pytest.mark.parametrize(("block", "head"), [(5, 40), (64, 100), (1 << 20, 4096), (7, 1 << 20)])
def test_scan_sheet_counts_rows_and_names_formula_cells(monkeypatch, block, head):
    """It counts the same across block boundaries, and looks at the sheet asked only."""
    monkeypatch.setattr(workbook, "READ_BLOCK", block)
    monkeypatch.setattr(workbook, "HEAD", head)
    content = _xlsx({"B3": ("=RAND()", 0), "C2": ("=SUM(B2:B4)+ROUND(1.5,0)", 8)})
    scan = scan_sheet(zipfile.ZipFile(io.BytesIO(content)), "Data")
    dimension = 3 if head > 1000 else None  # <dimension> is read from the head only
    assert scan == WorkbookScan(
        rows=4, columns=dimension, formulas=2, named=(("C2", "ROUND, SUM"), ("B3", "RAND"))
    )
    assert scan.data_rows == 3
    clean = scan_sheet(zipfile.ZipFile(io.BytesIO(_xlsx({}))), "Data")
    assert (clean.rows, clean.formulas, clean.named) == (4, 0, ())


def test_scan_sheet_of_a_missing_sheet_is_empty():
    """The reader then names the missing sheet in its own words."""
    content = _xlsx({})
    assert scan_sheet(zipfile.ZipFile(io.BytesIO(content)), "Nope") == WorkbookScan()


def _hand_written(sheet_xml: bytes) -> zipfile.ZipFile:
    """A minimal workbook whose only sheet 'S' is ``sheet_xml`` (namespaces as written)."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    book = (
        f'<workbook xmlns="{main}" xmlns:r="{rels}"><sheets>'
        '<sheet name="S" sheetId="1" r:id="rId7"/></sheets></workbook>'
    )
    relations = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId7" Type="x" Target="/xl/sheets/s.xml"/></Relationships>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", book)
        archive.writestr("xl/_rels/workbook.xml.rels", relations)
        archive.writestr("xl/sheets/s.xml", sheet_xml)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue()))


def test_scan_sheet_reads_prefixed_namespaces_and_shared_formulas():
    """It finds formulas written as <x:f>, and shared formulas (<f t="shared" .../>)."""
    sheet = (
        b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<x:dimension ref="B2:AB9"/><x:sheetData>'
        b'<x:row r="2"><x:c r="B2"><x:f t="shared" ref="B2:B3" si="0">HYPERLINK("h","y")'
        b"</x:f><x:v>0</x:v></x:c></x:row>"
        b'<x:row r="3"><x:c r="B3"><x:f t="shared" si="0"/><x:v>0</x:v></x:c></x:row>'
        b"</x:sheetData><x:rowBreaks/></x:worksheet>"
    )
    scan = scan_sheet(_hand_written(sheet), "S")
    assert scan == WorkbookScan(
        rows=2, columns=27, formulas=2, named=(("B2", "HYPERLINK"), ("B3", ""))
    )


def test_formula_rejection_names_cells_and_functions_not_operands():
    """It says which cells and functions, never the formula's text (it may hold data)."""
    scan = WorkbookScan(5, 2, 4, (("D3", "RAND"), ("E4", ""), ("F5", "CONCAT")))
    rejected = formula_rejection(Path("w.xlsx"), "Follow-up", scan)
    assert isinstance(rejected, FileRejected) and rejected.rule == "formula cells"
    assert rejected.detail.startswith(
        "sheet 'Follow-up' has 4 cell(s) holding a formula (D3 (RAND); E4; F5 (CONCAT), ...)"
    )
