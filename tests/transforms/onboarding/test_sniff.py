"""A CSV export's encoding, delimiter and decimal mark, guessed from its bytes."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transforms.onboarding.samples import FR_FOLLOW_UP
from transforms.onboarding.sniff import sniff_csv_format
from transforms.staging.mapping import CsvFormat


def test_sniff_csv_format_french_locale():
    """It finds ';', latin-1 and the decimal comma of a French spreadsheet export."""
    fmt = sniff_csv_format(FR_FOLLOW_UP.encode("latin-1"))
    assert fmt == CsvFormat(delimiter=";", decimal=",", encoding="latin-1")


def test_sniff_csv_format_bom_tab_and_utf8():
    """It reports utf-8-sig for a BOM, a tab delimiter, and a decimal point."""
    text = "id\tpoids\tsexe\nA1\t70.5\tF\nA2\t81.25\tM\n"
    fmt = sniff_csv_format(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert (fmt.encoding, fmt.delimiter, fmt.decimal) == ("utf-8-sig", "\t", ".")
    assert sniff_csv_format(text.encode("utf-8")).encoding == "utf-8"


def test_sniff_csv_format_cp1252_when_its_own_characters_appear():
    """It tells cp1252 (curly apostrophe, oe ligature) from latin-1."""
    text = "id|commentaire\n1|l’œdème\n2|rien\n"
    fmt = sniff_csv_format(text.encode("cp1252"))
    assert (fmt.encoding, fmt.delimiter) == ("cp1252", "|")


def test_sniff_csv_format_quoted_delimiters_do_not_confuse_it():
    """It keeps ',' when quoted cells hold semicolons and commas."""
    text = 'id,note,dose\n1,"a; b; c",2.5\n2,"d, e",3.5\n3,f,1.0\n'
    assert sniff_csv_format(text.encode()).delimiter == ","


@settings(max_examples=30, deadline=None)
@given(
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    decimal_comma=st.booleans(),
    values=st.lists(
        st.floats(min_value=-1e4, max_value=1e4, allow_nan=False).map(lambda x: round(x, 2)),
        min_size=3,
        max_size=30,
    ),
)
def test_sniff_csv_format_recovers_how_polars_wrote_it(delimiter, decimal_comma, values):
    """It recovers the delimiter and decimal mark of any numeric table polars writes."""
    if decimal_comma and delimiter == ",":
        decimal_comma = False  # a decimal comma in a comma CSV needs quoting: not sniffed
    frame = pl.DataFrame(
        {
            "id": [f"P{i}" for i in range(len(values))],
            "x": [v + 0.25 for v in values],  # never a whole number: the mark shows
            "n": list(range(len(values))),
        }
    )
    text = frame.write_csv(separator=delimiter, decimal_comma=decimal_comma, float_precision=2)
    fmt = sniff_csv_format(text.encode())
    assert fmt.delimiter == delimiter
    assert fmt.decimal == ("," if decimal_comma else ".")
