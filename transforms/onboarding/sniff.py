"""A CSV export's dialect (encoding, delimiter, decimal mark) guessed from its bytes.

The first step of profiling a file nobody has described yet: the guess decides how the
file is read as text (``read_csv_text``, every column a string, as the staging reader
reads it) and becomes the ``format`` of the drafted mapping.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

import polars as pl

from transforms.onboarding.shapes import DECIMAL_COMMA, DECIMAL_POINT
from transforms.staging.mapping import CsvFormat, DecimalMark, Encoding

SNIFF_LINES = 50  # lines read to guess the delimiter
SNIFF_ROWS = 1000  # rows read to guess the decimal mark
DELIMITERS = (",", ";", "\t", "|")


def sniff_csv_format(content: bytes) -> CsvFormat:
    """Guess a CSV export's encoding, delimiter and decimal mark from its bytes."""
    encoding = _guess_encoding(content)
    text = content.decode(encoding)
    delimiter = _guess_delimiter(text.split("\n", SNIFF_LINES)[:SNIFF_LINES])
    decimal = _guess_decimal(text, delimiter)
    return CsvFormat(delimiter=delimiter, decimal=decimal, encoding=encoding)


def _guess_encoding(content: bytes) -> Encoding:
    """utf-8(-sig) when it decodes; else cp1252 if it uses cp1252's extra characters."""
    if content.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" (TSV)
        return "utf-16"
    try:
        content.decode("utf-8")
        return "utf-8"  # ASCII included
    except UnicodeDecodeError:
        pass
    if re.search(rb"[\x80-\x9f]", content):  # latin-1 control codes, cp1252's letters
        try:
            content.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return "latin-1"  # decodes anything; ISO-8859-15 and friends are closest to it


def _guess_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the most lines into the same number (> 1) of fields."""
    best, best_score = ",", (False, 0.0, 0)
    for delimiter in DELIMITERS:
        counts = [
            len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
        ]
        counts = [n for n in counts if n]
        if not counts:
            continue
        width, frequency = Counter(counts).most_common(1)[0]
        score = (width > 1, frequency / len(counts), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _guess_decimal(text: str, delimiter: str) -> DecimalMark:
    """',' when numeric-looking cells use a decimal comma more often than a point."""
    try:
        sample = _parse_csv(text, delimiter, n_rows=SNIFF_ROWS)
    except pl.exceptions.PolarsError:
        return "."
    if sample.width == 0 or sample.height == 0:
        return "."
    cells = sample.select(pl.concat_list(pl.all()).alias("v")).explode("v")["v"].str.strip_chars()
    commas = cells.str.contains(DECIMAL_COMMA).sum()
    points = cells.str.contains(DECIMAL_POINT).sum()
    return "," if commas > points else "."


def _parse_csv(text: str, delimiter: str, *, n_rows: int | None = None) -> pl.DataFrame:
    """All-text columns, read as transforms.staging.read reads them."""
    return pl.read_csv(
        io.BytesIO(text.encode("utf-8")),
        separator=delimiter,
        quote_char='"',
        infer_schema=False,
        empty_string_is_null=False,
        n_rows=n_rows,
    )


def read_csv_text(content: bytes, fmt: CsvFormat) -> pl.DataFrame:
    """An export as all-text columns in the given format (no identifier check: we profile)."""
    text = content.decode(fmt.encoding).removeprefix("\ufeff")
    lines = text.split("\n", fmt.skip_rows)
    return _parse_csv(lines[-1] if fmt.skip_rows else text, fmt.delimiter)


TITLE_LINES = 5  # at most, above a header


def title_lines(content: bytes, fmt: CsvFormat) -> int:
    """Lines above the header (a report's title, an extraction date): each holds at most
    one value where the header and the rows under it hold several."""
    lines = content.decode(fmt.encoding).removeprefix("\ufeff").splitlines()[: TITLE_LINES + 3]
    filled = [sum(bool(v.strip()) for v in line.split(fmt.delimiter)) for line in lines]
    for skip in range(min(TITLE_LINES, len(filled) - 2)):
        if filled[skip] > 1:
            return 0
        if filled[skip + 1] >= 3 and filled[skip + 2] >= 2:
            return skip + 1
    return 0
