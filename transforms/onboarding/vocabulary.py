"""The profiler's vocabulary: how centres name the canonical columns and codes.

The words are data, in ``vocabulary.yaml`` beside this module, read once at import and
type-checked (a YAML ``no`` or ``-99`` left unquoted is refused): teaching the profiler a
centre's spelling needs no code. This module also says how names compare (case, accents
and punctuation ignored) and builds the lookups the matching uses from the words.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, StrictStr

from schemas.forms import FORMS

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")


class Vocabulary(BaseModel):
    """The words of a vocabulary file (its comments say what each section is for)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    missing_markers: tuple[StrictStr, ...]  # in the order a draft lists them
    columns: dict[StrictStr, tuple[StrictStr, ...]]  # canonical column -> source names
    codes: dict[StrictStr, dict[StrictStr, tuple[StrictStr, ...]]]  # column -> code -> values
    form_name_hints: dict[StrictStr, frozenset[StrictStr]]  # form -> words of file names
    baseline_words: frozenset[StrictStr]  # words of an event name meaning month 0
    unit_words: dict[StrictStr, StrictStr]  # a header's unit, plain -> the mapping's unit


def load_vocabulary(path: Path = VOCABULARY_FILE) -> Vocabulary:
    """Read and type-check a vocabulary file."""
    return Vocabulary.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def plain(text: str) -> str:
    """Lower case, accents stripped, 'µg' as 'ug'."""
    text = text.replace("µ", "u").replace("μ", "u")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def tokens(text: str) -> list[str]:
    """The plain words of a name: 'Poids (kg)' -> ['poids', 'kg']."""
    return [t for t in re.split(r"[^a-z0-9]+", plain(text)) if t]


def name_key(text: str) -> str:
    """Compare names accent-, case- and punctuation-insensitively: 'N° patient' -> 'npatient'."""
    return "".join(tokens(text))


def column_index(vocabulary: Vocabulary) -> dict[str, dict[str, str]]:
    """Per form: normalised source name -> canonical column (the form's own names first)."""
    index = {}
    for form_name, form in FORMS.items():
        columns = form.columns()
        keys = {name_key(c): c for c in columns}
        for canonical, names in vocabulary.columns.items():
            if canonical in columns:
                keys |= {name_key(n): canonical for n in names if name_key(n) not in keys}
        index[form_name] = keys
    return index


def code_index(vocabulary: Vocabulary) -> dict[str, dict[str, str]]:
    """Per canonical coded column: normalised source value -> canonical code."""
    return {
        column: {name_key(value): code for code, values in codes.items() for value in values}
        for column, codes in vocabulary.codes.items()
    }


VOCABULARY = load_vocabulary()
MISSING_MARKERS = VOCABULARY.missing_markers
FORM_NAME_HINTS = VOCABULARY.form_name_hints
BASELINE_WORDS = VOCABULARY.baseline_words
UNIT_WORDS = VOCABULARY.unit_words
COLUMN_INDEX = column_index(VOCABULARY)
CODE_INDEX = code_index(VOCABULARY)
