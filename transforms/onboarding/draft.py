"""A new centre's mapping file drafted from its exports, as YAML with TODO comments.

The output of ``cohortflow profile FILE... --centre ID``: each file (each sheet of a
workbook) is profiled and matched to every form it holds (``transforms.onboarding.forms``),
and the suggestions are rendered in the shape ``transforms.staging.mapping.CentreMapping``
accepts, with a comment wherever a person must check or decide (ambiguous dates, guessed
codes and scores, derived columns, columns not found) and a loud warning for direct
identifiers, whose values never appear. Where a person must decide before the mapping can
be read (a unit or a score nobody knows), the draft writes ``null`` beside a TODO: the
mapping does not load until it is decided. The YAML is written by hand, not dumped, for the
comments. Usage::

    text = draft_mapping_yaml("C31", sorted(Path("inbox/C31").glob("*.csv")))
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from cohortflow.errors import ConfigError
from schemas.forms import FORMS
from transforms.onboarding.derived import share_joined_ids
from transforms.onboarding.files import (
    FileProfile,
    harmonise_dates,
    harmonise_formats,
    profile_export,
)
from transforms.onboarding.forms import evidence, forms_of_file
from transforms.onboarding.render import render_codes, render_rules, render_units, scalar
from transforms.onboarding.stamps import export_date_draft
from transforms.onboarding.vocabulary import MISSING_MARKERS
from transforms.staging.mapping import CsvFormat, XlsxFormat

# A form's suggestion (transforms.onboarding.matching.suggest_mapping) and the file it is from.
Drafted = tuple[FileProfile, dict[str, Any]]

_LINE_BREAKS = re.compile(r"[\r\n\x85\u2028\u2029]")  # a comment must stay on its line


def draft_mapping_yaml(centre_id: str, files: list[Path]) -> str:
    """A YAML draft of a new centre's mapping file, with TODO comments for a person."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", centre_id):
        raise ConfigError(f"centre id {centre_id!r}: use 1-32 letters, digits, '-' or '_'")
    profiles = profile_centre(files)
    drafts, loose = _draft_forms(profiles)
    _share_missing_markers([s for _, s in drafts.values()])
    share_joined_ids([([c.name for c in p.columns], s) for p, s in drafts.values()])
    return _render(centre_id, drafts, loose, _flagged(profiles, drafts))


def profile_centre(files: list[Path]) -> list[FileProfile]:
    """Every file (every sheet) profiled, locale and date readings shared across them."""
    profiles = [p for path in files for p in profile_export(Path(path))]
    return harmonise_dates(harmonise_formats(profiles))


def _draft_forms(profiles: list[FileProfile]) -> tuple[dict[str, Drafted], list[str]]:
    """Per form, the file that shows it most (a file's main form before the forms found
    beside another's, then the most columns read); a TODO for every other file."""
    drafts: dict[str, Drafted] = {}
    loose: list[str] = []
    found = []
    for profile in profiles:
        if profile.skipped:
            loose.append(
                f"TODO: {profile.label} was not profiled ({profile.skipped}): "
                "write its form(s) by hand"
            )
            continue
        forms = forms_of_file(profile)
        if not forms:
            loose.append(f"TODO: {profile.label}: no canonical form recognised in its columns")
        found.append((profile, list(forms.items())))
    for main in (True, False):
        held = [(p, f, s) for p, forms in found for f, s in (forms[:1] if main else forms[1:])]
        for profile, form, suggestion in sorted(held, key=lambda h: -evidence(h[2])[0]):
            if form in drafts:
                loose.append(
                    f"TODO: {profile.label} also looks like {form} (drafted from "
                    f"{drafts[form][0].label}): one file pattern per form"
                )
            else:
                drafts[form] = (profile, suggestion)
    return drafts, loose


def _flagged(profiles: list[FileProfile], drafts: dict[str, Drafted]) -> dict[str, list[str]]:
    """Per file, the identifier columns that make the reader reject it: all of them but a
    birth date a form drafted from the file reads to compute an age (the reader exempts it
    for every form of the file, and none keeps it)."""
    flagged = {}
    for profile in profiles:
        exempt = {c for p, s in drafts.values() if p is profile for c in s["sources"]}
        columns = [c.name for c in profile.columns if c.identifier and c.name not in exempt]
        if columns:
            flagged[profile.label] = columns
    return flagged


def _share_missing_markers(suggestions: list[dict[str, Any]]) -> None:
    """A centre marks missing values the same way in all its files: use every marker seen
    (but a letter read as a special missing value only where it was seen)."""
    seen = {m for s in suggestions for m in s["mapping"]["missing_values"]}
    for suggestion in suggestions:  # special missing letters stay with their form's columns
        own = [m for m in suggestion["mapping"]["missing_values"] if m not in MISSING_MARKERS]
        suggestion["mapping"]["missing_values"] = [m for m in MISSING_MARKERS if m in seen] + own


def file_pattern(name: str, *, centre_id: str = "") -> str:
    """A glob for the centre's next exports: date stamps and numbers standing alone -> '*'."""
    stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
    protected = stem.replace(centre_id, "\x00") if centre_id else stem
    pattern = re.sub(r"(?<![A-Za-z0-9])\d(?:[\d._-]*\d)?(?![A-Za-z0-9])", "*", protected)
    pattern = re.sub(r"\*+", "*", pattern).replace("\x00", centre_id)
    return f"{pattern}{dot}{suffix}"


# --- YAML rendering: by hand, for the comments ------------------------------------------


_q = scalar


def _comment(text: str) -> str:
    return f"  # {text}" if text else ""


def _render(
    centre_id: str,
    drafts: dict[str, Drafted],
    loose: list[str],
    flagged: dict[str, list[str]],
) -> str:
    lines = [
        f"# Draft mapping for centre {centre_id}, written by `cohortflow profile` on "
        f"{dt.date.today().isoformat()}.",
        "# Check it against the files and the centre's data dictionary; resolve every TODO",
        "# (then delete its comment). Columns marked DO NOT MAP must never be mapped.",
    ]
    if flagged:
        lines.append("# WARNING: direct identifiers found; the reader rejects these files until")
        lines.append("# the centre exports them without these columns:")
        lines += [f"#   {name}: {', '.join(columns)}" for name, columns in flagged.items()]
    lines += [f"centre_id: {_q(centre_id)}", "description: ''  # TODO: the centre's export tool"]
    lines.append("forms:" if drafts else "forms: {}")
    for form in FORMS:  # load order
        if form in drafts:
            lines += _render_form(form, *drafts[form], centre_id)
    lines += [f"  # {text}" for text in loose]
    return "\n".join(_LINE_BREAKS.sub(" ", line) for line in lines) + "\n"


def _render_form(
    form: str, profile: FileProfile, suggestion: dict[str, Any], centre_id: str
) -> list[str]:
    mapping, notes = suggestion["mapping"], suggestion["notes"]
    lines = [
        f"  {form}:",
        f"    # from {profile.label}: {profile.n_rows} rows, {len(profile.columns)} columns",
        f"    file_pattern: {_q(file_pattern(profile.path.name, centre_id=centre_id))}",
        *_render_export_date(profile.path.name),
        f"    format: {_render_format(profile)}",
        f"    layout: {mapping['layout']}",
    ]
    for section in ("columns", "id_columns", "wide_columns"):
        lines += _render_section(section, mapping.get(section, {}), notes)
    lines += render_units(mapping["units"], notes)
    lines += _render_section("date_formats", mapping["date_formats"], notes)
    lines += render_rules(mapping, notes)
    lines += render_codes(mapping, notes, suggestion["unresolved_codes"])
    markers = ", ".join(_q(m) for m in mapping["missing_values"])
    lines.append(f"    missing_values: [{markers}]")
    if "empty_rows" in mapping:
        note = _comment(notes.get("empty_rows", ""))
        lines.append(f"    empty_rows: {mapping['empty_rows']}{note}")
    if "export" in mapping:
        lines.append(f"    export: {mapping['export']}{_comment(notes.get('export', ''))}")
    lines += _render_todo(form, suggestion)
    return lines


def _render_format(profile: FileProfile) -> str:
    fmt = profile.format
    if isinstance(fmt, CsvFormat):
        fields = [f"kind: csv, delimiter: {_q(fmt.delimiter)}", f"decimal: {_q(fmt.decimal)}"]
        fields.append(f"encoding: {_q(fmt.encoding)}")
    elif isinstance(fmt, XlsxFormat):
        fields = [f"kind: xlsx, sheet: {_q(fmt.sheet)}"]
        if fmt.decimal != ".":
            fields.append(f"decimal: {_q(fmt.decimal)}")
    else:
        assert fmt is not None, "only files profiled are drafted, and they have a format"
        fields = ["kind: parquet"]
    if getattr(fmt, "skip_rows", 0):  # a title above the header
        fields.append(f"skip_rows: {fmt.skip_rows}")  # type: ignore[union-attr]
    return "{" + ", ".join(fields) + "}"


def _render_export_date(name: str) -> list[str]:
    """The export date read from the file name's date stamp, when it has one."""
    drafted = export_date_draft(name)
    if drafted is None:
        return []
    option, comment = drafted
    entries = ", ".join(f"{key}: {_q(value)}" for key, value in option.items())
    return [f"    export_date: {{{entries}}}{_comment(comment)}"]


def _render_section(section: str, entries: dict[str, str], notes: dict[str, str]) -> list[str]:
    if not entries:
        return []
    lines = [f"    {section}:"]
    for canonical, value in entries.items():
        note = notes.get(f"{section}.{canonical}", "")
        lines.append(f"      {canonical}: {_q(value)}{_comment(note)}")
    return lines


def _render_todo(form: str, suggestion: dict[str, Any]) -> list[str]:
    lines = [f"    # {text}" for text in suggestion["todo"]]
    schema = FORMS[form].schema.to_schema().columns
    missing = suggestion["unmatched"]
    if missing:
        named = [f"{c} (required)" if not schema[c].nullable else c for c in missing]
        lines.append(f"    # TODO: not found in the file: {', '.join(named)}")
    for source, reason in suggestion["unmapped"].items():
        if reason.startswith("DO NOT MAP"):
            what = reason.split(": ", 1)[1]
            lines.append(f"    # DO NOT MAP: {_q(source)} {what}; the reader rejects the file")
            lines.append("    #   while it holds this column: ask the centre to export without it")
        else:
            lines.append(f"    # TODO: {_q(source)}: {reason}")
    return lines
