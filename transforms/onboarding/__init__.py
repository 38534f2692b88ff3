"""Onboarding a centre by configuration alone: its exports profiled, a mapping drafted.

The engine behind ``cohortflow profile FILE... [--centre ID]``, a module per step:

* ``sniff``: a CSV export's encoding, delimiter and decimal mark; the file read as text;
* ``shapes``: the shapes of numbers, dates (month names in English and French, date-times)
  and times the profiler tells apart;
* ``columns``: each column profiled (missing markers, type, dates, range, values,
  direct identifiers; of a birth date, its format only);
* ``files``: one file profiled (each sheet of a workbook, parquet files, by the staging
  reader's own functions), or why it could not be; a centre's locale and day/month
  order shared across its files;
* ``vocabulary`` (and ``vocabulary.yaml``): the names, codes and questionnaire answers
  centres use, as data;
* ``matching`` and ``items``: a form's columns matched to the canonical ones (names,
  synonyms, a word of a name, numbered questionnaire items);
* ``codes``: what matched columns' values need (date formats, Excel day numbers, codes,
  months);
* ``units``, ``answers``, ``derived``: what the mapping computes rather than copies (a
  unit per row, value maps for answers in words, constants, ranks, ages, joined ids),
  written into a ``suggestion.FormDraft``;
* ``forms``: every form one file holds, each column read by one form, with ``rows``: what
  the rows say (HADS items numbered by subscale when the file's totals show it; a visit
  grid's rows with nothing recorded);
* ``draft`` and ``render``: the mapping file drafted as YAML with TODO comments;
* ``report``: the plain-text profile a data manager reads.

Callers use the two names below. Direct identifiers are flagged, never mapped, and their
values are never shown.
"""

from transforms.onboarding.draft import draft_mapping_yaml
from transforms.onboarding.report import profile_report

__all__ = ["draft_mapping_yaml", "profile_report"]
