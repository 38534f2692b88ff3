"""Onboarding a centre by configuration alone: its exports profiled, a mapping drafted.

The engine behind ``cohortflow profile FILE... [--centre ID]``, a module per step:

* ``sniff``: a CSV export's encoding, delimiter and decimal mark; the file read as text;
* ``shapes``: the shapes of numbers and dates the profiler tells apart;
* ``columns``: each column profiled (missing markers, type, dates, range, values,
  direct identifiers);
* ``files``: one file profiled, or why it could not be;
* ``vocabulary`` (and ``vocabulary.yaml``): the names and codes centres use, as data;
* ``matching``: a file's form, its columns matched to the canonical ones;
* ``codes``: what matched columns' values need (date formats, codes, months);
* ``draft``: the mapping file drafted as YAML with TODO comments;
* ``report``: the plain-text profile a data manager reads.

Callers use the two names below. Direct identifiers are flagged, never mapped, and their
values are never shown.
"""

from transforms.onboarding.draft import draft_mapping_yaml
from transforms.onboarding.report import profile_report

__all__ = ["draft_mapping_yaml", "profile_report"]
