"""Questionnaire items answered in words, drafted as value maps.

A centre may export HADS or SF-12 answers as their wording (``Most of the time``, ``Pas du
tout``) instead of scores. Each item column's words are scored from the vocabulary's
wordings of that item (``vocabulary.yaml``, ``answers``), item by item: HADS items are not
scored alike ('Not at all' is 0 for A1 and 3 for the reverse-worded D2), and the item's
standard answers the file has not used yet are added, for the next exports. Columns whose
words and scores are the same share one named map; a word the vocabulary does not know
is drafted with no score and a TODO, so that the mapping does not load until a person
scores it. Answers written as ``2 - Often`` are scored by their number, for a person to
check.
"""

from __future__ import annotations

import re

from transforms.onboarding.columns import ColumnProfile
from transforms.onboarding.suggestion import FormDraft
from transforms.onboarding.vocabulary import (
    ANSWER_FORMS,
    ANSWER_INDEX,
    ANSWER_RANGES,
    name_key,
    standard_answers,
)

MAP_NAME_CHARACTERS = 30
_NUMBERED = re.compile(r"^\s*(\d{1,2})\s*(?:[-:=.)]\s*\S.*)?$")  # '2', '2 - Often', '2) Often'

Scored = tuple[tuple[str, int | None], ...]  # (word, score) in a map's order


def draft_value_maps(draft: FormDraft, by_name: dict[str, ColumnProfile]) -> set[str]:
    """Value maps for the form's item columns answered in words; returns those items."""
    if draft.form not in ANSWER_FORMS:
        return set()
    worded = {
        canonical: by_name[source]
        for canonical, source in draft.columns.items()
        if canonical in ANSWER_RANGES and by_name[source].kind == "text"
    }
    groups: dict[Scored, list[str]] = {}
    for canonical, profile in worded.items():
        if not profile.value_counts:
            draft.todo.append(
                f"TODO: {canonical}: {profile.n_distinct} different answers in "
                f"{profile.name!r}, too many to list: write its codes by hand"
            )
            continue
        groups.setdefault(_scored(canonical, profile), []).append(canonical)
    for scored, items in groups.items():
        name = _map_name(draft, scored)
        draft.value_maps[name] = dict(scored)
        draft.codes |= dict.fromkeys(items, name)
        seen = {word for item in items for word, _ in worded[item].value_counts}
        _notes(draft, name, scored, items, seen)
    return set(worded)


def _scored(item: str, profile: ColumnProfile) -> Scored:
    """The column's words with their scores for ``item`` (None: unknown), and the item's
    standard answers the file has not used yet (a later export will), lowest first."""
    low, high = ANSWER_RANGES[item]
    words = [word for word, _ in profile.value_counts]
    scores: dict[str, int | None] = {}
    for word in words:
        score = ANSWER_INDEX.get(item, {}).get(name_key(word))
        number = _NUMBERED.match(word)
        if score is None and number and low <= int(number[1]) <= high:
            score = int(number[1])
        scores[word] = score
    for score, wording in standard_answers(item, words).items():
        if score not in scores.values():
            scores[wording] = score
    return tuple(sorted(scores.items(), key=lambda ws: (ws[1] is None, ws[1] or 0, ws[0])))


def _map_name(draft: FormDraft, scored: Scored) -> str:
    """'hads_most_of_the_time': the form and the answer scored highest (or the first)."""
    known = [word for word, score in scored if score is not None]
    word = known[-1] if known else scored[0][0]
    slug = "_".join(re.findall(r"[a-z0-9]+", name_key_spaced(word)))[:MAP_NAME_CHARACTERS]
    base = f"{draft.form}_{slug.strip('_') or 'answers'}"
    name, n = base, 1
    while name in draft.value_maps:
        n += 1
        name = f"{base}_{n}"
    return name


def name_key_spaced(text: str) -> str:
    """Plain lower-case words of a wording, spaces kept: 'Pas du tout' -> 'pas du tout'."""
    return " ".join(name_key(word) for word in text.split())


def _notes(draft: FormDraft, name: str, scored: Scored, items: list[str], seen: set[str]) -> None:
    """What a person must check (scores from the vocabulary) or decide (unknown words)."""
    unknown = [word for word, score in scored if score is None]
    low, high = ANSWER_RANGES[items[0]]
    where = ", ".join(items)
    index = ANSWER_INDEX.get(items[0], {})
    by_number = [w for w, s in scored if s is not None and name_key(w) not in index]
    if unknown:
        note = f"TODO: {where}: score the answers the vocabulary does not know ({low}-{high})"
    else:
        how = "by the number each answer starts with" if by_number else "as the standard wording"
        note = f"TODO-check: {where}: scored {how} ({low}-{high})"
    added = [word for word, _ in scored if word not in seen]
    if added:
        note += f"; not in the file yet, added from the standard: {', '.join(map(repr, added))}"
    draft.notes[f"value_maps.{name}"] = note
    for word in unknown:
        draft.notes[f"value_maps.{name}.{word}"] = f"TODO: its score ({low}-{high})"
