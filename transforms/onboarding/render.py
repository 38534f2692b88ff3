"""The sections of a drafted form mapping written as YAML by hand, for their comments.

Used by ``transforms.onboarding.draft`` for what goes beyond a name per column: units (a
fixed unit, or a unit per row with the centre's own spellings), constants, derived columns,
value maps and codes. A value a person must decide before the mapping can load is written
``null`` beside its TODO. Every text is quoted so that YAML reads it back as written.
"""

from __future__ import annotations

import json
import re
from typing import Any

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def scalar(value: str) -> str:
    """A YAML scalar that stays a string: single quotes, or JSON's double quotes."""
    if _UNPRINTABLE.search(value):  # YAML wants them escaped: JSON escapes are YAML's too
        return json.dumps(value)
    if "'" in value and "\\" not in value:
        return json.dumps(value, ensure_ascii=False)
    return "'" + value.replace("'", "''") + "'"


def _value(value: object) -> str:
    """A drafted value: null (to decide), a number, a list, or quoted text."""
    if value is None:
        return "null"
    if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"\d{1,3}", value)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return scalar(str(value))


def _comment(text: str) -> str:
    return f"  # {text}" if text else ""


def render_units(units: dict[str, Any], notes: dict[str, str]) -> list[str]:
    """A unit read from the header, or ``{column, codes}`` when each row gives its unit."""
    if not units:
        return []
    lines = ["    units:"]
    for canonical, unit in units.items():
        note = _comment(notes.get(f"units.{canonical}", ""))
        if isinstance(unit, str):
            lines.append(f"      {canonical}: {scalar(unit)}{note}")
            continue
        lines += [f"      {canonical}:{note}", f"        column: {scalar(unit['column'])}"]
        if unit["codes"]:
            lines.append("        codes:")
        for text, known in unit["codes"].items():
            todo = _comment(notes.get(f"units.{canonical}.codes.{text}", ""))
            lines.append(f"          {scalar(text)}: {_value(known)}{todo}")
    return lines


def render_rules(mapping: dict[str, Any], notes: dict[str, str]) -> list[str]:
    """Constants, derived columns, values taken by a pattern and value maps."""
    lines = []
    for name, pattern in mapping.get("extract", {}).items():  # the number before its unit
        lines.append(f"    extract: {{{name}: {scalar(pattern)}}}")
    if mapping["constants"]:
        lines.append("    constants:")
        for name, value in mapping["constants"].items():
            note = _comment(notes.get(f"constants.{name}", ""))
            lines.append(f"      {name}: {_value(value)}{note}")
    if mapping["derived"]:
        lines.append("    derived:")
        for name, rule in mapping["derived"].items():
            fields = [f"from: {rule['from']}"]
            fields += [f"{key}: {_value(v)}" for key, v in rule.items() if key != "from"]
            note = _comment(notes.get(f"derived.{name}", ""))
            lines.append(f"      {name}: {{{', '.join(fields)}}}{note}")
    if mapping["value_maps"]:
        lines.append("    value_maps:")
    for name, words in mapping["value_maps"].items():
        lines.append(f"      {name}:{_comment(notes.get(f'value_maps.{name}', ''))}")
        for word, score in words.items():
            todo = _comment(notes.get(f"value_maps.{name}.{word}", ""))
            lines.append(f"        {scalar(word)}: {_value(score)}{todo}")
    return lines


def render_codes(
    mapping: dict[str, Any], notes: dict[str, str], unresolved: dict[str, list[str]]
) -> list[str]:
    """Codes as block mappings, or the name of a value map; a column with no code
    recognised stays commented out, listing its values."""
    codes = mapping["codes"]
    names = list(dict.fromkeys([*codes, *unresolved]))
    if not names:
        return []
    lines = ["    codes:" if codes else "    # codes:"]
    for canonical in names:
        entries = codes.get(canonical, {})
        note = _comment(notes.get(f"codes.{canonical}", ""))
        if isinstance(entries, str):  # a value map's name
            lines.append(f"      {canonical}: {scalar(entries)}{note}")
            continue
        lead = "      " if entries else "      # "
        lines.append(f"{lead}{canonical}:{note}")
        lines += [f"{lead}  {scalar(src)}: {scalar(dst)}" for src, dst in entries.items()]
        lines += [
            f"        # {scalar(v)}: TODO, not recognised" for v in unresolved.get(canonical, [])
        ]
    return lines
