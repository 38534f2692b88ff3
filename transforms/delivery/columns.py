"""What each pullable column means: label, unit, codes, rules, and how it was derived.

One answer for the data card, the data dictionary, the Stata / SPSS / SAS variable and
value labels and the parquet schema metadata, gathered from where each fact is declared:
the forms' Pandera fields (description, rules, allowed codes) and ``schemas.forms.LABELS``
(label, unit); the analysis views' ``DERIVED_COLUMNS`` (how derived) and ``DERIVED_LABELS``;
and below, the columns every table shares (pseudonym, centre, lineage).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.forms import FORMS, LABELS, Form
from transforms.delivery.catalogue import TABLES
from transforms.derived import views

# Descriptions (and so derivations) of the columns every table shares.
COMMON = {
    "patient_key": "pseudonym of the patient: HMAC-SHA256 of centre and local id under a key "
    "held outside the warehouse (the local id is never stored)",
    "centre_id": "centre that sent the row",
    "_file_hash": "lineage: SHA-256 of the export file the row came from",
    "_source_row": "lineage: 1-based data row of that file (header not counted)",
    "_run_id": "lineage: pipeline run that loaded this version",
    "_valid_from": "history: run_seq from which this version is current",
    "_valid_to": "history: run_seq from which it is superseded (null: still current)",
}
COMMON_DERIVATIONS = {
    "patient_key": "computed at loading from centre and local id (HMAC-SHA256)",
    "centre_id": "the inbox folder the export came from",
    "_file_hash": "recorded at loading",
    "_source_row": "recorded at loading",
    "_run_id": "recorded at loading",
    "_valid_from": "kept by the warehouse's history",
    "_valid_to": "kept by the warehouse's history",
}
COMMON_LABELS = {
    "patient_key": "Patient pseudonym",
    "centre_id": "Centre",
    "_file_hash": "Lineage: export file (SHA-256)",
    "_source_row": "Lineage: data row in that file",
    "_run_id": "Lineage: run that loaded the row",
    "_valid_from": "History: valid from run_seq",
    "_valid_to": "History: superseded at run_seq",
}


DERIVED = "derived from the harmonised tables (transforms/derived/views.py), as described"


@dataclass(frozen=True)
class ColumnDoc:
    """Everything said about one column, for people and for statistics packages."""

    name: str
    label: str
    unit: str = ""
    description: str = ""
    derivation: str = ""
    rules: str = ""
    codes: tuple = field(default_factory=tuple)

    def variable_label(self, limit: int = 80) -> str:
        """``label, unit``, at most ``limit`` characters (Stata's limit is 80)."""
        text = f"{self.label}, {self.unit}" if self.unit else self.label
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def as_card(self) -> dict:
        """The card's entry (empty facts left out)."""
        entry = {
            "label": self.label,
            "unit": self.unit,
            "description": self.description,
            "derivation": self.derivation,
            "rules": self.rules,
            "codes": list(self.codes),
        }
        return {key: value for key, value in entry.items() if value or key == "description"}


def column_docs(table: str) -> dict[str, ColumnDoc]:
    """Every documented column of a table or view, by name (a view's derived columns
    override the forms' columns of the same name, as the data dictionary shows them)."""
    forms = [TABLES[table]] if table in TABLES else list(FORMS.values())
    docs: dict[str, ColumnDoc] = {}
    for form in forms:
        for name, column in form.schema.to_schema().columns.items():
            if name != "patient_id":  # replaced by patient_key, never stored
                docs[name] = _form_column(form, name, column)
    docs |= {name: _common_column(name) for name in COMMON}
    if table not in TABLES:
        docs |= {name: _derived_column(name) for name in views.DERIVED_COLUMNS}
    return docs


def column_doc(table: str, name: str) -> ColumnDoc:
    """One column's doc; a column nobody documented gets its name as label, and says so."""
    return column_docs(table).get(name) or ColumnDoc(name, name, description="not documented")


def _form_column(form: Form, name: str, column) -> ColumnDoc:
    """A column collected on a form: its schema's description, rules and codes."""
    label, unit = LABELS.get(name, (name, ""))
    rules = ", ".join(str(check.error or check.name) for check in column.checks)
    codes = [v for c in column.checks for v in c.statistics.get("allowed_values", [])]
    return ColumnDoc(
        name,
        label,
        unit,
        description=column.description or "",
        derivation=f"collected ({form.name} form; codes and units mapped from the centre's)",
        rules=rules,
        codes=tuple(codes),
    )


def _common_column(name: str) -> ColumnDoc:
    return ColumnDoc(
        name, COMMON_LABELS[name], description=COMMON[name], derivation=COMMON_DERIVATIONS[name]
    )


def _derived_column(name: str) -> ColumnDoc:
    label, unit = views.DERIVED_LABELS.get(name, (name, ""))
    text = views.DERIVED_COLUMNS[name]
    return ColumnDoc(name, label, unit, description=text, derivation=DERIVED)
