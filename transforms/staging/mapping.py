"""Per-centre mapping configuration: how one centre's export files map to canonical forms.

One YAML file per centre (``<workspace>/centres/<centre_id>.yaml``), validated on load.
A centre is onboarded, or a format change absorbed, by editing this file alone.
Example (a French-locale wide follow-up export)::

    centre_id: C02
    forms:
      follow_up:
        file_pattern: "suivi_*.csv"
        format: {kind: csv, delimiter: ";", decimal: ",", encoding: latin-1}
        layout: wide
        id_columns: {patient_id: "N° patient"}
        wide_columns: {nprs: 'EN_M(\\d+)', call_date: 'Date_M(\\d+)'}
        date_formats: {call_date: "%d/%m/%Y"}
        missing_values: ["", "ND"]
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from cohortflow.errors import ConfigError, did_you_mean
from schemas.forms import FORMS
from transforms.staging.checks import check_form_mapping, check_produces_required
from transforms.staging.export_dates import (
    EXCEL_DATE,
    EXPORT_DATE_SOURCES,
    ColumnDate,
    ExportDate,
    ModifiedDate,
    NameDate,
)
from transforms.staging.rules import (
    DERIVED_RULES,
    UNIT_TABLE,
    BirthDateDerived,
    DerivedColumn,
    JoinDerived,
    RankDerived,
    UnitColumn,
    as_text,
    as_text_map,
    one_group,
)
from transforms.staging.rules import Strict as _Strict

# What a CSV may be read as; utf-16 (with its byte-order mark) is Excel's "Unicode text".
Encoding = Literal["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]
DecimalMark = Literal[".", ","]


class CsvFormat(_Strict):
    kind: Literal["csv"] = "csv"
    delimiter: str = ","
    decimal: DecimalMark = "."
    encoding: Encoding = "utf-8"
    quote_char: str | None = '"'
    skip_rows: int = Field(default=0, ge=0, le=50, description="lines above the header (a title)")

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in "\r\n":
            raise ValueError("must be a single character, e.g. ',' or ';'")
        return value

    @field_validator("quote_char")
    @classmethod
    def _one_quote(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in "\r\n"):
            raise ValueError("must be a single character, e.g. '\"', or null for none")
        return value

    @model_validator(mode="after")
    def _characters_differ(self) -> CsvFormat:
        """Otherwise every file of the centre would be misread, and blamed on the file.

        (delimiter and decimal may both be ',': quoted values then carry decimal commas.)
        """
        if self.delimiter == self.quote_char:
            raise ValueError(f"delimiter and quote_char are both {self.delimiter!r}")
        return self


class XlsxFormat(_Strict):
    """One sheet of an Excel workbook (a workbook may hold several forms, one per sheet).

    Excel stores numbers as numbers; ``decimal: ','`` is for numbers typed as text cells
    ('91,5'), as French workbooks often hold them.
    """

    kind: Literal["xlsx"] = "xlsx"
    sheet: str
    decimal: DecimalMark = "."
    skip_rows: int = Field(default=0, ge=0, le=50, description="rows above the header (a title)")


class ParquetFormat(_Strict):
    kind: Literal["parquet"] = "parquet"
    decimal: Literal["."] = "."


ExportFormat = Annotated[CsvFormat | XlsxFormat | ParquetFormat, Field(discriminator="kind")]

# Source unit -> factor to the canonical unit of the column it maps to.
# (A fixed unit keeps the column: the units of its family that land in it, from the table of
# units a row may give.)
UNIT_FACTORS: dict[str, dict[str, float]] = {
    column: {unit: factor for unit, (target, factor) in units.items() if target == column}
    for column, units in UNIT_TABLE.items()
}


class FormMapping(_Strict):
    """How one form is found and read in a centre's exports."""

    file_pattern: str = Field(description="glob matched against file names in the centre inbox")
    format: ExportFormat = CsvFormat()
    layout: Literal["long", "wide"] = "long"
    columns: dict[str, str] = Field(
        default_factory=dict, description="canonical name -> source column (long layout)"
    )
    id_columns: dict[str, str] = Field(
        default_factory=dict, description="wide layout: canonical -> source columns kept per row"
    )
    wide_columns: dict[str, str] = Field(
        default_factory=dict,
        description="wide layout: canonical -> regex of source columns, group 1 is the month",
    )
    codes: dict[str, dict[str, str] | str] = Field(
        default_factory=dict,
        description="canonical column (or a glob of them, 'hads_*') -> {source code: "
        "canonical value}, or the name of a value_maps entry",
    )
    value_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="named code lists shared by several columns"
    )
    extract: dict[str, str] = Field(
        default_factory=dict,
        description="canonical column (or a glob) -> regex whose group 1 is the value, "
        "e.g. '^(\\d) - ' for answers written '3 - La plupart du temps'",
    )
    date_formats: dict[str, str] = Field(
        default_factory=dict, description="strptime format per date column, or 'excel'"
    )
    units: dict[str, str | UnitColumn] = Field(
        default_factory=dict,
        description="canonical column -> unit of the source values, converted on reading, "
        "or {column: <source column>} when each row gives its unit",
    )
    constants: dict[str, str] = Field(
        default_factory=dict, description="canonical column -> the value of every row"
    )
    derived: dict[str, DerivedColumn] = Field(
        default_factory=dict,
        description="canonical column -> rule computing it: {from: rank | birth_date | join}",
    )
    missing_values: list[str] = Field(default_factory=lambda: ["", "NA"])
    missing_codes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="canonical column -> codes that mean 'not known' in it alone "
        "(a data dictionary's '9 = Unknown')",
    )
    empty_rows: Literal["keep", "skip"] = Field(
        "keep",
        description="skip: a row with none of the form's values (only its ids, key and "
        "constants) is no record of it, e.g. a visits file holding HADS on some visits",
    )
    export: Literal["full", "incremental"] = Field(
        "full",
        description="full: each file holds all the centre's rows of the form, so a row "
        "missing from a newer file is flagged; incremental: files hold new rows only",
    )
    export_date: ExportDate | None = Field(
        None,
        description="where the date each file was exported comes from: a centre's files of "
        "the form are applied in that order (file_name, column or modification_time)",
    )

    @field_validator("file_pattern")
    @classmethod
    def _name_only(cls, value: str) -> str:
        """Patterns match names in the centre's own folder: a path could never match."""
        if "/" in value or "\\" in value or not value.strip("."):
            raise ValueError(
                f"{value!r} is not a file name pattern (no folders: files are looked for "
                "in inbox/<centre_id>/ only), e.g. 'C01_inclusion_*.csv'"
            )
        return value

    @field_validator("export_date", mode="before")
    @classmethod
    def _export_date_from(cls, value):
        """Say what 'from' may be in words (pydantic's words name its internal field)."""
        if value is None or (isinstance(value, dict) and value.get("from") in EXPORT_DATE_SOURCES):
            return value
        found = value.get("from") if isinstance(value, dict) else None
        raise ValueError(
            f"needs 'from: {' | '.join(EXPORT_DATE_SOURCES)}'"
            + (f" (found {found!r})" if found is not None else "")
            + ", e.g. {from: file_name, pattern: '_(\\d{8})', format: '%d%m%Y'}"
        )

    @field_validator("codes", "value_maps", "constants", mode="before")
    @classmethod
    def _codes_as_text(cls, value):
        return as_text_map(value)

    @field_validator("missing_codes", mode="before")
    @classmethod
    def _missing_codes_as_text(cls, value):
        if not isinstance(value, dict):
            return value
        return {k: [as_text(c) for c in v] if isinstance(v, list) else v for k, v in value.items()}

    @field_validator("derived", mode="before")
    @classmethod
    def _derived_from(cls, value):
        """Say what 'from' may be in words (pydantic's words name its internal field)."""
        for name, rule in (value or {}).items() if isinstance(value, dict) else ():
            found = rule.get("from") if isinstance(rule, dict) else None
            if found not in DERIVED_RULES:
                raise ValueError(
                    f"{name}: needs 'from: {' | '.join(DERIVED_RULES)}'"
                    + (f" (found {found!r})" if found is not None else "")
                    + ", e.g. {from: rank, date: administration_date}"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _csv_by_default(cls, data):
        fmt = data.get("format") if isinstance(data, dict) else None
        if isinstance(fmt, dict) and "kind" not in fmt:
            data = {**data, "format": {"kind": "csv", **fmt}}
        return data

    @model_validator(mode="after")
    def _layout_is_complete(self) -> FormMapping:
        if self.layout == "long" and not self.columns:
            raise ValueError("layout 'long' needs 'columns'")
        if self.layout == "wide" and not (
            (self.id_columns or "patient_id" in self.derived) and self.wide_columns
        ):
            raise ValueError("layout 'wide' needs 'id_columns' and 'wide_columns'")
        for name, pattern in self.wide_columns.items():
            try:
                one_group(pattern, "month")
            except ValueError as exc:
                raise ValueError(f"wide_columns.{name}: {exc}") from None
        source = self.export_date
        if isinstance(source, ColumnDate) and source.column in self._patient_id_columns():
            raise ValueError(
                f"export_date.column: {source.column!r} is the patient id column, not a date"
            )
        for name, unit in self.units.items():
            known = UNIT_FACTORS.get(name, {})
            if isinstance(unit, str) and unit not in known:
                raise ValueError(
                    f"units.{name}: unknown unit {unit!r}; known: {sorted(known) or 'none'}"
                )
        check_form_mapping(self)
        return self

    def content_hash(self) -> str:
        """A hash of what this mapping says (not of its file's formatting or comments):
        recorded with every file staged under it, so that a change is noticed.

        An undeclared export date is left out, so that mappings written before the option
        existed keep their hash (and their files are not re-staged for nothing).
        """
        unset = {"export_date"} if self.export_date is None else set()
        unset |= {n for n in _ADDED_IN_ISSUE_19 if getattr(self, n) in ({}, "keep")}
        exclude: dict = dict.fromkeys(unset, True)
        if not getattr(self.format, "skip_rows", 0):
            exclude["format"] = {"skip_rows": True}
        canonical = json.dumps(self.model_dump(mode="json", exclude=exclude), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def _patient_id_columns(self) -> set[str]:
        return {m["patient_id"] for m in (self.columns, self.id_columns) if "patient_id" in m}

    def canonical_columns(self) -> set[str]:
        """Canonical columns this mapping produces: read, constant or derived."""
        if self.layout == "long":
            read = set(self.columns)
        else:
            read = set(self.id_columns) | set(self.wide_columns) | {"month"}
        landing = {
            target
            for name, unit in self.row_units().items()
            for target, _ in unit.known_units(name).values()
        }
        return read | set(self.constants) | set(self.derived) | landing

    def row_units(self) -> dict[str, UnitColumn]:
        """The columns whose unit each row gives, in another source column."""
        return {name: unit for name, unit in self.units.items() if isinstance(unit, UnitColumn)}

    def fixed_units(self) -> dict[str, str]:
        return {name: unit for name, unit in self.units.items() if isinstance(unit, str)}

    def column_extracts(self) -> dict[str, str]:
        """Canonical column -> the regex its value is taken from, globs expanded."""
        produced = sorted(self.canonical_columns())
        return {
            column: pattern
            for key, pattern in self.extract.items()
            for column in (fnmatch.filter(produced, key) if _is_glob(key) else [key])
        }

    def column_codes(self) -> dict[str, dict[str, str]]:
        """Canonical column -> its codes, globs expanded and named value maps looked up."""
        produced = sorted(self.canonical_columns())
        resolved: dict[str, dict[str, str]] = {}
        for key, codes in self.codes.items():
            table = self.value_maps.get(codes, {}) if isinstance(codes, str) else codes
            for column in fnmatch.filter(produced, key) if _is_glob(key) else [key]:
                resolved[column] = table
        return resolved

    def source_columns(self) -> dict[str, str]:
        """Every source column the mapping reads, with what it is read for."""
        found = {s: f"columns.{c}" for c, s in {**self.columns, **self.id_columns}.items()}
        found |= {u.column: f"units.{name}" for name, u in self.row_units().items()}
        for name, rule in self.derived.items():
            if isinstance(rule, RankDerived) and rule.time:
                found[rule.time] = f"derived.{name}.time"
            elif isinstance(rule, BirthDateDerived):
                found[rule.column] = f"derived.{name}.column"
            elif isinstance(rule, JoinDerived):
                found |= {c: f"derived.{name}.columns" for c in rule.columns}
        if isinstance(self.export_date, ColumnDate):
            found[self.export_date.column] = "export_date.column"
        return found

    def local_id_columns(self) -> frozenset[str]:
        """Source columns the patient's local id is read (or joined) from."""
        joined = self.derived.get("patient_id")
        parts = joined.columns if isinstance(joined, JoinDerived) else []
        return frozenset(self._patient_id_columns() | set(parts))

    def birth_date_columns(self) -> set[str]:
        """Source columns read only to compute an age: exempt from the identifier rejection."""
        return {r.column for r in self.derived.values() if isinstance(r, BirthDateDerived)}


class CentreMapping(_Strict):
    """All the forms of one centre."""

    centre_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    description: str = ""
    forms: dict[str, FormMapping]

    def content_hashes(self) -> dict[tuple[str, str], str]:
        """(centre, form) -> the form mapping's content hash (what files record)."""
        return {(self.centre_id, name): form.content_hash() for name, form in self.forms.items()}

    @model_validator(mode="after")
    def _forms_are_known(self) -> CentreMapping:
        for form_name, mapping in self.forms.items():
            if form_name not in FORMS:
                raise ValueError(f"unknown form {form_name!r}; known: {', '.join(FORMS)}")
            expected = set(FORMS[form_name].columns())
            unknown = mapping.canonical_columns() - expected
            if unknown:
                raise ValueError(
                    f"forms.{form_name}: unknown canonical column(s) {sorted(unknown)}; "
                    f"the form has {sorted(expected)}" + did_you_mean(sorted(unknown)[0], expected)
                )
            check_produces_required(form_name, mapping)
        return self


__all__ = [  # the export-date models are part of a mapping: importable from here too
    "EXCEL_DATE",
    "CentreMapping",
    "ColumnDate",
    "FormMapping",
    "ModifiedDate",
    "NameDate",
    "load_centre_mapping",
]

# left out of hashes when unset, so that older mappings keep theirs
_ADDED_IN_ISSUE_19 = (
    "constants",
    "derived",
    "value_maps",
    "empty_rows",
    "missing_codes",
    "extract",
)


def _is_glob(key: str) -> bool:
    return any(c in key for c in "*?[")


# libyaml's safe loader when PyYAML was built with it: 5x faster (0.65 s -> 0.12 s for 50
# centres), which counts every night at hundreds of centres
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_centre_mapping(path: Path, centre_id: str | None = None) -> CentreMapping:
    """Read and validate one centre's mapping file; any mistake names the file and field.

    Its ``centre_id`` must be ``centre_id``, by default the file's name (centres/C02.yaml);
    a draft checked before it goes live may be called otherwise.
    """
    try:
        text = path.read_text(encoding="utf-8")
        mapping = _validated(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the mapping file: {exc}") from exc
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise ConfigError(f"{path}: invalid mapping: {'; '.join(problems)}", problems) from exc
    expected = centre_id or path.stem
    if mapping.centre_id != expected:
        named = "the centre checked" if centre_id else "the file name"
        raise ConfigError(
            f"{path}: centre_id {mapping.centre_id!r} does not match {named} {expected!r}"
        )
    return mapping


@functools.lru_cache(maxsize=4096)
def _validated(text: str) -> CentreMapping:
    """A mapping file's text parsed and validated, once per text: a run loads every
    centre's mapping three times (before Prefect starts, for the key check, in the flow),
    about 1 s at 100 centres. Keyed by the text itself, so an edited file is read anew.
    The models are frozen: sharing one is safe."""
    return CentreMapping.model_validate(yaml.load(text, Loader=_SafeLoader))


def _problem(err) -> str:
    """One validation error for people; a mistyped key is answered with the closest one."""
    message = err["msg"].removeprefix("Value error, ")
    if not err["loc"] and re.match(r"forms\.\w+", message):  # a whole-mapping rule says where
        return message
    text = f"{_location(err['loc'])}: {message}"
    if err.get("type") == "extra_forbidden" and err["loc"]:
        text += did_you_mean(str(err["loc"][-1]), _mapping_keys())
    return text


def _mapping_keys() -> set[str]:
    """Every key a mapping file may hold, at any level (the fields of its models)."""
    models = [v for v in globals().values() if isinstance(v, type) and issubclass(v, BaseModel)]
    return {name for model in models if model is not BaseModel for name in model.model_fields}


def _location(loc: tuple) -> str:
    """'forms.follow_up.format.delimiter', without pydantic's union tags (csv, xlsx...)."""
    tagged = ("format", "export_date")
    parts = [
        str(p)
        for i, p in enumerate(loc)
        if not (i and loc[i - 1] in tagged) and not (i > 1 and loc[i - 2] == "derived")
    ]
    return ".".join(parts) or "(top level)"


def load_all_mappings(folder: Path) -> dict[str, CentreMapping]:
    """Every centre's mapping, keyed by centre id."""
    return {p.stem: load_centre_mapping(p) for p in sorted(folder.glob("*.yaml"))}


def load_mappings_isolating(folder: Path) -> tuple[dict[str, CentreMapping], dict[str, str]]:
    """The valid mappings, and per broken file (keyed by its stem, the centre id) its
    one-line error naming the file, field and rule.

    One centre's typo must not stop the others' night (invariant 4): the night loads the
    valid centres and reports the broken ones, as it does a centre that failed.
    """
    valid: dict[str, CentreMapping] = {}
    broken: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            valid[path.stem] = load_centre_mapping(path)
        except ConfigError as exc:
            broken[path.stem] = " ".join(str(exc).split())  # one line, even for YAML errors
    return valid, broken


def dump_centre_mapping(mapping: CentreMapping, path: Path) -> None:
    """Write a mapping as readable YAML (used by the simulator to onboard its centres)."""
    data = mapping.model_dump(mode="json", exclude_defaults=False)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
