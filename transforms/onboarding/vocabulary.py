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
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, model_validator

from schemas.forms import FORMS, HADS_ITEMS, SF12_RANGES

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")
ANSWER_FORMS = ("hads", "sf12")  # questionnaires whose answers may be written as words
# item -> (lowest, highest) score the form stores
ANSWER_RANGES = dict.fromkeys(HADS_ITEMS, (0, 3)) | {
    item: (1, top) for item, top in SF12_RANGES.items()
}


class Vocabulary(BaseModel):
    """The words of a vocabulary file (its comments say what each section is for)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    missing_markers: tuple[StrictStr, ...]  # in the order a draft lists them
    columns: dict[StrictStr, tuple[StrictStr, ...]]  # canonical column -> source names
    codes: dict[StrictStr, dict[StrictStr, tuple[StrictStr, ...]]]  # column -> code -> values
    form_name_hints: dict[StrictStr, frozenset[StrictStr]]  # form -> words of file names
    baseline_words: frozenset[StrictStr]  # words of an event name meaning month 0
    unit_words: dict[StrictStr, StrictStr]  # a header's unit, plain -> the mapping's unit
    sex_flags: dict[Literal["M", "F"], tuple[StrictStr, ...]]  # a yes/no column's names
    date_words: frozenset[StrictStr]  # words that say a column is a date
    date_hints: dict[StrictStr, frozenset[StrictStr]]  # date column -> words of its event
    # questionnaire item -> language -> score -> wordings
    answers: dict[StrictStr, dict[StrictStr, dict[StrictInt, tuple[StrictStr, ...]]]]
    split_patient_id: dict[Literal["site", "number"], tuple[StrictStr, ...]]
    # coded column -> code -> starts of classification codes (ICD-10, ATC)
    code_prefixes: dict[StrictStr, dict[StrictStr, tuple[StrictStr, ...]]] = {}
    unit_spellings: dict[StrictStr, StrictStr] = {}  # a row's unit, plain -> unit or 'not a dose'
    special_missing_letters: tuple[StrictStr, ...] = ()  # SAS special missing values, printed

    @model_validator(mode="after")
    def _answers_are_scores(self) -> Vocabulary:
        """Every answer list names a questionnaire item and scores in the item's range."""
        for item, languages in self.answers.items():
            if item not in ANSWER_RANGES:
                raise ValueError(f"answers.{item}: not an item of {', '.join(ANSWER_FORMS)}")
            low, high = ANSWER_RANGES[item]
            for language, scores in languages.items():
                wrong = sorted(s for s in scores if not low <= s <= high)
                if wrong:
                    raise ValueError(
                        f"answers.{item}.{language}: score(s) {wrong} outside {low}-{high}"
                    )
        return self


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


def answer_index(vocabulary: Vocabulary) -> dict[str, dict[str, int]]:
    """Per questionnaire item: normalised answer wording (any language) -> its score."""
    return {
        item: {
            name_key(word): score
            for scores in languages.values()
            for score, words in scores.items()
            for word in words
        }
        for item, languages in vocabulary.answers.items()
    }


def standard_answers(item: str, words: list[str]) -> dict[int, str]:
    """The item's standard answers (score -> first wording) in the language of ``words``
    (the one that knows most of them; none when it knows none)."""
    keys = {name_key(w) for w in words}
    languages = VOCABULARY.answers.get(item, {}).values()
    known = [(sum(name_key(w) in keys for ws in s.values() for w in ws), s) for s in languages]
    best = max(known, key=lambda pair: pair[0], default=(0, {}))
    return {score: wordings[0] for score, wordings in best[1].items()} if best[0] else {}


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
DATE_WORDS = VOCABULARY.date_words
SEX_FLAGS = {name_key(n): sex for sex, names in VOCABULARY.sex_flags.items() for n in names}
DATE_HINTS = VOCABULARY.date_hints
COLUMN_INDEX = column_index(VOCABULARY)
CODE_INDEX = code_index(VOCABULARY)
ANSWER_INDEX = answer_index(VOCABULARY)
CODE_PREFIXES = {
    column: sorted(
        ((name_key(prefix), code) for code, prefixes in codes.items() for prefix in prefixes),
        key=lambda pair: -len(pair[0]),
    )
    for column, codes in VOCABULARY.code_prefixes.items()
}
UNIT_SPELLINGS = {name_key(k): v for k, v in VOCABULARY.unit_spellings.items()}
NOT_A_DOSE = "not a dose"
SPECIAL_MISSING = frozenset(VOCABULARY.special_missing_letters)
SPLIT_ID_NAMES = {
    part: frozenset(name_key(n) for n in names)
    for part, names in VOCABULARY.split_patient_id.items()
}
