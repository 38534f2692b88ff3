"""What can be pulled: the harmonised tables and the analysis views, with keys and descriptions.

A pull, its data card and the listing all name datasets the same way; this module is the
one place that knows which names are tables (one per form of ``schemas/forms.py``) and
which are views (built by ``transforms/derived/views.py``), and in which order their rows
are written (the natural key: a total order, so the same state gives the same bytes).
"""

from __future__ import annotations

import polars as pl

from schemas.forms import FORMS, VIEW_KEYS
from transforms.derived import views

TABLES = {form.table: form for form in FORMS.values()}
PULLABLE = (*TABLES, *views.VIEW_NAMES)


def natural_key(name: str) -> tuple[str, ...]:
    """The columns that identify a row of a table or view (its sort order in a pull)."""
    return TABLES[name].key if name in TABLES else VIEW_KEYS[name]


def dataset(tables: dict[str, pl.DataFrame], name: str) -> pl.DataFrame:
    """A table or view of one state (views derived from that state's tables), in key order."""
    frame = tables[name] if name in TABLES else views.build_views(tables)[name]
    return frame.sort(natural_key(name), maintain_order=True)


def about(name: str) -> str:
    """One sentence on what a table or view holds (the schema's docstring for a table)."""
    if name in TABLES:
        return (TABLES[name].schema.__doc__ or "").strip()
    return views.VIEW_ABOUT[name]
