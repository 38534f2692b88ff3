"""A form's mapping while it is drafted: what each step of the matching adds to it.

``transforms.onboarding.matching`` matches columns by name and asks ``codes`` about their
values; ``units``, ``answers`` and ``derived`` add what the mapping language computes
rather than copies (a unit per row, value maps for words, constants and derived columns).
Each writes into one ``FormDraft``, with a note wherever a person must check or decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transforms.onboarding.codes import ValueAdvice
from transforms.onboarding.columns import ColumnProfile


@dataclass
class FormDraft:
    """A form mapping under construction, and what a person must check."""

    form: str
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> source
    families: dict[str, tuple[str, list[ColumnProfile]]] = field(default_factory=dict)
    codes: dict[str, dict[str, str] | str] = field(default_factory=dict)  # or a value map
    units: dict[str, str] = field(default_factory=dict)  # canonical -> unit of the header
    row_units: dict[str, dict[str, Any]] = field(default_factory=dict)  # {column, codes}
    value_maps: dict[str, dict[str, int | None]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)  # canonical -> rule
    export: str | None = None  # written only when a rule depends on it
    date_formats: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # 'codes.sex' -> comment
    todo: list[str] = field(default_factory=list)
    unmapped: dict[str, str] = field(default_factory=dict)  # source -> why not mapped
    unresolved_codes: dict[str, list[str]] = field(default_factory=dict)
    rule_sources: dict[str, str] = field(default_factory=dict)  # source -> what reads it
    weak: set[str] = field(default_factory=set)  # canonical columns matched by a word only

    def add(self, canonical: str, advice: ValueAdvice) -> None:
        """Take in what a matched column's values say."""
        if advice.date_format:
            self.date_formats[canonical] = advice.date_format
        if advice.codes:  # an empty dict would turn every value into an unknown code
            self.codes[canonical] = advice.codes
        if advice.unresolved:
            self.unresolved_codes[canonical] = advice.unresolved
        self.notes |= advice.notes
        self.todo += advice.todo

    def read_by_rule(self, source: str, what: str) -> None:
        """A source column a rule reads (a unit, a time, a birth date): not unrecognised."""
        self.rule_sources[source] = what
        self.unmapped.pop(source, None)

    def sources(self) -> dict[str, str]:
        """Every source column the draft reads -> the canonical column or rule it is for."""
        found = {source: canonical for canonical, source in self.columns.items()}
        for canonical, (_, members) in self.families.items():
            found |= {m.name: canonical for m in members}
        return found | self.rule_sources

    def produced(self) -> set[str]:
        """Canonical columns read, constant or derived (a unit per row fills its family)."""
        found = set(self.columns) | set(self.families) | set(self.constants) | set(self.derived)
        if self.families:
            found.add("month")
        if "dose_mg" in self.row_units:
            found |= {"dose_mg", "dose_mg_per_kg"}
        return found
