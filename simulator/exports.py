"""Render a simulated cohort as each centre's own export files, with their mapping files.

Each centre uses one style of ``simulator/styles.py``. Rendering goes canonical frame ->
text table in the style's columns and codes -> faults injected into the text -> file
(CSV text; XLSX and parquet typed where a column's text allows it, as a centre's tool
would). Every injected fault is recorded with the rule that must catch it, and so are the
rows it takes down with it (a patient whose inclusion is rejected has no valid patient
for its other forms), so that tests can check that exactly those rows are quarantined.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import polars as pl

from cohortflow import progress
from cohortflow.errors import ConfigError
from schemas.forms import FORMS
from simulator.cohort import SimulatedCohort
from simulator.styles import STYLES, Style, StyleForm
from transforms.staging.mapping import (
    UNIT_FACTORS,
    CentreMapping,
    CsvFormat,
    FormMapping,
    ParquetFormat,
    XlsxFormat,
    dump_centre_mapping,
)

STYLE_ORDER = ("redcap", "fr_wide", "xlsx", "parquet")
FAULT_COLUMNS = ["centre_id", "file", "form", "source_row", "source_column", "kind", "rule"]
UNKNOWN_PATIENT = "unknown patient"


def centre_styles(cohort: SimulatedCohort, styles: Sequence[str] = STYLE_ORDER) -> dict[str, str]:
    """Each centre's export style, in turn, so that every style covers several centres."""
    unknown = sorted(set(styles) - set(STYLE_ORDER))
    if unknown or not styles:
        raise ConfigError(f"unknown export styles {unknown}: choose among {', '.join(STYLE_ORDER)}")
    ids = cohort.centres["centre_id"].to_list()
    return {c: styles[i % len(styles)] for i, c in enumerate(ids)}


def write_centre_exports(
    cohort: SimulatedCohort,
    workspace: Path,
    *,
    fault_rate: float = 0.0,
    export_date: dt.date = dt.date(2017, 9, 22),
    styles: Sequence[str] = STYLE_ORDER,
) -> pl.DataFrame:
    """Write every centre's exports into the inbox and its mapping file into centres/.

    Returns the faults (FAULT_COLUMNS): each damaged row, each exact duplicate, and each
    row that loses its patient because the patient's inclusion row was damaged.
    """
    rng = np.random.default_rng(cohort.parameters.seed + 1)
    (workspace / "centres").mkdir(parents=True, exist_ok=True)
    faults = []
    centres = centre_styles(cohort, styles)
    with progress.step("Writing centre exports", total=len(centres)) as step:
        for centre, style_name in centres.items():
            style = STYLES[style_name]
            tables = {f: render_form(cohort, centre, style, f) for f in style.forms}
            injector = _FaultInjector(rng, style, centre, fault_rate)
            tables = {f: injector.inject(f, table) for f, table in tables.items()}
            names = _write(workspace / "inbox" / centre, style, centre, export_date, tables)
            faults += injector.records(names, tables)
            mapping = style_mapping(style, centre)
            dump_centre_mapping(mapping, workspace / "centres" / f"{centre}.yaml")
            step.advance()
    return pl.DataFrame(faults, schema=FAULT_COLUMNS, orient="row")


# --- canonical -> text -----------------------------------------------------------------

_COHORT_FRAMES = {
    "inclusion": "patients",
    "follow_up": "follow_ups",
    "ketamine": "ketamine",
    "hads": "hads",
    "sf12": "sf12",
    "adverse_events": "adverse_events",
    "treatments": "treatments",
}


def render_form(cohort: SimulatedCohort, centre: str, style: Style, form: str) -> pl.DataFrame:
    """One form of one centre as the style's text table (all String columns)."""
    spec = style.forms[form]
    frame = getattr(cohort, _COHORT_FRAMES[form]).filter(pl.col("centre_id") == centre)
    if "dose_mg_per_kg" in spec.columns:
        weights = cohort.patients.select("patient_id", "weight_kg")
        frame = frame.join(weights, on="patient_id").with_columns(
            dose_mg_per_kg=(pl.col("dose_mg") / pl.col("weight_kg")).round(4)
        )
    if spec.wide:
        return _render_wide(frame, cohort, centre, style, spec)
    dtypes = FORMS[form].columns()
    return frame.select(
        _to_text(canonical, dtypes[canonical], style, spec).alias(source)
        for canonical, source in spec.columns.items()
    )


def _to_text(canonical: str, dtype, style: Style, spec: StyleForm) -> pl.Expr:
    v = pl.col(canonical)
    if canonical in spec.units:
        v = v / UNIT_FACTORS[canonical][spec.units[canonical]]
    if canonical in spec.codes:
        inverse: dict[str, str] = {}
        for source_code, value in spec.codes[canonical].items():
            inverse.setdefault(value, source_code)
        return v.cast(pl.String).replace_strict(inverse, default=None)
    if dtype == pl.Date:
        return v.dt.strftime(style.date_format)
    text = v.cast(pl.String)
    if dtype.is_float() and style.decimal == ",":
        text = text.str.replace(".", ",", literal=True)
    return text


def _render_wide(frame, cohort, centre, style: Style, spec: StyleForm) -> pl.DataFrame:
    """Follow-ups one row per patient: a cell per month; ND for a missed call."""
    patients = cohort.patients.filter(pl.col("centre_id") == centre).select("patient_id")
    latent = cohort.latent.select("patient_id", "last_month")
    wide = patients.join(latent, on="patient_id", how="left")
    text = frame.select(
        "patient_id",
        "month",
        _to_text("nprs", pl.Int64, style, spec).alias("nprs"),
        _to_text("call_date", pl.Date, style, spec).alias("call_date"),
    )
    for m in range(13):
        month = text.filter(pl.col("month") == m).select(
            "patient_id",
            *[pl.col(c).alias(t.format(m=m)) for c, t in spec.wide.items()],
        )
        score = spec.wide["nprs"].format(m=m)
        wide = wide.join(month, on="patient_id", how="left").with_columns(
            pl.when(pl.col(score).is_null() & (pl.col("last_month") >= m))
            .then(pl.lit("ND"))
            .otherwise(pl.col(score))
            .alias(score)
        )
    order = [t.format(m=m) for t in spec.wide.values() for m in range(13)]
    return wide.select(pl.col("patient_id").alias(spec.columns["patient_id"]), *order)


# --- the mapping a data manager would write for the style ------------------------------


def style_mapping(style: Style, centre: str) -> CentreMapping:
    """The centre's mapping file, derived from the same declaration as the rendering."""
    forms = {}
    for form, spec in style.forms.items():
        dtypes = FORMS[form].columns()
        dates = [c for c in spec.columns if dtypes[c] == pl.Date] + [
            c for c in spec.wide if dtypes[c] == pl.Date
        ]
        common = {
            "file_pattern": _pattern(style, spec, centre),
            "format": _format(style, spec),
            "codes": spec.codes,
            "units": spec.units,
            "missing_values": list(style.missing_values),
            "date_formats": {c: style.date_format for c in dates}
            if style.date_format != "%Y-%m-%d"
            else {},
        }
        if spec.wide:
            forms[form] = FormMapping(
                layout="wide",
                id_columns=spec.columns,
                wide_columns={
                    c: re.escape(t).replace(r"\{m\}", "{m}").format(m=r"(\d+)")
                    for c, t in spec.wide.items()
                },
                **common,
            )
        else:
            forms[form] = FormMapping(columns=spec.columns, **common)
    return CentreMapping(centre_id=centre, description=style.description, forms=forms)


def _pattern(style: Style, spec: StyleForm, centre: str) -> str:
    template = style.workbook if style.kind == "xlsx" else spec.file
    return template.format(centre=centre, stamp="*")


def _format(style: Style, spec: StyleForm):
    if style.kind == "xlsx":
        return XlsxFormat(sheet=spec.file)
    if style.kind == "parquet":
        return ParquetFormat()
    return CsvFormat.model_validate(
        {"delimiter": style.delimiter, "decimal": style.decimal, "encoding": style.encoding}
    )


# --- faults ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    kind: str
    column: str  # canonical column damaged


# Per form, the faults a centre's export realistically carries.
FORM_FAULTS = {
    "inclusion": [
        Fault("out_of_range", "age"),
        Fault("unknown_code", "sex"),
        Fault("impossible_date", "inclusion_date"),
        Fault("future_date", "inclusion_date"),
        Fault("missing_id", "patient_id"),
    ],
    "follow_up": [
        Fault("out_of_range", "nprs"),
        Fault("not_integer", "nprs"),
        Fault("impossible_date", "call_date"),
        Fault("future_date", "call_date"),
        Fault("unknown_patient", "patient_id"),
        Fault("missing_id", "patient_id"),
    ],
    "ketamine": [
        Fault("future_date", "administration_date"),
        Fault("unknown_code", "route"),
        Fault("unknown_patient", "patient_id"),
    ],
    "hads": [Fault("out_of_range", "hads_a3"), Fault("not_integer", "hads_d2")],
    "sf12": [Fault("out_of_range", "mh3")],
    "adverse_events": [Fault("unknown_code", "ae_type"), Fault("future_date", "onset_date")],
    "treatments": [Fault("unknown_code", "drug_class")],
}
# Forms whose natural key leaves a value column to disagree on, and that column.
CONFLICT_COLUMNS = {"inclusion": "age", "follow_up": "nprs", "hads": "hads_a1", "sf12": "gh1"}


class _FaultInjector:
    """Damages text tables at a known rate and remembers where and how."""

    def __init__(self, rng, style: Style, centre: str, rate: float) -> None:
        self.rng, self.style, self.centre, self.rate = rng, style, centre, rate
        # form -> (row, column, kind, rule)
        self.hits: dict[str, list[tuple[int, str | None, str, str]]] = {}
        self.lost_patients: set[str] = set()  # ids whose inclusion row will be quarantined
        self.appended: dict[str, int] = {}  # form -> number of original rows (before copies)

    def inject(self, form: str, table: pl.DataFrame) -> pl.DataFrame:
        """Damage about ``rate`` of the rows, then append duplicates.

        Only the rows it touches become Python lists: a centre of any size stays cheap.
        """
        hits = self.hits.setdefault(form, [])
        self.appended[form] = table.height
        if self.rate <= 0 or table.height == 0:
            return table
        spec = self.style.forms[form]
        columns = table.columns
        id_col = columns.index(spec.columns["patient_id"])
        touched: dict[int, list] = {}
        for i in np.nonzero(self.rng.random(table.height) < self.rate)[0].tolist():
            row = list(table.row(i))
            fault = FORM_FAULTS[form][self.rng.integers(len(FORM_FAULTS[form]))]
            hit = self._damage(form, spec, columns, row, fault)
            if hit:
                touched[i] = row
                hits.append((i + 1, *hit))
                if form == "inclusion":
                    self.lost_patients.add(table.row(i)[id_col])
        damaged = _replace_rows(table, touched)
        extra = self._duplicates(form, spec, damaged, hits, id_col)
        return pl.concat([damaged, pl.DataFrame(extra, schema=table.schema, orient="row")])

    def _damage(self, form, spec: StyleForm, columns, row, fault: Fault):
        source = self._source_column(spec, columns, row, fault.column)
        if source is None:
            return None
        j = columns.index(source)
        value, rule = self._bad_value(form, spec, fault)
        row[j] = value
        return source, fault.kind, rule

    def _source_column(self, spec: StyleForm, columns, row, canonical: str) -> str | None:
        """The cell to damage: the mapped column, or a non-empty month cell of a wide row."""
        if canonical in spec.columns:
            source = spec.columns[canonical]
            return source if row[columns.index(source)] not in (None, "") else None
        if canonical in spec.wide:
            cells = [spec.wide[canonical].format(m=m) for m in range(13)]
            filled = [c for c in cells if row[columns.index(c)] not in (None, "", "ND")]
            return filled[self.rng.integers(len(filled))] if filled else None
        return None

    def _bad_value(self, form: str, spec: StyleForm, fault: Fault) -> tuple[str, str]:
        style, column = self.style, fault.column
        dtype = FORMS[form].columns().get(column)
        date_rule_format = style.date_format
        if fault.kind == "out_of_range":
            high = _bounds(form, column)[1]
            return str(int(high) + 1), f"less_than_or_equal_to({int(high)})"
        if fault.kind == "not_integer":
            return ("5,5" if style.decimal == "," else "5.5"), "type: an integer"
        if fault.kind == "impossible_date":  # 31 February, in the style's date format
            text = dt.date(2016, 2, 28).strftime(style.date_format).replace("28", "31")
            return text, f"type: a date ({date_rule_format})"
        if fault.kind == "future_date":
            future = dt.date(dt.date.today().year + 5, 1, 15)
            return future.strftime(style.date_format), "not_in_future"
        if fault.kind == "unknown_code":  # distinct per fault: two alike would be duplicates
            code = f"9{self.rng.integers(100, 999)}"
            if column in spec.codes:
                return code, "unknown code"
            allowed = FORMS[form].schema.to_schema().columns[column].checks[0]
            return f"unknown{code}", str(allowed.error)
        if fault.kind == "missing_id":
            return "", "not_nullable"
        if fault.kind == "unknown_patient":
            return f"{self.centre}-X{self.rng.integers(1000, 9999)}", UNKNOWN_PATIENT
        raise ValueError(f"no such fault {fault.kind} ({dtype})")

    def _duplicates(self, form, spec, table: pl.DataFrame, hits, id_col) -> list[list]:
        """Exact copies of intact rows, and (long forms) copies with one value changed."""
        n_rows = table.height
        damaged = {h[0] - 1 for h in hits}
        intact = [i for i in range(n_rows) if i not in damaged]
        extra = []
        for i in self.rng.permutation(intact)[: int(self.rng.binomial(n_rows, self.rate / 3))]:
            extra.append(list(table.row(int(i))))
            for column in self._records_of(spec, table.columns, extra[-1]):
                hits.append((n_rows + len(extra), column, "exact_duplicate", "exact duplicate"))
            damaged.add(int(i))
        conflict = CONFLICT_COLUMNS.get(form)
        if conflict and not spec.wide:
            key = ", ".join(cast(list[str], FORMS[form].schema.Config.unique))
            rule = f"conflicting duplicate of natural key ({key})"
            j = table.columns.index(spec.columns[conflict])
            filled = table[spec.columns[conflict]].fill_null("").ne("").to_list()
            candidates = [i for i in intact if i not in damaged and filled[i]]
            n = min(int(self.rng.binomial(n_rows, self.rate / 3)), len(candidates))
            for i in self.rng.permutation(candidates)[:n]:
                copy = list(table.row(int(i)))
                low, high = _bounds(form, conflict)
                copy[j] = str((int(copy[j]) - int(low) + 1) % int(high - low + 1) + int(low))
                extra.append(copy)
                hits.append((int(i) + 1, spec.columns[conflict], "conflicting_duplicate", rule))
                hits.append(
                    (n_rows + len(extra), spec.columns[conflict], "conflicting_duplicate", rule)
                )
                if form == "inclusion":
                    self.lost_patients.add(copy[id_col])
        return extra

    @staticmethod
    def _records_of(spec: StyleForm, columns, row) -> list[str | None]:
        """The records a row becomes: itself, or (wide) one per month with a value.

        The pipeline counts records after melting, so a duplicated wide row is as many
        duplicate records as it has months; each is named by its first measure's column.
        """
        if not spec.wide:
            return [None]
        present: list[str | None] = []
        for m in range(13):
            cells = [template.format(m=m) for template in spec.wide.values()]
            if any(row[columns.index(c)] not in (None, "", "ND") for c in cells if c in columns):
                present.append(cells[0])
        return present

    def records(self, names: dict[str, str], tables: dict[str, pl.DataFrame]) -> list[tuple]:
        """Every fault, plus the rows of lost patients in the other forms."""
        out = []
        for form, hits in self.hits.items():
            file = names[form]
            for row, column, kind, rule in hits:
                out.append((self.centre, file, form, row, column, kind, rule))
            if form == "inclusion" or not self.lost_patients:
                continue
            own = {h[0] for h in hits}
            ids = tables[form][self.style.forms[form].columns["patient_id"]]
            originals = self.appended[form]
            for i, pid in enumerate(ids.to_list()):
                if pid in self.lost_patients and i + 1 not in own and i < originals:
                    out.append(
                        (self.centre, file, form, i + 1, None, "patient_lost", UNKNOWN_PATIENT)
                    )
        return out


def _replace_rows(table: pl.DataFrame, rows: dict[int, list]) -> pl.DataFrame:
    """``table`` with the rows at these positions replaced (order kept)."""
    if not rows:
        return table
    index = sorted(rows)
    replaced = pl.DataFrame([rows[i] for i in index], schema=table.schema, orient="row")
    return (
        table.with_row_index("_at")
        .filter(~pl.col("_at").is_in(index))
        .vstack(
            replaced.with_columns(_at=pl.Series(index, dtype=pl.UInt32)).select(
                "_at", *table.columns
            )
        )
        .sort("_at")
        .drop("_at")
    )


def _bounds(form: str, column: str) -> tuple[float, float]:
    """(min, max) of a numeric canonical column from its Pandera checks."""
    checks = FORMS[form].schema.to_schema().columns[column].checks
    stats = {c.name: next(iter(c.statistics.values())) for c in checks}
    return stats["greater_than_or_equal_to"], stats["less_than_or_equal_to"]


# --- writing files --------------------------------------------------------------------


def _write(folder: Path, style: Style, centre: str, day: dt.date, tables) -> dict[str, str]:
    """Write the tables; returns each form's file name."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = day.strftime("%d%m%Y" if style.decimal == "," else "%Y%m%d")
    names = {}
    if style.kind == "xlsx":
        import xlsxwriter  # only the simulator writes Excel

        name = style.workbook.format(centre=centre, stamp=stamp)
        buffer = io.BytesIO()
        with xlsxwriter.Workbook(buffer) as book:
            for form, table in tables.items():
                _typed(table, style, form).write_excel(book, worksheet=style.forms[form].file)
                names[form] = name
        (folder / name).write_bytes(buffer.getvalue())
        return names
    for form, table in tables.items():
        name = style.forms[form].file.format(centre=centre, stamp=stamp)
        if style.kind == "parquet":
            _typed(table, style, form).write_parquet(folder / name)
        else:
            text = table.write_csv(separator=style.delimiter, null_value="")
            (folder / name).write_bytes(text.encode(style.encoding))
        names[form] = name
    return names


def _typed(table: pl.DataFrame, style: Style, form: str) -> pl.DataFrame:
    """Give each column the type a centre's tool would, when all its text allows it."""
    spec = style.forms[form]
    dtypes = FORMS[form].columns()
    source_dtype = {s: dtypes[c] for c, s in spec.columns.items()}
    out = []
    for name in table.columns:
        col = table[name].replace("", None)
        values = col.drop_nulls()
        target = source_dtype.get(name)
        if (
            target == pl.Date
            and values.str.strptime(pl.Date, "%Y-%m-%d", strict=False).is_not_null().all()
        ):
            out.append(col.str.strptime(pl.Date, "%Y-%m-%d"))
        elif target != pl.String and values.str.contains(r"^-?\d+$").all() and values.len():
            out.append(col.cast(pl.Int64))
        elif target != pl.String and values.str.contains(r"^-?\d+(\.\d+)?$").all() and values.len():
            out.append(col.cast(pl.Float64))
        else:
            out.append(col)
    return pl.DataFrame(out)
