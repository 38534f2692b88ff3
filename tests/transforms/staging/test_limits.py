"""Every export is measured before it is read, and rejected with the limit it passed."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import polars as pl
import pytest

from cohortflow.errors import ConfigError, FileRejected
from cohortflow.settings import Settings
from transforms.staging import limits
from transforms.staging.limits import (
    MB,
    Measured,
    ReadLimits,
    check_export,
    check_size,
    header_width,
    line_lengths,
)
from transforms.staging.mapping import CsvFormat, ParquetFormat, XlsxFormat

CSV = CsvFormat()


@pytest.mark.parametrize("block", [3, 7, 8 * MB])
@pytest.mark.parametrize(
    ("content", "lines", "longest"),
    [
        (b"ab\ncdefg\nhij", 3, 5),
        (b"ab\r\ncdefg\r\nhij\r\n", 3, 5),  # CRLF: one line each
        (b"ab\rcdefgh\rij\r", 3, 6),  # old Mac line ends
        (b"abcdefghij", 1, 10),  # one line, no end
        (b"", 0, 0),
        (b"\n\n\n", 3, 0),
    ],
)
def test_line_lengths_counts_lines_and_the_longest_across_blocks(
    monkeypatch, block, content, lines, longest
):
    """It measures the same whether a line falls inside one block or across several."""
    monkeypatch.setattr(limits, "BLOCK", block)
    assert line_lengths(content) == (lines, longest)


@pytest.mark.parametrize(
    ("content", "fmt", "width"),
    [
        (b'a,"b,c",d\n1,2,3\n', CSV, 3),  # a quoted delimiter is no column
        (b"\xef\xbb\xbfa;b\r\n1;2\r\n", CsvFormat(delimiter=";"), 2),
        (b"x\n", CSV, 1),
    ],
)
def test_header_width_parses_the_first_line_only(content, fmt, width):
    assert header_width(content, fmt) == width


def test_check_export_returns_what_it_measured_of_a_csv():
    """It reports the reader's own accounting: columns, data lines, longest line, size."""
    content = b"id,nprs\nC01-1,3\nC01-2,10\n"
    assert check_export(content, CSV, Path("f.csv")) == Measured(len(content), 2, 2, 8)


@pytest.mark.parametrize(
    ("limit", "rule", "says"),
    [
        (ReadLimits(max_file_bytes=10), "file too large", "0.00001 MB (COHORTFLOW_MAX_FILE_MB)"),
        (ReadLimits(max_line_bytes=5), "line too long", "0.005 KB (COHORTFLOW_MAX_LINE_KB)"),
        (ReadLimits(max_columns=1), "too many columns", "the header has 2 columns"),
        (ReadLimits(max_rows=1), "too many rows", "2 lines after the header"),
    ],
)
def test_check_export_rejects_a_csv_over_a_limit_naming_it(limit, rule, says):
    content = b"id,nprs\nC01-1,3\nC01-2,10\n"
    with pytest.raises(FileRejected) as rejected:
        check_export(content, CSV, Path("C01_followup_1.csv"), limit)
    assert (rejected.value.rule, rejected.value.path) == (rule, "C01_followup_1.csv")
    assert says in rejected.value.detail and "\n" not in str(rejected.value)


def test_check_size_rejects_before_reading():
    check_size(500 * MB, Path("f.csv"), ReadLimits())
    with pytest.raises(FileRejected, match=r"the file is 500\.0 MB, over the limit of 500 MB"):
        check_size(500 * MB + 1, Path("f.csv"), ReadLimits())


def _workbook(rows: int, filler: bytes = b"") -> bytes:
    """A workbook of one sheet 'S': a header and ``rows`` rows (and a padding part)."""
    import xlsxwriter

    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer) as book:
        sheet = book.add_worksheet("S")
        sheet.write_row(0, 0, ["id", "nprs"])
        for i in range(1, rows + 1):
            sheet.write_row(i, 0, [f"P{i}", i % 11])
    if not filler:
        return buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as old, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
        new.writestr("xl/media/padding.bin", filler)
    return out.getvalue()


def test_check_export_accounts_for_a_workbook_from_its_zip_directory():
    """It sums the sizes the ZIP directory declares and the highest ratio of a large part."""
    content = _workbook(3, filler=bytes(5 * MB))
    parts = zipfile.ZipFile(io.BytesIO(content)).infolist()
    padding = next(p for p in parts if p.filename.endswith("padding.bin"))
    generous = ReadLimits(max_compression_ratio=10_000)
    measured = check_export(content, XlsxFormat(sheet="S"), Path("w.xlsx"), generous)
    assert measured.uncompressed_bytes == sum(p.file_size for p in parts)
    assert measured.compression_ratio == padding.file_size / padding.compress_size
    assert (measured.rows, measured.columns) == (3, 2)
    with pytest.raises(FileRejected, match="workbook too compressed"):
        check_export(content, XlsxFormat(sheet="S"), Path("w.xlsx"))
    small = ReadLimits(max_uncompressed_bytes=MB, max_compression_ratio=10_000)
    with pytest.raises(FileRejected, match=r"over the limit of 1 MB .COHORTFLOW_MAX_UNCOMP"):
        check_export(content, XlsxFormat(sheet="S"), Path("w.xlsx"), small)


def test_check_export_rejects_a_damaged_zip_as_unreadable():
    content = _workbook(3)
    with pytest.raises(FileRejected, match="truncated or damaged"):
        check_export(content[: len(content) // 2], XlsxFormat(sheet="S"), Path("w.xlsx"))


def test_check_export_reads_rows_and_columns_of_a_parquet_footer(tmp_path):
    path = tmp_path / "p.parquet"
    pl.DataFrame({"a": range(10), "b": ["x"] * 10, "c": [1.0] * 10}).write_parquet(path)
    content = path.read_bytes()
    measured = check_export(content, ParquetFormat(), path)
    assert (measured.rows, measured.columns) == (10, 3)
    assert measured.uncompressed_bytes and measured.uncompressed_bytes > 0
    with pytest.raises(FileRejected, match=r"\(too many columns\): the file has 3 columns"):
        check_export(content, ParquetFormat(), path, ReadLimits(max_columns=2))
    with pytest.raises(FileRejected, match=r"\(too many rows\): the file has 10 rows"):
        check_export(content, ParquetFormat(), path, ReadLimits(max_rows=9))


def test_read_limits_come_from_the_workspace_settings(tmp_path):
    """It turns the settings' MB and KB into bytes; a limit below 1 is a one-line error."""
    env = {
        "COHORTFLOW_MAX_FILE_MB": "2.5",
        "COHORTFLOW_MAX_UNCOMPRESSED_MB": "10",
        "COHORTFLOW_MAX_COMPRESSION_RATIO": "50",
        "COHORTFLOW_MAX_COLUMNS": "300",
        "COHORTFLOW_MAX_LINE_KB": "64",
        "COHORTFLOW_MAX_ROWS": "1000",
    }
    assert ReadLimits.from_settings(Settings.from_env(tmp_path, env)) == ReadLimits(
        2_500_000, 10_000_000, 50.0, 300, 64_000, 1000
    )
    assert ReadLimits.from_settings(Settings.from_env(tmp_path, {})) == ReadLimits()
    with pytest.raises(ConfigError, match=r"^COHORTFLOW_MAX_COLUMNS='0' must be at least 1"):
        Settings.from_env(tmp_path, {"COHORTFLOW_MAX_COLUMNS": "0"})
