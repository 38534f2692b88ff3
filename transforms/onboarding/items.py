"""Questionnaire items recognised by their column names, in the ways centres number them.

HADS: ``A1``..``A7`` / ``D1``..``D7`` (or ``hads_anx_1``, ``hads_dep_1``), or numbered 1-14 in
questionnaire order (odd = anxiety): ``Q1``, ``item_1``, ``HADS01``, or the question itself
after its number (``1. Je me sens tendu(e)``). SF-12: numbered 1-12 in questionnaire order,
or by the questionnaire's own numbering ``1, 2a, 2b, 3a, 3b, 4a, 4b, 5, 6a, 6b, 6c, 7``
(``q2a_moderate_activities``), which a file uses when one of its names has a letter.
Items known only by their number are assumed in the questionnaire's order, and the draft
says so.
"""

from __future__ import annotations

import re

from schemas.forms import SF12_RANGES
from transforms.onboarding.vocabulary import name_key, tokens

SF12_ITEMS = list(SF12_RANGES)  # in questionnaire order
SF12_QUESTIONS = dict(
    zip(
        ["1", "2a", "2b", "3a", "3b", "4a", "4b", "5", "6a", "6b", "6c", "7"],
        SF12_ITEMS,
        strict=True,
    )
)
_HADS_ITEM = re.compile(r"^(?:hads_?)?(a|anx|anxiety|d|dep|depression)_?([1-7])$")
_HADS_NUMBER = re.compile(r"^(?:hads_?(?:q|item)?|q|item|question)_?(\d{1,2})$")
_SF12_NUMBER = re.compile(r"^(?:sf_?12_?(?:q|item)?|q|item|question)_?(\d{1,2})$")
_SF12_LETTERED = re.compile(r"^(?:sf_?12_?)?q_?(\d)([a-c])?(?:_|$)")  # q2a_moderate_activities
_QUESTION = re.compile(
    r"^\s*(?P<hads>hads\s*)?(?:q|item|question)?\s*(\d{1,2})\s*[.)\-:]\s+\w", re.I
)  # '3. Je me sens ...', 'HADS 3 - Je me sens ...'


def lettered(names: list[str]) -> bool:
    """Whether a file numbers SF-12 items as the questionnaire does (2a, 2b ...)."""
    return any(_letter(name) for name in names)


def _letter(name: str) -> str | None:
    match = _SF12_LETTERED.match("_".join(tokens(name)))
    return match[2] if match else None


def numbered_item(form: str, name: str, *, sf12_lettered: bool = False) -> str | None:
    """The HADS or SF-12 item a column name numbers, or None."""
    words = "_".join(tokens(name))
    number = _number(form, name, words)
    if form == "hads":
        item = _HADS_ITEM.match(words)
        if item:
            return f"hads_{item[1][0]}{item[2]}"
        if number is not None and 1 <= number <= 14:
            return f"hads_a{(number + 1) // 2}" if number % 2 else f"hads_d{number // 2}"
    if form == "sf12" and sf12_lettered:
        match = _SF12_LETTERED.match(words)
        return SF12_QUESTIONS.get(f"{match[1]}{match[2] or ''}") if match else None
    if form == "sf12" and number is not None and 1 <= number <= len(SF12_ITEMS):
        return SF12_ITEMS[number - 1]
    return None


def _number(form: str, name: str, words: str) -> int | None:
    """The item number of 'Q3', 'item_3', 'HADS03' or '3. <the question>'."""
    pattern = _HADS_NUMBER if form == "hads" else _SF12_NUMBER
    question = _QUESTION.match(name)
    if question and question["hads"] and form != "hads":
        question = None
    if pattern.match(words):
        return int(pattern.match(words)[1])  # type: ignore[index]
    return int(question[2]) if question else None


def order_note(form: str, name: str, canonical: str) -> str | None:
    """The TODO-check for items known by their number only, or None."""
    words = "_".join(tokens(name))
    if form not in ("hads", "sf12") or _number(form, name, words) is None:
        return None
    if name_key(name) == name_key(canonical) or _HADS_ITEM.match(words):
        return None
    note = "TODO-check: numbered items are assumed in the questionnaire's order"
    if form == "hads":
        note += " (HADS: odd items anxiety, even items depression)"
    return note
