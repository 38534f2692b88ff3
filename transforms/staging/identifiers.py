"""Direct identifiers (names, phones, social security numbers, birth dates, e-mails).

They must never reach the warehouse: a file carrying a column that looks like one is
rejected whole, before any value is read further, with the column named so that the
centre can re-export without it. Detection is by column name and by content.
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

# Tokens of a column name (accents stripped, lower case, split on non-alphanumerics).
NAME_TOKENS = {
    "nom": "a name",
    "prenom": "a name",
    "name": "a name",
    "surname": "a name",
    "firstname": "a name",
    "lastname": "a name",
    "initiales": "initials",
    "telephone": "a phone number",
    "tel": "a phone number",
    "phone": "a phone number",
    "mobile": "a phone number",
    "portable": "a phone number",
    "email": "an e-mail address",
    "mail": "an e-mail address",
    "courriel": "an e-mail address",
    "adresse": "an address",
    "address": "an address",
    "nir": "a social security number",
    "secu": "a social security number",
    "ssn": "a social security number",
    "nss": "a social security number",
    "insee": "a social security number",
    "naissance": "a birth date",
    "ddn": "a birth date",
    "dob": "a birth date",
    "birth": "a birth date",
    "birthdate": "a birth date",
}
VALUE_PATTERNS = {
    "a phone number": r"^(\+33 ?|0)[1-9]([ .-]?\d{2}){4}$",
    # NIR: sex, year, month, department (2A/2B in Corsica), commune, order, [key]
    "a social security number": (
        r"^[1-478][ .-]?\d{2}[ .-]?\d{2}[ .-]?(\d{2}|2[ABab])[ .-]?\d{3}[ .-]?\d{3}([ .-]?\d{2})?$"
    ),
    "an e-mail address": r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$",
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
}
AMBIGUOUS = {"nom", "name"}
SAMPLE = 200  # values looked at per column
SHARE = 0.5  # a column is an identifier when this share of its sampled values match


def _tokens(column: str) -> list[str]:
    """Words of a column name: 'DateNaissance' and 'date_naissance' both give 'naissance'."""
    plain = unicodedata.normalize("NFKD", column).encode("ascii", "ignore").decode()
    plain = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", plain).lower()  # split camelCase
    return [t for t in re.split(r"[^a-z0-9]+", plain) if t]


def direct_identifier_columns(raw: pl.DataFrame) -> dict[str, str]:
    """Columns of a text frame that look like direct identifiers, with what they look like."""
    found = {}
    for column in raw.columns:
        tokens = _tokens(column)
        person = not NOT_A_PERSON.intersection(tokens)
        kind = next(
            (NAME_TOKENS[t] for t in tokens if t in NAME_TOKENS and (person or t not in AMBIGUOUS)),
            None,
        )
        if kind:
            found[column] = kind
    # by position, never pl.col(name): a header may read '*' or '^.*$' (polars patterns)
    text = [i for i, c in enumerate(raw.columns) if raw.dtypes[i] == pl.String and c not in found]
    if not text or raw.height == 0:
        return found
    sample = raw.head(SAMPLE).select(pl.nth(text).str.strip_chars().replace("", None))
    pairs = [(j, kind) for j in range(len(text)) for kind in VALUE_PATTERNS]
    shares = sample.select(  # one pass over the sample for every column and pattern
        pl.nth(j).str.contains(VALUE_PATTERNS[kind]).mean().alias(str(n))
        for n, (j, kind) in enumerate(pairs)
    ).row(0)
    for (j, kind), share in zip(pairs, shares, strict=True):
        column = raw.columns[text[j]]
        if share is not None and share >= SHARE and column not in found:
            found[column] = kind
    return found
