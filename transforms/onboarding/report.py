"""The plain-text profile a data manager reads before writing a new centre's mapping.

The first output of ``cohortflow profile FILE...``: per file (per sheet of a workbook), its
guessed format and the forms it holds, then one line per column (type, date format,
missing markers, range, frequent values).
A direct identifier gets a loud line and none of its values. Usage::

    print(profile_report(sorted(Path("inbox/C31").glob("*.csv"))))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from transforms.onboarding.codes import excel_serials
from transforms.onboarding.columns import ColumnProfile
from transforms.onboarding.files import (
    FileProfile,
    harmonise_dates,
    harmonise_formats,
    profile_export,
)
from transforms.onboarding.forms import forms_of_file
from transforms.staging.headers import cell_shape
from transforms.staging.mapping import CsvFormat


def profile_report(files: Iterable[Path]) -> str:
    """A plain-text summary: per file, its format and a one-line profile per column."""
    blocks = []
    profiles = [profile for path in files for profile in profile_export(Path(path))]
    for profile in harmonise_dates(harmonise_formats(profiles)):
        blocks.append("\n".join(_report_file(profile)))
    return "\n\n".join(blocks) + "\n"


def _report_file(profile: FileProfile) -> list[str]:
    if profile.skipped:
        return [f"{profile.label}: not profiled: {profile.skipped}"]
    fmt = profile.format
    if isinstance(fmt, CsvFormat):
        kind = f"CSV, delimiter {fmt.delimiter!r}, decimal {fmt.decimal!r}, encoding {fmt.encoding}"
    else:
        kind = "XLSX sheet" if fmt is not None and fmt.kind == "xlsx" else "parquet"
    forms = " + ".join(forms_of_file(profile)) or "no known form"
    lines = [
        f"{profile.label}: {kind}; {profile.n_rows} rows x {len(profile.columns)} columns; "
        f"looks like: {forms}"
    ]
    if profile.headerless:
        lines.append(
            "   the first row looks like data, not a header (is the header row missing?): "
            "columns are shown by position and the first row is counted as data"
        )
    width = max((len(p.name) for p in profile.columns), default=0)
    lines += [_report_column(p, width) for p in profile.columns]
    return lines


def _report_column(p: ColumnProfile, width: int) -> str:
    if p.identifier:
        line = f"!! {p.name:<{width}}  DIRECT IDENTIFIER: looks like {p.identifier}: DO NOT MAP"
        if p.date_format:  # a birth date: its format is all the profile keeps
            line += f" (an age can be derived from it: {p.date_format}; it is never kept)"
        return line
    kind = p.kind
    if p.date_format:
        kind += f" {p.date_format}" + (f" (or {p.ambiguous_with}?)" if p.ambiguous_with else "")
    elif p.kind in ("integer", "decimal") and excel_serials(p):
        kind += " (Excel dates?)"
    parts = [f"missing {p.n_missing}/{p.n_rows}"]
    if p.missing_markers:
        parts[0] += " (" + ", ".join(repr(m) for m in p.missing_markers) + ")"
    if p.n_invalid:
        parts.append(f"{p.n_invalid} not {p.kind}")
    if p.minimum is not None:
        parts.append(f"range {_show(p.minimum)} .. {_show(p.maximum)}")
    parts.append(f"{p.n_distinct} distinct")
    if _listable(p):
        parts.append("top " + ", ".join(f"{v!r} x{n}" for v, n in p.top_values))
    return f"   {p.name:<{width}}  {kind:<14}  " + "; ".join(parts)


def _listable(p: ColumnProfile) -> bool:
    """Frequent values are printed unless all unique, dates, or ids (a local patient id
    never leaves the inbox, not even to a terminal)."""
    if not p.value_counts or p.kind == "date" or p.value_counts[0][1] <= 1:
        return False
    return not any(cell_shape(v) == "id-like text" for v, _ in p.value_counts)


def _show(value: float | dt.date | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
