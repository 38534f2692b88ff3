"""Profile unknown centre exports and draft the centre's mapping file for a data manager.

The engine behind ``cohortflow profile FILE...``: each file is sniffed (encoding,
delimiter, decimal mark), read as text, and profiled column by column (missing
markers, type, date format, ranges, frequent values, direct identifiers). Its columns
are then matched to the canonical form they most look like, and the result is rendered
as a YAML draft in the shape ``transforms.mapping.CentreMapping`` accepts, with
``# TODO`` comments wherever a person must decide. Usage::

    text = draft_mapping_yaml("C31", sorted(Path("inbox/C31").glob("*.csv")))
    print(profile_report(sorted(Path("inbox/C31").glob("*.csv"))))

Direct identifiers are flagged, never mapped, and their values are never shown.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from cohortflow.errors import ConfigError
from schemas.forms import FORMS, SF12_RANGES
from transforms.staging.identifiers import direct_identifier_columns
from transforms.staging.mapping import UNIT_FACTORS, CsvFormat

# --- what the profiler looks for --------------------------------------------------------

MISSING_MARKERS = ("", "NA", "ND", ".", "-99", "N/A", "NULL", "n/a")
LOW_CARDINALITY = 20  # a column with at most this many distinct values is listed in full
TOP_VALUES = 10
TOLERATED_INVALID = 0.9  # a column is typed when this share of its values fit the type
SNIFF_LINES = 50
SNIFF_ROWS = 1000
DELIMITERS = (",", ";", "\t", "|")
PLAUSIBLE_YEARS = (1900, 2100)
CSV_SUFFIXES = {".csv", ".tsv", ".txt"}

_INTEGER = r"^[+-]?\d+$"
_DECIMAL = r"^[+-]?(\d+[.,]\d*|[.,]\d+|\d+)$"
_DECIMAL_COMMA = r"^[+-]?\d*,\d+$"
_DECIMAL_POINT = r"^[+-]?\d*\.\d+$"
# strptime format -> the shape a value must have (polars' %Y also accepts a 2-digit year).
DATE_FORMATS = {
    "%Y-%m-%d": r"^\d{4}-\d{1,2}-\d{1,2}$",
    "%d/%m/%Y": r"^\d{1,2}/\d{1,2}/\d{4}$",
    "%m/%d/%Y": r"^\d{1,2}/\d{1,2}/\d{4}$",
    "%d/%m/%y": r"^\d{1,2}/\d{1,2}/\d{2}$",
    "%m/%d/%y": r"^\d{1,2}/\d{1,2}/\d{2}$",
    "%d.%m.%Y": r"^\d{1,2}\.\d{1,2}\.\d{4}$",
    "%d-%m-%Y": r"^\d{1,2}-\d{1,2}-\d{4}$",
    "%Y%m%d": r"^\d{8}$",
}
ISO_DATE = "%Y-%m-%d"  # the reader's default: not written in date_formats
AMBIGUOUS_DATES = {"%d/%m/%Y": "%m/%d/%Y", "%d/%m/%y": "%m/%d/%y"}

# Beyond transforms.identifiers (which the reader uses to reject a file): a birth date in a
# column whose name glues the words ("DateNaissance"), a NIR of 13-15 digits (2A/2B: Corsica).
BIRTH_NAME = re.compile(r"naiss|birth|ddn|dob")
NIR_VALUE = r"^[12]\d{2}\d{2}(\d{2}|2[AB])\d{6}(\d{2})?$"
IDENTIFIER_SHARE = 0.5


# --- canonical names and codes as centres write them ------------------------------------

COLUMN_SYNONYMS: dict[str, str] = {  # canonical -> source names, ' | ' between
    "patient_id": (
        "N° patient | No patient | num_patient | numero patient | id_patient | patient | "
        "patient id | record_id | subject_id | subject | participant_id | identifiant | id | "
        "code patient | study_id | N° inclusion | numero d'inclusion"
    ),
    "sex": "sexe | sex | genre | gender",
    "age": "âge | age | age_years | années | ans | age a l'inclusion | age_inclusion",
    "pain_diagnosis": (
        "diagnostic | diagnosis | diag | pathologie | type de douleur | pain type | "
        "douleur chronique"
    ),
    "weight_kg": "poids | weight | masse | poids kg",
    "inclusion_date": (
        "date d'inclusion | date inclusion | date_incl | incl_date | inclusion date | début | "
        "date de début | enrolment date | enrollment date"
    ),
    "month": (
        "mois | month | redcap_event_name | event | evenement | visite | visit | timepoint | "
        "time point | temps"
    ),
    "call_date": (
        "date_appel | date appel | date de l'appel | appel | call date | date of call | "
        "date suivi | date de suivi | follow-up date"
    ),
    "nprs": (
        "EN | ENS | nprs | nrs | eva | douleur | douleur moyenne | intensité douleur | "
        "score douleur | pain | pain score | mean pain"
    ),
    "sequence": (
        "seq | redcap_repeat_instance | N° administration | numero administration | "
        "administration | administration number | N° injection | injection | instance | rang"
    ),
    "administration_date": (
        "date administration | date d'administration | ket_date | date injection | "
        "date perfusion | date de perfusion"
    ),
    "dose_mg": "dose | dose mg | ket_dose | ket_dose_mg | dose ketamine | dose totale",
    "dose_mg_per_kg": "dose mg/kg | dose_mgkg | ket_dose_mgkg | dose par kg | dose/kg",
    "route": "voie | voie d'administration | ket_route | route of administration",
    "setting": "cadre | ket_setting | lieu | modalité | prise en charge | care setting",
    "onset_date": (
        "onset | ae_date | date_ei | date de survenue | survenue | date debut | onset date"
    ),
    "ae_type": (
        "type | effet indésirable | évènement indésirable | événement indésirable | ei | "
        "adverse event | ae | effet"
    ),
    "severity": "ae_severity | gravité | sévérité | intensité | grade",
    "drug_class": (
        "drug class | conmed_class | classe | classe thérapeutique | traitement | class | "
        "medication class"
    ),
}
CODE_SYNONYMS: dict[str, dict[str, str]] = {  # canonical column -> code -> source values
    "sex": {
        "M": "h | homme | male | masculin | man",
        "F": "femme | female | féminin | woman",
    },
    "pain_diagnosis": {
        "neuropathic": "neuropathique | douleur neuropathique | neuropathic pain | neuro",
        "fibromyalgia": "fibromyalgie | fibro | fm",
        "crps": "sdrc | algodystrophie | syndrome douloureux régional complexe",
        "other": "autre | autres | other",
    },
    "route": {
        "iv": "intraveineuse | intraveineux | intravenous",
        "im": "intramusculaire | intramuscular",
        "sc": "sous-cutanée | sous-cutané | subcutaneous | sq",
        "oral": "po | orale | per os | vo | voie orale",
        "intranasal": "in | nasal | intra-nasal",
    },
    "setting": {
        "day_hospital": "hdj | hôpital de jour | hospitalisation de jour",
        "inpatient": "hospitalisation | hospitalisation complète | hc | hospit",
        "outpatient": "consultation | externe | consultation externe",
    },
    "ae_type": {
        "dizziness": "vertiges | vertige | étourdissements",
        "nausea": "nausées | nausée | nausees vomissements",
        "hallucination": "hallucinations",
        "hypertension": "hta | hypertension artérielle",
        "headache": "céphalées | céphalée | maux de tête | headaches",
        "other": "autre | autres",
    },
    "severity": {
        "mild": "léger | légère | faible",
        "moderate": "modéré | modérée",
        "severe": "sévère | grave",
    },
    "drug_class": {
        "opioids": "opioïdes | opioides | opiacés | morphiniques",
        "antidepressants": "antidépresseurs",
        "antiepileptics": "antiépileptiques | anticonvulsivants",
        "benzodiazepines": "benzodiazépines | benzos",
        "nsaids": "ains | anti-inflammatoires",
        "other": "autre | autres",
    },
}
# A form's name in a file name ("suivi_C02_...csv" is a follow-up export).
FORM_NAME_HINTS: dict[str, tuple[str, ...]] = {
    "inclusion": ("inclusion", "inclusions", "incl", "patients", "demographics"),
    "follow_up": ("suivi", "followup", "follow", "pain", "douleur", "appels", "calls", "nprs"),
    "ketamine": ("ketamine", "ket", "administrations", "perfusions", "injections"),
    "hads": ("hads",),
    "sf12": ("sf12",),
    "adverse_events": ("ae", "ei", "adverse", "effets", "indesirables", "eig"),
    "treatments": ("conmed", "traitements", "treatments", "concomitants", "medications"),
}
BASELINE_WORDS = {"baseline", "inclusion", "incl", "screening", "j0", "d0", "m0", "v0"}
UNIT_WORDS = {
    "kg": "kg",
    "g": "g",
    "lb": "lb",
    "lbs": "lb",
    "mg": "mg",
    "ug": "ug",
    "mcg": "ug",
    "mgkg": "mg/kg",
    "ugkg": "ug/kg",
    "mcgkg": "ug/kg",
}
SF12_ITEMS = list(SF12_RANGES)  # in questionnaire order
_WIDE_COLUMN = re.compile(
    r"^(?P<prefix>(?P<base>.+?)[ _.-]*(?:mois|month|m)[ _.-]?)(?P<n>\d{1,2})$", re.I
)
_HADS_ITEM = re.compile(r"^(?:hads_?)?([ad])_?([1-7])$")
_HADS_NUMBER = re.compile(r"^(?:hads_?)?(?:q|item)_?(\d{1,2})$")
_SF12_NUMBER = re.compile(r"^(?:sf_?12_?(?:q|item)?|q|item)_?(\d{1,2})$")
_MONTH_CODE = re.compile(r"(?:^|[^a-z])(?:month|mois|m)[ _-]?(\d{1,2})(?!\d)")


def _plain(text: str) -> str:
    """Lower case, accents stripped, 'µg' as 'ug'."""
    text = text.replace("µ", "u").replace("μ", "u")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", _plain(text)) if t]


def _key(text: str) -> str:
    """Compare names accent-, case- and punctuation-insensitively: 'N° patient' -> 'npatient'."""
    return "".join(_tokens(text))


def _column_index() -> dict[str, dict[str, str]]:
    """Per form: normalised source name -> canonical column."""
    index = {}
    for form_name, form in FORMS.items():
        columns = form.columns()
        keys = {_key(c): c for c in columns}
        for canonical, names in COLUMN_SYNONYMS.items():
            if canonical in columns:
                keys |= {_key(n): canonical for n in names.split(" | ") if _key(n) not in keys}
        index[form_name] = keys
    return index


def _code_index() -> dict[str, dict[str, str]]:
    """Per canonical coded column: normalised source value -> canonical code."""
    index = {}
    for column, codes in CODE_SYNONYMS.items():
        index[column] = {_key(s): code for code, names in codes.items() for s in names.split(" | ")}
    return index


COLUMN_INDEX = _column_index()
CODE_INDEX = _code_index()


# --- 1. the file's CSV dialect ------------------------------------------------------------


def sniff_csv_format(content: bytes) -> CsvFormat:
    """Guess a CSV export's encoding, delimiter and decimal mark from its bytes."""
    encoding = _guess_encoding(content)
    text = content.decode(encoding)
    delimiter = _guess_delimiter(text.split("\n", SNIFF_LINES)[:SNIFF_LINES])
    decimal = _guess_decimal(text, delimiter)
    return CsvFormat(delimiter=delimiter, decimal=decimal, encoding=encoding)


def _guess_encoding(content: bytes) -> str:
    """utf-8(-sig) when it decodes; else cp1252 if it uses cp1252's extra characters."""
    if content.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        content.decode("utf-8")
        return "utf-8"  # ASCII included
    except UnicodeDecodeError:
        pass
    if re.search(rb"[\x80-\x9f]", content):  # latin-1 control codes, cp1252's letters
        try:
            content.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return "latin-1"  # decodes anything; ISO-8859-15 and friends are closest to it


def _guess_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the most lines into the same number (> 1) of fields."""
    best, best_score = ",", (False, 0.0, 0)
    for delimiter in DELIMITERS:
        counts = [
            len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
        ]
        counts = [n for n in counts if n]
        if not counts:
            continue
        width, frequency = Counter(counts).most_common(1)[0]
        score = (width > 1, frequency / len(counts), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _guess_decimal(text: str, delimiter: str) -> str:
    """',' when numeric-looking cells use a decimal comma more often than a point."""
    try:
        sample = _parse_csv(text, delimiter, n_rows=SNIFF_ROWS)
    except pl.exceptions.PolarsError:
        return "."
    if sample.width == 0 or sample.height == 0:
        return "."
    cells = sample.select(pl.concat_list(pl.all()).alias("v")).explode("v")["v"].str.strip_chars()
    commas = cells.str.contains(_DECIMAL_COMMA).sum()
    points = cells.str.contains(_DECIMAL_POINT).sum()
    return "," if commas > points else "."


def _parse_csv(text: str, delimiter: str, *, n_rows: int | None = None) -> pl.DataFrame:
    """All-text columns, read as transforms.read reads them."""
    return pl.read_csv(
        io.BytesIO(text.encode("utf-8")),
        separator=delimiter,
        quote_char='"',
        infer_schema=False,
        empty_string_is_null=False,
        n_rows=n_rows,
    )


def read_csv_text(content: bytes, fmt: CsvFormat) -> pl.DataFrame:
    """An export as all-text columns in the given format (no identifier check: we profile)."""
    return _parse_csv(content.decode(fmt.encoding), fmt.delimiter)


# --- 2. the columns -------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnProfile:
    """What one column of an export holds. Values of identifier columns are never kept."""

    name: str
    n_rows: int
    n_missing: int
    missing_markers: tuple[str, ...] = ()  # the markers seen ('' for empty cells)
    kind: str = "empty"  # integer | decimal | date | text | empty
    n_invalid: int = 0  # non-missing values that do not fit the kind
    date_formats: tuple[str, ...] = ()  # every format that reads the values, preferred first
    minimum: float | dt.date | None = None
    maximum: float | dt.date | None = None
    n_distinct: int = 0
    value_counts: tuple[tuple[str, int], ...] = ()  # all of them, low-cardinality columns only
    identifier: str | None = None  # what direct identifier it looks like
    decimal_comma: bool = False

    @property
    def top_values(self) -> tuple[tuple[str, int], ...]:
        """The most frequent values (up to TOP_VALUES), most frequent first."""
        return self.value_counts[:TOP_VALUES]

    @property
    def date_format(self) -> str | None:
        """The preferred strptime format, when the column holds dates."""
        return self.date_formats[0] if self.kind == "date" and self.date_formats else None

    @property
    def ambiguous_with(self) -> str | None:
        """Another format that reads every value as well (day/month or month/day)."""
        other = AMBIGUOUS_DATES.get(self.date_format or "")
        return other if other in self.date_formats else None


def profile_table(frame_as_text: pl.DataFrame) -> list[ColumnProfile]:
    """Profile every column of an all-text frame, flagging direct identifiers."""
    identifiers = direct_identifier_columns(frame_as_text) | _more_identifiers(frame_as_text)
    profiles = []
    for name in frame_as_text.columns:
        profile = _profile_column(name, frame_as_text[name].cast(pl.String))
        if name in identifiers:  # flag loudly, keep nothing of the values
            profile = replace(
                profile,
                identifier=identifiers[name],
                minimum=None,
                maximum=None,
                value_counts=(),
            )
        profiles.append(profile)
    return profiles


def _more_identifiers(frame: pl.DataFrame) -> dict[str, str]:
    found = {c: "a birth date" for c in frame.columns if BIRTH_NAME.search(_key(c))}
    text = [c for c in frame.columns if c not in found and frame[c].dtype == pl.String]
    if not text or frame.height == 0:
        return found
    sample = frame.head(200).select(
        pl.col(text).str.replace_all(r"\s", "").replace("", None).str.contains(NIR_VALUE).mean()
    )
    for column, share in sample.row(0, named=True).items():
        if share is not None and share >= IDENTIFIER_SHARE:
            found[column] = "a social security number"
    return found


def _profile_column(name: str, column: pl.Series) -> ColumnProfile:
    values = column.str.strip_chars()
    missing = values.is_null() | values.is_in(MISSING_MARKERS)
    markers = set(values.filter(values.is_in(MISSING_MARKERS)).unique().to_list())
    if values.null_count():
        markers.add("")
    present = values.filter(~missing)
    base = ColumnProfile(
        name=name,
        n_rows=column.len(),
        n_missing=int(missing.sum()),
        missing_markers=tuple(m for m in MISSING_MARKERS if m in markers),
        n_distinct=present.n_unique(),
    )
    if present.is_empty():
        return base
    counts = (
        present.rename("value")
        .value_counts(name="count")
        .sort(["count", "value"], descending=[True, False])
    )
    if counts.height <= LOW_CARDINALITY:
        base = replace(base, value_counts=tuple(counts.iter_rows()))
    return _typed(base, present)


def _typed(base: ColumnProfile, present: pl.Series) -> ColumnProfile:
    """Integer, decimal, date or text; a few stray values do not stop a type."""
    frame = present.to_frame("v")
    shapes = {"integer": _INTEGER, "decimal": _DECIMAL} | DATE_FORMATS
    shares = frame.select(
        pl.col("v").str.contains(pattern).mean().alias(name) for name, pattern in shapes.items()
    ).row(0, named=True)
    likely = [f for f in DATE_FORMATS if shares[f] >= TOLERATED_INVALID]  # parse only those
    dates = {}
    if likely:
        parsed = frame.select(_date(f).is_not_null().mean().alias(f) for f in likely)
        dates = parsed.row(0, named=True)
    shares["date"] = max(dates.values(), default=0.0)
    order = ["date", "integer", "decimal"]
    full = [k for k in order if shares[k] == 1.0]
    kind = full[0] if full else max(order, key=lambda k: shares[k])
    if shares[kind] < TOLERATED_INVALID:
        return replace(base, kind="text")
    n_invalid = round((1 - shares[kind]) * present.len())
    if kind == "date":
        candidates = tuple(f for f, share in dates.items() if share == shares["date"])
        parsed = frame.select(_date(candidates[0]))["v"]
        return replace(
            base,
            kind="date",
            n_invalid=n_invalid,
            date_formats=candidates,
            minimum=parsed.min(),
            maximum=parsed.max(),
        )
    numbers = present.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
    return replace(
        base,
        kind=kind,
        n_invalid=n_invalid,
        minimum=numbers.min(),
        maximum=numbers.max(),
        decimal_comma=bool(present.str.contains(_DECIMAL_COMMA).any()),
    )


def _date(fmt: str) -> pl.Expr:
    """Column 'v' read with ``fmt``; null unless it has the format's shape and a sane year."""
    value = pl.col("v")
    parsed = value.str.strptime(pl.Date, fmt, strict=False)
    plausible = value.str.contains(DATE_FORMATS[fmt]) & parsed.dt.year().is_between(
        *PLAUSIBLE_YEARS
    )
    return pl.when(plausible).then(parsed).alias("v")


# --- 3. a form's mapping from the profiles ----------------------------------------------


@dataclass
class _Draft:
    """A form mapping under construction, and what a person must check."""

    form: str
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> source
    families: dict[str, tuple[str, list[ColumnProfile]]] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # 'codes.sex' -> comment
    todo: list[str] = field(default_factory=list)
    unmapped: dict[str, str] = field(default_factory=dict)  # source -> why not mapped
    unresolved_codes: dict[str, list[str]] = field(default_factory=dict)


def suggest_mapping(profiles: list[ColumnProfile], form_name: str) -> dict:
    """Candidate mapping of one profiled file to the canonical form ``form_name``.

    Returns a dict with ``mapping`` (the FormMapping fields, without file_pattern and
    format), ``notes`` (comments keyed 'section.column'), ``todo`` (form-level things to
    decide), ``unmatched`` (canonical columns not found), ``unmapped`` (source column ->
    reason), ``unresolved_codes`` (canonical column -> source values without a code),
    ``identifiers`` (source column -> what it looks like) and ``score`` (the number of
    canonical columns matched besides patient_id).
    """
    if form_name not in FORMS:
        raise ConfigError(f"unknown form {form_name!r}; known: {', '.join(FORMS)}")
    draft = _Draft(form_name)
    usable = [p for p in profiles if p.identifier is None]
    for p in profiles:
        if p.identifier:
            draft.unmapped[p.name] = f"DO NOT MAP: looks like {p.identifier}"
    in_families = _match_families(draft, usable)
    _match_columns(draft, [p for p in usable if p.name not in in_families])
    by_name = {p.name: p for p in usable}
    for canonical, source in draft.columns.items():
        _describe_values(draft, canonical, by_name[source])
    for canonical, (_, members) in draft.families.items():
        _describe_values(draft, canonical, _merge(canonical, members))
    return _as_dict(draft, usable)


def _as_dict(draft: _Draft, usable: list[ColumnProfile]) -> dict:
    form_columns = FORMS[draft.form].columns()
    wide = bool(draft.families)
    found = set(draft.columns) | set(draft.families) | ({"month"} if wide else set())
    markers = {m for p in usable for m in p.missing_markers} | {"", "NA"}  # the reader's default
    mapping: dict = {"layout": "wide" if wide else "long"}
    if wide:
        mapping["id_columns"] = dict(draft.columns)
        mapping["wide_columns"] = {c: pattern for c, (pattern, _) in draft.families.items()}
    else:
        mapping["columns"] = dict(draft.columns)
    mapping |= {"codes": draft.codes, "units": draft.units, "date_formats": draft.date_formats}
    mapping["missing_values"] = [m for m in MISSING_MARKERS if m in markers]
    return {
        "form": draft.form,
        "mapping": mapping,
        "notes": draft.notes,
        "todo": draft.todo,
        "unmatched": [c for c in form_columns if c not in found],
        "unmapped": draft.unmapped,
        "unresolved_codes": draft.unresolved_codes,
        "identifiers": {p: r for p, r in draft.unmapped.items() if r.startswith("DO NOT")},
        "score": len(found - {"patient_id"}),
    }


def _match_families(draft: _Draft, usable: list[ColumnProfile]) -> set[str]:
    """Wide layout: families like EN_M0..EN_M12 whose stem names a canonical column."""
    if "month" not in FORMS[draft.form].columns():
        return set()
    families: dict[str, list[ColumnProfile]] = {}
    for p in usable:
        match = _WIDE_COLUMN.match(p.name)
        if match:
            families.setdefault(match["prefix"], []).append(p)
    taken = set()
    for prefix, members in families.items():
        if len(members) < 2:
            continue
        stem = _WIDE_COLUMN.match(members[0].name)["base"]
        canonical = _canonical_for(draft.form, stem)
        if canonical in (None, "patient_id", "month") or canonical in draft.families:
            continue
        draft.families[canonical] = (re.escape(prefix) + r"(\d+)", members)
        names = [m.name for m in members]
        draft.notes[f"wide_columns.{canonical}"] = (
            f"{len(names)} columns: {names[0]} .. {names[-1]}"
        )
        taken |= set(names)
    return taken


def _match_columns(draft: _Draft, usable: list[ColumnProfile]) -> None:
    """Long columns by name (synonyms, numbered questionnaire items, the form's one date)."""
    for p in usable:
        canonical = _canonical_for(draft.form, p.name)
        if canonical is None:
            draft.unmapped[p.name] = "no canonical column recognised: leave it out or map it"
        elif canonical in draft.columns or canonical in draft.families:
            taken = draft.columns.get(canonical) or draft.families[canonical][0]
            draft.unmapped[p.name] = f"also looks like {canonical} (mapped from {taken!r})"
        elif canonical == "month" and draft.families:
            draft.unmapped[p.name] = "looks like month, but the months are in the column names"
        else:
            draft.columns[canonical] = p.name
            _item_note(draft, p.name, canonical)
            _unit_of(draft, p.name, canonical)


def _canonical_for(form: str, name: str) -> str | None:
    index = COLUMN_INDEX[form]
    for variant in _name_variants(name):
        if variant in index:
            canonical = index[variant]
            unit = _unit_in(name)
            if canonical == "dose_mg" and unit and unit.endswith("/kg") and form == "ketamine":
                return "dose_mg_per_kg"
            return canonical
    return _numbered_item(form, name) or _the_date_column(form, name)


def _name_variants(name: str) -> list[str]:
    """The name, without its '(unit)', without a trailing unit word."""
    tokens = _tokens(name)
    bare = _tokens(re.sub(r"\(.*?\)", " ", name))
    variants = ["".join(tokens), "".join(bare)]
    for n in (2, 1):
        if len(tokens) > n and "".join(tokens[-n:]) in UNIT_WORDS:
            variants.append("".join(tokens[:-n]))
    return list(dict.fromkeys(v for v in variants if v))


def _unit_in(name: str) -> str | None:
    """The unit a header states: 'Poids (lb)', 'weight_g', 'Dose (µg/kg)'."""
    inside = re.findall(r"\((.*?)\)", name)
    tokens = _tokens(name)
    for candidate in [*(_key(i) for i in inside), "".join(tokens[-2:]), "".join(tokens[-1:])]:
        if candidate in UNIT_WORDS and len(tokens) > 1:
            return UNIT_WORDS[candidate]
    return None


def _unit_of(draft: _Draft, name: str, canonical: str) -> None:
    unit = _unit_in(name)
    known = UNIT_FACTORS.get(canonical, {})
    if unit in known and known[unit] != 1.0:
        draft.units[canonical] = unit
        draft.notes[f"units.{canonical}"] = f"TODO-check: unit read from the header {name!r}"


def _numbered_item(form: str, name: str) -> str | None:
    """HADS A1/D1 or items 1-14 (odd = anxiety), SF-12 items 1-12, in questionnaire order."""
    plain = "_".join(_tokens(name))
    if form == "hads":
        item = _HADS_ITEM.match(plain)
        if item:
            return f"hads_{item[1]}{item[2]}"
        number = _HADS_NUMBER.match(plain)
        if number and 1 <= int(number[1]) <= 14:
            n = int(number[1])
            return f"hads_a{(n + 1) // 2}" if n % 2 else f"hads_d{n // 2}"
    if form == "sf12":
        number = _SF12_NUMBER.match(plain)
        if number and 1 <= int(number[1]) <= len(SF12_ITEMS):
            return SF12_ITEMS[int(number[1]) - 1]
    return None


def _item_note(draft: _Draft, name: str, canonical: str) -> None:
    """Items known only by their number are assumed in the questionnaire's order."""
    plain = "_".join(_tokens(name))
    numbered = {"hads": _HADS_NUMBER, "sf12": _SF12_NUMBER}.get(draft.form)
    if numbered is None or not numbered.match(plain) or _key(name) == _key(canonical):
        return
    note = "TODO-check: numbered items are assumed in the questionnaire's order"
    if draft.form == "hads":
        note += " (HADS: odd items anxiety, even items depression)"
    if note not in draft.todo:
        draft.todo.append(note)


def _the_date_column(form: str, name: str) -> str | None:
    """A column (or a family of wide columns) named just 'Date': the form's only date."""
    dates = [c for c, dtype in FORMS[form].columns().items() if dtype == pl.Date]
    return dates[0] if _key(name) == "date" and len(dates) == 1 else None


def _merge(name: str, members: list[ColumnProfile]) -> ColumnProfile:
    """One profile for a family of wide columns (EN_M0..EN_M12 read as one column)."""
    typed = [p for p in members if p.kind != "empty"]
    kinds = {p.kind for p in typed}
    kind = kinds.pop() if len(kinds) == 1 else ("empty" if not kinds else "text")
    formats = [f for f in DATE_FORMATS if all(f in p.date_formats for p in typed)]
    counts: Counter[str] = Counter()
    for p in members:
        counts.update(dict(p.value_counts))
    complete = all(p.value_counts or p.kind == "empty" for p in members)
    listed = complete and len(counts) <= LOW_CARDINALITY
    return ColumnProfile(
        name=name,
        n_rows=sum(p.n_rows for p in members),
        n_missing=sum(p.n_missing for p in members),
        kind=kind,
        n_invalid=sum(p.n_invalid for p in members),
        date_formats=tuple(formats),
        n_distinct=len(counts),
        value_counts=tuple(counts.most_common()) if listed else (),
    )


def _describe_values(draft: _Draft, canonical: str, profile: ColumnProfile) -> None:
    """Date formats, codes, and values the reader will not be able to cast."""
    dtype = FORMS[draft.form].columns()[canonical]
    if dtype == pl.Date:
        _date_format(draft, canonical, profile)
    elif canonical == "month" and profile.kind not in ("integer", "empty"):
        _month_codes(draft, profile)
    elif dtype.is_numeric():
        _numbers(draft, canonical, dtype, profile)
    else:
        allowed = _allowed_codes(draft.form, canonical)
        if allowed:
            _codes(draft, canonical, profile, allowed)


def _numbers(draft: _Draft, canonical: str, dtype, profile: ColumnProfile) -> None:
    if profile.kind == "text":
        draft.todo.append(f"TODO: {canonical}: most values are not numbers: check the column")
    elif profile.kind == "decimal" and dtype.is_integer():
        draft.todo.append(
            f"TODO-check: {canonical}: some values are not whole numbers; they will be quarantined"
        )
    elif profile.n_invalid:
        draft.todo.append(f"TODO-check: {canonical}: {profile.n_invalid} value(s) not numbers")


def _date_format(draft: _Draft, canonical: str, profile: ColumnProfile) -> None:
    if profile.kind == "empty":
        draft.todo.append(f"TODO: {canonical}: no values to guess a date format from")
        return
    if profile.kind != "date" or not profile.date_formats:
        draft.todo.append(f"TODO: {canonical}: the values do not look like dates: check them")
        return
    fmt = profile.date_formats[0]
    if fmt != ISO_DATE:
        draft.date_formats[canonical] = fmt
    other = AMBIGUOUS_DATES.get(fmt)
    if other in profile.date_formats:
        draft.notes[f"date_formats.{canonical}"] = (
            f"TODO: ambiguous, every value also reads as {other} (no day > 12): ask the centre"
        )
    elif profile.n_invalid:
        draft.todo.append(
            f"TODO-check: {canonical}: {profile.n_invalid} value(s) do not read as {fmt}; "
            "they will be quarantined"
        )


def _allowed_codes(form: str, canonical: str) -> list[str]:
    """The canonical codes of a coded text column (its Pandera isin check)."""
    column = FORMS[form].schema.to_schema().columns[canonical]
    if FORMS[form].columns()[canonical] != pl.String:
        return []
    for check in column.checks:
        if check.name == "isin":
            return list(check.statistics["allowed_values"])
    return []


def _codes(draft: _Draft, canonical: str, profile: ColumnProfile, allowed: list[str]) -> None:
    values = [v for v, _ in profile.value_counts]
    if not values:
        if profile.n_distinct:
            draft.todo.append(f"TODO: codes.{canonical}: {profile.n_distinct} values: write codes")
        return
    if set(values) <= set(allowed):
        return
    if all(re.fullmatch(r"\d+", v) for v in values):
        codes, note = _numeric_codes(canonical, values, allowed)
    else:
        known = {_key(a): a for a in allowed} | CODE_INDEX.get(canonical, {})
        codes = {v: known[_key(v)] for v in values if _key(v) in known}
        unseen = [a for a in allowed if a not in codes.values()]
        note = f"TODO: no code seen for {', '.join(unseen)}: add the centre's" if unseen else ""
    if codes:  # an empty dict would turn every value into an unknown code
        draft.codes[canonical] = dict(sorted(codes.items(), key=lambda kv: _natural(kv[0])))
    if note:
        draft.notes[f"codes.{canonical}"] = note
    unresolved = [v for v in values if v not in codes]
    if unresolved:
        draft.unresolved_codes[canonical] = unresolved
        draft.todo.append(
            f"TODO: codes.{canonical}: no canonical code for {unresolved} (one of {allowed}); "
            "values without a code are quarantined"
        )


def _numeric_codes(canonical: str, values: list[str], allowed: list[str]):
    """A guess for every canonical code, not only the ones seen: the centre will use them."""
    if canonical == "sex":
        return {"1": "M", "2": "F"}, "TODO-check: guessed 1 = M, 2 = F (INSEE): confirm"
    start = 0 if min(int(v) for v in values) == 0 else 1
    codes = {str(start + i): code for i, code in enumerate(allowed)}
    note = f"TODO-check: guessed in canonical order from {start}: check the data dictionary"
    return codes, note


def _month_codes(draft: _Draft, profile: ColumnProfile) -> None:
    """Event or visit names -> month numbers: 'baseline_arm_1' -> 0, 'month_3_arm_1' -> 3."""
    values = [v for v, _ in profile.value_counts]
    if not values:
        draft.todo.append(f"TODO: codes.month: {profile.n_distinct} values: write codes by hand")
        return
    codes, unresolved = {}, []
    for value in values:
        month = _month_of(value)
        if month is None:
            unresolved.append(value)
        else:
            codes[value] = str(month)
    if codes:
        draft.codes["month"] = dict(sorted(codes.items(), key=lambda kv: int(kv[1])))
    draft.notes["codes.month"] = "TODO-check: read from the event names; add events not seen"
    if unresolved:
        draft.unresolved_codes["month"] = unresolved
        draft.todo.append(f"TODO: codes.month: no month number found in {unresolved}")


def _month_of(value: str) -> int | None:
    plain = _plain(value)
    if BASELINE_WORDS.intersection(_tokens(value)):
        return 0
    match = _MONTH_CODE.search(plain)
    return int(match[1]) if match else None


def _natural(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


# --- 4. files and the YAML draft --------------------------------------------------------


@dataclass(frozen=True)
class FileProfile:
    """One export file: its format, its columns, or why it was not profiled."""

    path: Path
    format: CsvFormat | None = None
    n_rows: int = 0
    columns: list[ColumnProfile] = field(default_factory=list)
    skipped: str | None = None  # why the file could not be profiled
    ascii_only: bool = False  # the encoding guess has nothing to go on

    @property
    def has_decimals(self) -> bool:
        """Whether any column holds decimal numbers (the decimal mark guess rests on them)."""
        return any(p.kind == "decimal" for p in self.columns)


def profile_file(path: Path) -> FileProfile:
    """Sniff and profile one export file (CSV only; others are skipped with the reason)."""
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES:
        kind = {".xlsx": "XLSX", ".xls": "XLS", ".parquet": "parquet"}.get(suffix, suffix)
        return FileProfile(path, skipped=f"{kind or 'this kind of'} files are not profiled yet")
    try:
        content = path.read_bytes()
    except OSError as exc:
        return FileProfile(path, skipped=f"cannot read it: {exc.strerror or exc}")
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return FileProfile(path, skipped="UTF-16 text: ask the centre for a UTF-8 export")
    if not content.strip():
        return FileProfile(path, skipped="empty file")
    fmt = sniff_csv_format(content)
    try:
        frame = read_csv_text(content, fmt)
    except pl.exceptions.PolarsError as exc:
        return FileProfile(path, fmt, skipped=f"unreadable CSV: {str(exc).splitlines()[0]}")
    columns = profile_table(frame)
    return FileProfile(path, fmt, frame.height, columns, ascii_only=content.isascii())


def guess_form(profile: FileProfile) -> str | None:
    """The form a file most looks like: by its name when its columns agree, else columns."""
    scores = {f: suggest_mapping(profile.columns, f)["score"] for f in FORMS}
    named = [f for f in FORMS if _named_like(profile.path, f) and scores[f] > 0]
    if named:
        return max(named, key=lambda f: scores[f])
    best = max(scores, key=lambda f: scores[f] / len(FORMS[f].columns()))
    return best if scores[best] > 0 else None


def _named_like(path: Path, form: str) -> bool:
    tokens = set(_tokens(path.stem)) | set(re.findall(r"[a-z]+", _plain(path.stem)))
    return bool(tokens.intersection(FORM_NAME_HINTS[form]))


def file_pattern(name: str, centre_id: str = "") -> str:
    """A glob for the centre's next exports: date stamps and numbers standing alone -> '*'."""
    stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
    protected = stem.replace(centre_id, "\x00") if centre_id else stem
    pattern = re.sub(r"(?<![A-Za-z0-9])\d(?:[\d._-]*\d)?(?![A-Za-z0-9])", "*", protected)
    pattern = re.sub(r"\*+", "*", pattern).replace("\x00", centre_id)
    return f"{pattern}{dot}{suffix}"


def draft_mapping_yaml(centre_id: str, files: list[Path]) -> str:
    """A YAML draft of a new centre's mapping file, with TODO comments for a person."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", centre_id):
        raise ConfigError(f"centre id {centre_id!r}: use 1-32 letters, digits, '-' or '_'")
    profiles = _harmonise([profile_file(p) for p in files])
    drafts: dict[str, tuple[FileProfile, dict]] = {}
    loose: list[str] = []
    for profile in profiles:
        if profile.skipped:
            loose.append(
                f"TODO: {profile.path.name} was not profiled ({profile.skipped}): "
                "write its form(s) by hand"
            )
            continue
        form = guess_form(profile)
        if form is None:
            loose.append(f"TODO: {profile.path.name}: no canonical form recognised in its columns")
        elif form in drafts:
            loose.append(
                f"TODO: {profile.path.name} also looks like {form} (drafted from "
                f"{drafts[form][0].path.name}): one file pattern per form"
            )
        else:
            drafts[form] = (profile, suggest_mapping(profile.columns, form))
    _share_missing_markers([s for _, s in drafts.values()])
    flagged = {p.path.name: [c.name for c in p.columns if c.identifier] for p in profiles}
    return _render(centre_id, drafts, loose, {f: c for f, c in flagged.items() if c})


def _share_missing_markers(suggestions: list[dict]) -> None:
    """A centre marks missing values the same way in all its files: use every marker seen."""
    seen = {m for s in suggestions for m in s["mapping"]["missing_values"]}
    for suggestion in suggestions:
        suggestion["mapping"]["missing_values"] = [m for m in MISSING_MARKERS if m in seen]


def _harmonise(profiles: list[FileProfile]) -> list[FileProfile]:
    """A file without evidence (ASCII only, no decimals) takes the centre's usual locale."""
    read = [p for p in profiles if p.format is not None and not p.skipped]
    encodings = Counter(p.format.encoding for p in read if not p.ascii_only)
    decimals = Counter(p.format.decimal for p in read if p.has_decimals)
    out = []
    for p in profiles:
        if p.format is not None and not p.skipped:
            fmt = p.format
            if p.ascii_only and encodings:
                fmt = fmt.model_copy(update={"encoding": encodings.most_common(1)[0][0]})
            if not p.has_decimals and decimals and fmt.delimiter != ",":
                fmt = fmt.model_copy(update={"decimal": decimals.most_common(1)[0][0]})
            p = replace(p, format=fmt)
        out.append(p)
    return out


# --- YAML rendering: by hand, for the comments ------------------------------------------


_LINE_BREAKS = re.compile(r"[\r\n\x85\u2028\u2029]")  # a comment must stay on its line
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def _q(value: str) -> str:
    """A YAML scalar that stays a string: single quotes, or JSON's double quotes."""
    if _UNPRINTABLE.search(value):  # YAML wants them escaped: JSON escapes are YAML's too
        return json.dumps(value)
    if "'" in value and "\\" not in value:
        return json.dumps(value, ensure_ascii=False)
    return "'" + value.replace("'", "''") + "'"


def _comment(text: str) -> str:
    return f"  # {text}" if text else ""


def _render(
    centre_id: str,
    drafts: dict[str, tuple[FileProfile, dict]],
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


def _render_form(form: str, profile: FileProfile, suggestion: dict, centre_id: str) -> list[str]:
    mapping, notes = suggestion["mapping"], suggestion["notes"]
    fmt = profile.format
    fields = [f"kind: csv, delimiter: {_q(fmt.delimiter)}", f"decimal: {_q(fmt.decimal)}"]
    fields.append(f"encoding: {_q(fmt.encoding)}")
    lines = [
        f"  {form}:",
        f"    # from {profile.path.name}: {profile.n_rows} rows, {len(profile.columns)} columns",
        f"    file_pattern: {_q(file_pattern(profile.path.name, centre_id))}",
        f"    format: {{{', '.join(fields)}}}",
        f"    layout: {mapping['layout']}",
    ]
    for section in ("columns", "id_columns", "wide_columns", "units", "date_formats"):
        lines += _render_section(section, mapping.get(section, {}), notes)
    lines += _render_codes(mapping["codes"], notes, suggestion["unresolved_codes"])
    markers = ", ".join(_q(m) for m in mapping["missing_values"])
    lines.append(f"    missing_values: [{markers}]")
    lines += _render_todo(form, suggestion)
    return lines


def _render_section(section: str, entries: dict[str, str], notes: dict[str, str]) -> list[str]:
    if not entries:
        return []
    lines = [f"    {section}:"]
    for canonical, value in entries.items():
        note = notes.get(f"{section}.{canonical}", "")
        lines.append(f"      {canonical}: {_q(value)}{_comment(note)}")
    return lines


def _render_codes(codes: dict, notes: dict[str, str], unresolved: dict) -> list[str]:
    """Codes as block mappings; a column with no code recognised stays commented out."""
    names = list(dict.fromkeys([*codes, *unresolved]))
    if not names:
        return []
    lines = ["    codes:" if codes else "    # codes:"]
    for canonical in names:
        entries = codes.get(canonical, {})
        lead = "      " if entries else "      # "
        lines.append(f"{lead}{canonical}:{_comment(notes.get(f'codes.{canonical}', ''))}")
        lines += [f"{lead}  {_q(src)}: {_q(dst)}" for src, dst in entries.items()]
        lines += [f"        # {_q(v)}: TODO, not recognised" for v in unresolved.get(canonical, [])]
    return lines


def _render_todo(form: str, suggestion: dict) -> list[str]:
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


# --- 5. the report a data manager reads -------------------------------------------------


def profile_report(files: Iterable[Path]) -> str:
    """A plain-text summary: per file, its format and a one-line profile per column."""
    blocks = []
    for profile in _harmonise([profile_file(Path(p)) for p in files]):
        blocks.append("\n".join(_report_file(profile)))
    return "\n\n".join(blocks) + "\n"


def _report_file(profile: FileProfile) -> list[str]:
    if profile.skipped:
        return [f"{profile.path.name}: not profiled: {profile.skipped}"]
    fmt = profile.format
    form = guess_form(profile)
    lines = [
        f"{profile.path.name}: CSV, delimiter {fmt.delimiter!r}, decimal {fmt.decimal!r}, "
        f"encoding {fmt.encoding}; {profile.n_rows} rows x {len(profile.columns)} columns; "
        f"looks like: {form or 'no known form'}"
    ]
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
    if p.value_counts and p.kind != "date" and p.value_counts[0][1] > 1:  # not all unique
        parts.append("top " + ", ".join(f"{v!r} x{n}" for v, n in p.top_values))
    return f"   {p.name:<{width}}  {kind:<14}  " + "; ".join(parts)


def _show(value: float | dt.date | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
