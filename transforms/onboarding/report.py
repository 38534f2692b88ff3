"""The plain-text profile a data manager reads before writing a new centre's mapping.

The first output of ``cohortflow profile FILE...``: per file, its guessed format and form,
then one line per column (type, date format, missing markers, range, frequent values).
A direct identifier gets a loud line and none of its values. Usage::

    print(profile_report(sorted(Path("inbox/C31").glob("*.csv"))))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from transforms.onboarding.columns import ColumnProfile
from transforms.onboarding.files import FileProfile, harmonise_formats, profile_file
from transforms.onboarding.matching import guess_form
from transforms.staging.headers import cell_shape


def profile_report(files: Iterable[Path]) -> str:
    """A plain-text summary: per file, its format and a one-line profile per column."""
    blocks = []
    for profile in harmonise_formats([profile_file(Path(p)) for p in files]):
        blocks.append("\n".join(_report_file(profile)))
    return "\n\n".join(blocks) + "\n"


def _report_file(profile: FileProfile) -> list[str]:
    if profile.skipped:
        return [f"{profile.path.name}: not profiled: {profile.skipped}"]
    fmt = profile.format
    assert fmt is not None, "a file profiled has a format"
    form = guess_form(profile)
    lines = [
        f"{profile.path.name}: CSV, delimiter {fmt.delimiter!r}, decimal {fmt.decimal!r}, "
        f"encoding {fmt.encoding}; {profile.n_rows} rows x {len(profile.columns)} columns; "
        f"looks like: {form or 'no known form'}"
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
        return f"!! {p.name:<{width}}  DIRECT IDENTIFIER: looks like {p.identifier}: DO NOT MAP"
    kind = p.kind
    if p.date_format:
        kind += f" {p.date_format}" + (f" (or {p.ambiguous_with}?)" if p.ambiguous_with else "")
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
