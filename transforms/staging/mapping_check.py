"""A centre's mapping checked against the files it is meant to read (check-mapping).

The mapping file's own rules are checked when it loads (``mapping.load_centre_mapping``).
Here each form is held against the centre's inbox: its file pattern matches a file, every
source column it names is in that file's header, every wide regex matches a column. One
line per problem, with the closest name found when a column looks mistyped. Headers are
read from the newest matching file only (by name): exports of one form share a layout.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from cohortflow.errors import FileRejected, did_you_mean
from transforms.staging.limits import DEFAULT_LIMITS, check_export, check_size
from transforms.staging.mapping import CentreMapping, CsvFormat, FormMapping
from transforms.staging.prepare import birth_dates_read
from transforms.staging.raw import read_text_table

HEADER_LINES = 50  # of a CSV, read to know its header (a whole file is not needed)
HEADER_BYTES = 1 << 20  # at most this much of it


def check_against_files(mapping: CentreMapping, inbox: Path) -> list[str]:
    """Problems of the mapping with the centre's files, one line each (none: it fits)."""
    folder = inbox / mapping.centre_id
    names = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not names:
        return [f"{folder}: no file to check the mapping against"]
    problems = []
    for form_name, form in mapping.forms.items():
        matched = fnmatch.filter(names, form.file_pattern)
        where = f"forms.{form_name}"
        if not matched:
            problems.append(
                f"{where}.file_pattern: {form.file_pattern!r} matches no file in {folder}"
                + did_you_mean(form.file_pattern, names)
            )
            continue
        problems += _check_header(where, form, folder / matched[-1], mapping)
    taken = {n for f in mapping.forms.values() for n in fnmatch.filter(names, f.file_pattern)}
    problems += [
        f"{name}: matches no form's file_pattern (never read)"
        for name in names
        if name not in taken and not name.startswith(".")
    ]
    return problems


def _check_header(where: str, form: FormMapping, path: Path, mapping: CentreMapping) -> list[str]:
    try:
        header = read_header(path, form, exempt=birth_dates_read(mapping, path.name))
    except FileRejected as exc:
        return [f"{where}: {path.name} cannot be read: {exc.rule}: {exc.detail}"]
    problems = [
        f"{where}.{used}: {column!r} is not in {path.name}'s header"
        + (did_you_mean(column, header) or f" (found: {_listed(header)})")
        for column, used in form.source_columns().items()
        if column not in header
    ]
    for name, pattern in form.wide_columns.items():
        if not any(re.fullmatch(pattern, c) for c in header):
            problems.append(
                f"{where}.wide_columns.{name}: {pattern!r} matches no column of {path.name} "
                f"(found: {_listed(header)})"
            )
    return problems


def read_header(path: Path, form: FormMapping, exempt: frozenset[str] = frozenset()) -> list[str]:
    """A file's column names as the reader sees them (its limits and identifier rules too)."""
    check_size(path.stat().st_size, path, DEFAULT_LIMITS)
    if isinstance(form.format, CsvFormat):  # its first lines only, not the whole file
        with path.open("rb") as handle:
            head = handle.read(HEADER_BYTES)
        lines = head.split(b"\n")
        content = b"\n".join(lines[: min(HEADER_LINES, max(len(lines) - 1, 1))])
    else:  # a workbook or a parquet file is read whole by its reader
        content = path.read_bytes()
    check_export(content, form.format, path, DEFAULT_LIMITS)
    return read_text_table(content, form.format, path, exempt=exempt).columns


def _listed(header: list[str]) -> str:
    return ", ".join(repr(c) for c in header[:12]) + (", ..." if len(header) > 12 else "")
