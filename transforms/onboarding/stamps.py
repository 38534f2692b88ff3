"""A date stamp in a file name, drafted as the form's ``export_date`` option.

Centres often stamp each export's name with the day it was made
(``suivi_C02_15102017.csv``); declared in the mapping, that date orders the centre's
exports (``transforms.staging.order``). The draft says which reading it chose and when
another reads as well (01112017: 1 November or 11 January), for a person to confirm.
"""

from __future__ import annotations

import datetime as dt
import re

from transforms.onboarding.shapes import PLAUSIBLE_YEARS

# A stamp's shape, its regex group as drafted, and the formats it may be, preferred first.
_STAMPS = (
    (r"(?<!\d)(\d{8})(?!\d)", r"(\d{8})", ("%Y%m%d", "%d%m%Y", "%m%d%Y")),
    (r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)", r"(\d{4}-\d{2}-\d{2})", ("%Y-%m-%d",)),
    (r"(?<!\d)(\d{2}-\d{2}-\d{4})(?!\d)", r"(\d{2}-\d{2}-\d{4})", ("%d-%m-%Y", "%m-%d-%Y")),
)


def export_date_draft(name: str) -> tuple[dict[str, str], str] | None:
    """The ``export_date`` option for files named like ``name`` and a comment for a person,
    or None when the name holds no date stamp (the last stamp counts: it is usually the
    export's, after a study or form name)."""
    for shape, group, formats in _STAMPS:
        found = list(re.finditer(shape, name))
        readings = [f for f in formats if found and _reads(found[-1].group(1), f)]
        if readings:
            stamp = found[-1]
            before = _escaped(name[stamp.start() - 1]) if stamp.start() else "^"
            pattern = f"{before}{group}{_escaped(name[stamp.end() :])}$"
            option = {"from": "file_name", "pattern": pattern, "format": readings[0]}
            return option, _comment(stamp.group(1), readings)
    return None


def _escaped(text: str) -> str:
    """Literal text in a regex, escaping only what must be: ``re.escape`` also escapes '-',
    and a person reading the drafted pattern sees noise."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _reads(text: str, fmt: str) -> bool:
    try:
        day = dt.datetime.strptime(text, fmt).date()
    except ValueError:
        return False
    return PLAUSIBLE_YEARS[0] <= day.year <= PLAUSIBLE_YEARS[1]


def _comment(stamp: str, readings: list[str]) -> str:
    """What a person must confirm: that the stamp is the export date, and its reading."""
    comment = f"TODO-check: is {stamp} the day the file was exported? (it orders the files)"
    if len(readings) > 1:
        others = " or ".join(readings[1:])
        comment += f"; ambiguous, it also reads as {others}"
    return comment
