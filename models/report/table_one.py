"""Table 1: baseline characteristics, overall and by baseline depression, with N and missing.

Built by ``tableone`` (the library epidemiologists use for it) from ``analysis_patients``:
mean (SD) for roughly normal measures, median [Q1, Q3] for doses and counts, n (%) for
categories, the count of missing values per row, and no between-group p-values (a
baseline table describes; it does not test). Rows are labelled from the data dictionary
(label, unit). The published figure sits beside each row where the paper gives one.
"""

from __future__ import annotations

import html
import warnings

import polars as pl

from models.report import paper
from transforms.delivery.columns import column_docs

CONTINUOUS = [
    "age",
    "weight_kg",
    "nprs_baseline",
    "hads_a_baseline",
    "hads_d_baseline",
    "pcs12_baseline",
    "mcs12_baseline",
]
SKEWED = ["total_dose_mg", "n_administrations"]
CATEGORICAL = ["sex", "pain_diagnosis"]
GROUP = "baseline depression"
GROUPS = {False: "HADS-D <= 7", True: "HADS-D >= 8"}


def table_one(patients: pl.DataFrame) -> str:
    """Table 1 as HTML (the columns absent from ``patients`` are left out)."""
    from tableone import TableOne  # deferred: pandas-heavy, imported only for the report

    columns = [c for c in [*CONTINUOUS, *SKEWED, *CATEGORICAL] if c in patients.columns]
    docs = column_docs("analysis_patients")
    labels = {name: docs[name].variable_label() if name in docs else name for name in columns}
    frame = patients.select(*columns, pl.col("depressed").replace_strict(GROUPS, default=None))
    with warnings.catch_warnings():
        # tableone 0.9.6 sets a row by a partial MultiIndex key, which pandas 3 deprecates
        warnings.filterwarnings("ignore", "Setting a new row", DeprecationWarning)
        table = TableOne(
            frame.rename({**labels, "depressed": GROUP}).to_pandas(),
            columns=[labels[c] for c in columns],
            categorical=[labels[c] for c in CATEGORICAL if c in columns],
            nonnormal=[labels[c] for c in SKEWED if c in columns],
            groupby=GROUP,
            missing=True,
            overall=True,
            decimals={labels[c]: 1 for c in ("age", "weight_kg") if c in columns},
        )
    unscored = patients["depressed"].null_count()
    return _html(table.tableone, _published_by_label(labels), unscored)


def _published_by_label(labels: dict[str, str]) -> dict[tuple[str, str], str]:
    """The paper's Table 1 figures keyed as tableone labels its rows: (variable, level)."""
    keyed = {}
    for key, figure in paper.TABLE_ONE.items():
        name, _, level = key.partition("=")
        variable = "n" if name == "n" else labels.get(name, name)
        keyed[(variable, level)] = figure.cite()
    return keyed


def _html(table, published: dict[tuple[str, str], str], unscored: int) -> str:
    """tableone's frame (rows: variable and level) as HTML, with a published column."""
    groups = [str(c[1]) for c in table.columns]
    head = "<th>characteristic</th><th></th>" + "".join(
        f"<th>{html.escape(g)}</th>" for g in groups
    )
    body = []
    for (variable, level), values in table.iterrows():
        name = variable.split(", mean")[0].split(", median")[0].split(", n (%)")[0]
        figure = published.get((name, str(level)), "")
        cells = "".join(f'<td class="num">{html.escape(str(v))}</td>' for v in values)
        body.append(
            f"<tr><td>{html.escape(variable)}</td><td>{html.escape(str(level))}</td>{cells}"
            f'<td class="paper">{html.escape(figure)}</td></tr>'
        )
    note = (
        f'<p class="note">Overall includes {unscored} patients whose baseline HADS-D is not '
        "scored (in neither group).</p>"
        if unscored
        else ""
    )
    return (
        f'<table class="table-one"><thead><tr>{head}<th class="paper">published</th></tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table>{note}"
    )
