"""The one identifier policy: which columns are direct identifiers, for the reader and the
profiler alike.

Names, initials, full or partial birth dates, phone numbers (national and international),
social security numbers (NIR), addresses and e-mail addresses must never reach the
warehouse: a file carrying such a column is rejected whole by the reader, and the
profiler flags the column and never shows its values. Detection is by the column's name
(French and English, accents, case, camelCase and abbreviations such as ``Date naiss.``,
``DDN``, ``dob``) and by its values (a share of a sample matching a pattern); the header
cell itself is looked at as a value too, since in a file without a header row it is one.

Everything here is linear in the number of columns (one pass over the names, one polars
query over a sample in long form), so a 100,000-column file costs no more than its size.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import polars as pl

NAME = "a name"
INITIALS = "initials"
PHONE = "a phone number"
EMAIL = "an e-mail address"
ADDRESS = "an address"
NIR = "a social security number"
BIRTH = "a birth date"

# Whole words of a column name (accents stripped, lower case, camelCase split).
NAME_TOKENS = {
    **dict.fromkeys(["nom", "prenom", "prenoms", "name", "surname", "forename"], NAME),
    **dict.fromkeys(["firstname", "lastname", "givenname", "identite", "patronyme"], NAME),
    **dict.fromkeys(["initiales", "initials", "initiale"], INITIALS),
    **dict.fromkeys(["telephone", "tel", "phone", "mobile", "portable"], PHONE),
    **dict.fromkeys(["gsm", "fax", "cellphone", "telephoneportable"], PHONE),
    **dict.fromkeys(["email", "mail", "courriel"], EMAIL),
    **dict.fromkeys(["adresse", "address", "rue", "street", "domicile"], ADDRESS),
    **dict.fromkeys(["codepostal", "postcode", "zipcode", "postal"], ADDRESS),
    **dict.fromkeys(["nir", "secu", "ssn", "nss", "insee"], NIR),
    **dict.fromkeys(["naissance", "naiss", "nais", "ddn", "dob", "yob", "birth"], BIRTH),
    **dict.fromkeys(["birthdate", "birthday", "datenaissance", "datenais"], BIRTH),
}
# Stems found inside glued names ("datedenaissance", "patientfirstname", "numtelephone").
NAME_STEMS = {
    r"(?<!con)naiss": BIRTH,  # not "connaissance"
    r"birth": BIRTH,
    r"telephone": PHONE,
    r"adresse|address": ADDRESS,
    r"prenom|firstname|lastname|surname": NAME,
    r"email|courriel": EMAIL,
    r"initiales|initials": INITIALS,
}
# "name"/"nom" alone are ambiguous: a column naming something else is not a person's name.
NOT_A_PERSON = {
    "event",
    "evenement",
    "centre",
    "center",
    "site",
    "service",
    "file",
    "fichier",
    "medicament",
    "drug",
    "traitement",
    "treatment",
    "molecule",
    "produit",
    "form",
    "instrument",
    "arm",
    "bras",
    "study",
    "etude",
    "investigateur",
    "investigator",
    "sheet",
    "feuille",
    # eCRF exports (Castor: 'Survey Package Name', 'Repeating Data Name Custom')
    "survey",
    "questionnaire",
    "package",
    "repeating",
    "visit",
    "visite",
    "field",
    "variable",
}
AMBIGUOUS = {"nom", "name", "postal"}


def _separated(pattern: str) -> str:
    """``~`` in ``pattern`` stands for an optional separator: space, dot or dash."""
    return pattern.replace("~", r"[ .\-]?")


VALUE_PATTERNS = {
    # national (06 12 34 56 78) and international (+33 6 12 34 56 78, 0033..., +44 20 ...)
    PHONE: _separated(
        r"^(0[1-9](~\d{2}){4}|(\+|00)[1-9]\d{0,2}~(\(0\)~)?(\(\d{1,4}\)~)?\d(~\d){6,13})$"
    ),
    # NIR: sex, year, month, department (2A/2B in Corsica), commune, order, [key]
    NIR: _separated(r"^[1-478]~\d{2}~\d{2}~(\d{2}|2[ABab])~\d{3}~\d{3}(~\d{2})?$"),
    EMAIL: r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$",
    INITIALS: r"^([A-Z]\.[ \-]?){2,3}$",
    ADDRESS: (
        r"(?i)^\d{1,4}\s*(bis|ter)?\s*,?\s+(rue|avenue|av\.?|bd|boulevard|chemin|all[ée]e"
        r"|impasse|place|route|quai|cours|street|st\.?|road|rd\.?|lane|ave\.?)\s"
    ),
}
SAMPLE = 200  # values looked at per column
SHARE = 0.5  # a column is an identifier when this share of its sampled values match


@dataclass(frozen=True)
class IdentifierColumn:
    """A column that looks like a direct identifier: where it is and what it looks like."""

    position: int  # 1-based, as a person counts columns
    name: str  # the header cell: never show it when the header looks like data
    kind: str
    by: str  # "its name" or "its values"


def plain(name: str) -> str:
    """Accents stripped; camelCase split into words; lower case."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text).lower()


def tokens(name: str) -> list[str]:
    """Words of a column name: 'DateNaissance' and 'date_naissance' both give 'naissance'."""
    return [t for t in re.split(r"[^a-z0-9]+", plain(name)) if t]


_STEMS = [(re.compile(stem), kind) for stem, kind in NAME_STEMS.items()]


def identifier_by_name(name: str) -> str | None:
    """What direct identifier a column's name says it holds, if any."""
    words = tokens(name)
    person = not NOT_A_PERSON.intersection(words)
    for word in words:
        kind = NAME_TOKENS.get(word)
        if kind and (person or word not in AMBIGUOUS):
            return kind
    glued = "".join(words)
    return next((kind for stem, kind in _STEMS if stem.search(glued)), None)


def find_identifier_columns(raw: pl.DataFrame) -> list[IdentifierColumn]:
    """Every column of a text frame that looks like a direct identifier, by position."""
    names = raw.columns  # once: polars builds the list anew on each access
    found = {}
    for i, name in enumerate(names):
        kind = identifier_by_name(name)
        if kind:
            found[i] = IdentifierColumn(i + 1, name, kind, "its name")
    for i, kind in _by_values(raw).items():
        found.setdefault(i, IdentifierColumn(i + 1, names[i], kind, "its values"))
    return [found[i] for i in sorted(found)]


def direct_identifier_columns(raw: pl.DataFrame) -> dict[str, str]:
    """Columns that look like direct identifiers, by header: what each looks like."""
    return {c.name: c.kind for c in find_identifier_columns(raw)}


def _by_values(raw: pl.DataFrame) -> dict[int, str]:
    """Positions whose sampled values (header cell included) mostly match a pattern.

    The sample is taken in long form (position, value), so that each pattern is one
    expression whatever the number of columns.
    """
    text = [i for i, dtype in enumerate(raw.dtypes) if dtype == pl.String]
    if not text:
        return {}
    names = raw.columns
    headers = pl.DataFrame(
        {"position": text, "value": [names[i] for i in text]},
        schema={"position": pl.Int64, "value": pl.String},
    )
    long = pl.concat([headers, _long_sample(raw, text)])
    values = pl.col("value").str.strip_chars().replace("", None)
    shares = (
        long.with_columns(value=values)
        .drop_nulls()
        .group_by("position")
        .agg(pl.col("value").str.contains(p).mean().alias(k) for k, p in VALUE_PATTERNS.items())
    )
    found = {}
    for row in shares.sort("position").iter_rows(named=True):
        kind = next((k for k in VALUE_PATTERNS if (row[k] or 0) >= SHARE), None)
        if kind:
            found[row["position"]] = kind
    return found


def _long_sample(raw: pl.DataFrame, text: list[int]) -> pl.DataFrame:
    """The first SAMPLE rows of the text columns as (position, value) pairs."""
    if raw.height == 0:
        return pl.DataFrame(schema={"position": pl.Int64, "value": pl.String})
    sample = raw.head(SAMPLE).select(pl.nth(text))
    sample.columns = [str(i) for i in text]  # by position: a header may read '*' or repeat
    return sample.unpivot(variable_name="position", value_name="value").with_columns(
        pl.col("position").cast(pl.Int64)
    )
