"""The morning data-quality report: one self-contained HTML page per run, and its markdown.

The page holds the per-centre scorecard, the breaches (observed vs threshold), what
changed since the last run, the centre x month completeness heatmap of monthly calls (a
coloured HTML table), the trend of checks passed over the last runs, the quarantine's
reasons per centre, the queries files and the check catalogue. Plots are matplotlib PNGs
embedded in base64, so the page can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from schemas import expectations as ex

if TYPE_CHECKING:
    from transforms.quality.run import Scope

PASS_GOOD, PASS_FAIR = 95.0, 80.0  # scorecard colours: green at or above, amber, then red
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:3px 8px;font-size:13px;text-align:left}th{background:#f3f3f3}
td.num{text-align:right}.good{background:#c8e6c9}.fair{background:#ffe0b2}
.bad{background:#ffcdd2}.na{color:#999}h2{margin-top:1.6em}img{max-width:100%}
"""


def write_report(path: Path, **parts) -> Path:
    """Write the run's HTML report to ``path`` (whole: written beside, then renamed)."""
    write_page(path, render_report(path, **parts))
    return path


def write_page(path: Path, page: str) -> None:
    """Write a page under a temporary name and rename it: never half a page on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)


def render_report(
    path: Path,
    *,
    run_id: str,
    results: pl.DataFrame,
    scorecard: pl.DataFrame,
    completeness: pl.DataFrame,
    quarantine: pl.DataFrame,
    trend: pl.DataFrame,
    changes: pl.DataFrame,
    queries: dict[str, Path] | None = None,
    actions: pl.DataFrame | None = None,
    breach_list: pl.DataFrame | None = None,
    retention: pl.DataFrame | None = None,
    scope: Scope | None = None,
) -> str:
    """The run's HTML report as it will read at ``path`` (its links are relative to it);
    ``scope``: the centres checked again tonight, said under the title.

    GX's own Data Docs are not linked: offline they are unstyled, and their whole-table
    validations read "Succeeded" where the per-centre checks of the same expectations
    fail. Their per-centre results are the checks below.
    """
    failed = breach_list if breach_list is not None else results.filter(status="failed")
    sections = [
        f"<h1>Data quality, run {html.escape(run_id)}</h1>",
        f"<p>{results['check_id'].n_unique()} checks x {results['centre_id'].n_unique()} "
        f"centres; {failed.height} breaches (cohort included).</p>",
        _scope_note(scope),
        "<h2>Centres needing action, worst first</h2>",
        _actions_table(actions),
        "<h2>Breaches: observed vs threshold</h2>",
        _breaches_table(failed),
        "<h2>Scorecard: percent of applicable checks passed (coloured by rows affected "
        "too), worst centre first</h2>",
        _scorecard_table(scorecard),
        "<h2>Changed since the previous run</h2>",
        _table(changes) if changes.height else "<p>No status changed (or first run).</p>",
        "<h2>Retention: patients due at month 3, 6 and 12 with a pain score that month</h2>",
        _retention_table(retention),
        _img(retention_plot(completeness), "retention curve"),
        "<h2>Monthly calls received / due, per centre and follow-up month</h2>",
        completeness_heatmap(completeness),
        "<h2>Trend: percent of centre results passed, per category</h2>",
        _img(trend_plot(trend), "trend of checks passed"),
        "<h2>Quarantined rows at ingestion, per centre</h2>",
        _quarantine_table(quarantine),
        "<h2>Queries to send back</h2>",
        _queries_list(queries or {}, path),
        "<h2>Check catalogue</h2>",
        _catalogue_table(),
    ]
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Data quality {run_id}'
        f"</title><style>{STYLE}{HEATMAP_STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )


SCOPE_NAMES = 20  # centres named in the note on those checked again; the others counted


def _scope_note(scope: Scope | None) -> str:
    """Which results are tonight's: every centre's, or those of the centres checked again
    (the others' are the previous run's, their data unchanged since)."""
    if scope is None:
        return ""
    if scope.centres is None:
        return f"<p>Every centre checked tonight ({html.escape(scope.why)}).</p>"
    shown = ", ".join(scope.centres[:SCOPE_NAMES]) or "none"
    more = len(scope.centres) - SCOPE_NAMES
    names = f"{shown} and {more} more" if more > 0 else shown
    previous = html.escape(scope.previous or "")
    return (
        f"<p>Checked again tonight: {html.escape(names)} ({html.escape(scope.why)}: the "
        "centres whose rows changed, with a patient in the first year, or not checked "
        f"before). The other centres' results and queries are those of run {previous}: "
        "their data did not change since. Every centre is checked again at least weekly, "
        "or now with <code>cohortflow quality --full</code>; the checks comparing centres "
        "and the export dates are computed for every centre every run.</p>"
    )


def _relative(target: Path, page: Path) -> str:
    try:
        return target.relative_to(page.parent).as_posix()
    except ValueError:
        return target.as_uri() if target.is_absolute() else target.as_posix()


def _cell(value) -> str:
    if value is None:
        return '<td class="na">-</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.1f}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(f"<tr>{''.join(_cell(v) for v in row)}</tr>" for row in frame.iter_rows())
    return f"<table><tr>{head}</tr>{body}</table>"


def _pass_cell(value: float | None, colour_by: float | None = None) -> str:
    if value is None:
        return '<td class="na">n/a</td>'
    judged = value if colour_by is None else colour_by
    kind = "good" if judged >= PASS_GOOD else "fair" if judged >= PASS_FAIR else "bad"
    return f'<td class="num {kind}">{value:.0f}%</td>'


def _scorecard_table(card: pl.DataFrame) -> str:
    """Checks passed per category, coloured by the worse of checks passed and rows clean
    (a centre with a third of its rows quarantined is not green), worst centre first."""
    columns = [*ex.CATEGORIES, "overall"]
    names = ["centre", *columns, "failed checks", "rows quarantined"]
    head = "".join(f"<th>{c}</th>" for c in names)
    rows = []
    for r in card.iter_rows(named=True):
        quarantined = r.get("rows_quarantined_pct")
        clean = None if quarantined is None else 100 - quarantined
        cells = "".join(
            _pass_cell(r[c], _worse(r[c], clean) if c in ("conformance", "overall") else r[c])
            for c in columns
        )
        share = "" if quarantined is None else f"{quarantined:.1f}%"
        rows.append(f"<tr>{_cell(r['centre_id'])}{cells}{_cell(r['failed'])}{_cell(share)}</tr>")
    return f'<table id="scorecard"><tr>{head}</tr>{"".join(rows)}</table>'


def _worse(passed: float | None, clean: float | None) -> float | None:
    if passed is None or clean is None:
        return passed
    return min(passed, clean)


def _threshold_text(pct: float | None, count: int | None) -> str:
    parts = ([f"> {pct:g}%"] if pct is not None else []) + (
        [f"> {count}"] if count is not None else []
    )
    return " or ".join(parts)


def _actions_table(actions: pl.DataFrame | None) -> str:
    """Rows to fix and breaches per centre, with the oldest open query's date."""
    if actions is None or actions.is_empty():
        return "<p>None: no open query and no breach.</p>"
    return _table(
        actions.select(
            centre="centre_id",
            rows_to_fix="open_to_fix",
            waiting_for_another_fix="open_waiting",
            new_tonight="new_tonight",
            fixed_tonight="closed_tonight",
            escalated="escalated",
            oldest_open_query="oldest_open",
            breaches_new="breaches_new",
            breaches_persisting="breaches_persisting",
            breaches_resolved="breaches_resolved",
        )
    )


def _retention_table(retention: pl.DataFrame | None) -> str:
    if retention is None or retention.is_empty():
        return "<p>No patient is due at month 3 yet.</p>"
    return _table(retention)


def _breaches_table(failed: pl.DataFrame) -> str:
    if failed.is_empty():
        return "<p>None: every applicable check is within its thresholds.</p>"
    if "since" not in failed.columns:
        failed = failed.with_columns(since=pl.lit(""))
    rows = failed.select(
        "centre_id",
        "check_id",
        "category",
        "since",
        observed=pl.format("{} of {} {}", "n_violating", "n_checked", "unit"),
        pct=pl.col("pct_violating").round(1),
        threshold=pl.struct("threshold_pct", "threshold_count").map_elements(
            lambda t: _threshold_text(t["threshold_pct"], t["threshold_count"]),
            return_dtype=pl.String,
        ),
        note="observed",
    )
    return _table(rows)


def _quarantine_table(quarantine: pl.DataFrame) -> str:
    if quarantine.is_empty():
        return "<p>Nothing quarantined.</p>"
    reasons = quarantine.with_columns(
        reason=pl.format("{}.{} {} ({})", "form", "column_name", "rule", "n_rows")
    )
    per_centre = reasons.group_by("centre_id", maintain_order=True).agg(
        rows=pl.col("n_rows").sum(), main_reasons=pl.col("reason").head(3).str.join("; ")
    )
    return _table(per_centre.sort("rows", descending=True))


def _queries_list(queries: dict[str, Path], page: Path) -> str:
    if not queries:
        return "<p>No queries.</p>"
    items = "".join(
        f'<li><a href="{html.escape(_relative(p, page))}">{html.escape(c)}</a></li>'
        for c, p in sorted(queries.items())
    )
    return f"<p>One CSV per centre (patient pseudonyms only):</p><ul>{items}</ul>"


def _catalogue_table() -> str:
    rows = pl.DataFrame(
        [
            (
                c.check_id,
                c.category,
                c.subcategory,
                c.table,
                c.column,
                c.description,
                _threshold_text(c.threshold.pct, c.threshold.count),
                c.engine,
            )
            for c in ex.CHECKS
        ],
        schema=["check", "category", "kind", "table", "column", "what", "fails when", "engine"],
        orient="row",
    )
    return _table(rows)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


HEATMAP_STYLE = """
table.heat td{padding:1px 4px;font-size:11px;text-align:right;min-width:1.6em}
table.heat td.none{background:#dddddd}table.heat th{font-size:11px;padding:1px 4px}
"""


def completeness_heatmap(completeness: pl.DataFrame) -> str:
    """Centres (rows) x follow-up months as an HTML table: each cell coloured by the
    share of expected calls received (red 50 % or less, green 100 %), showing the number
    missing; grey: no call expected. A table, not an image: 500 centres drew a 16,000-pixel
    PNG in 5-9 s on every night; the table takes milliseconds and its numbers can be read
    and searched."""
    palette = _palette()
    cells = completeness.with_columns(
        level=((pl.col("received") / pl.col("expected")).clip(0.5, 1.0) * 200 - 100).round(),
        missing=pl.col("expected") - pl.col("received"),
    )
    by_cell = {
        (centre, month): _heat_cell(expected, level, missing, palette)
        for centre, month, expected, level, missing in cells.select(
            "centre_id", "month", "expected", "level", "missing"
        ).iter_rows()
    }
    empty = '<td class="none"></td>'
    rows = [
        f"<tr><th>{html.escape(centre)}</th>"
        + "".join(by_cell.get((centre, month), empty) for month in range(13))
        + "</tr>"
        for centre in sorted(completeness["centre_id"].unique().to_list())
    ]
    head = "".join(f"<th>{m}</th>" for m in range(13))
    return (
        f'<table class="heat" aria-label="completeness heatmap"><tr><th>centre, month</th>'
        f"{head}</tr>{''.join(rows)}</table><p>Cell: calls missing; colour: received / "
        "expected, red at 50 % or less, green at 100 %; grey: no call expected.</p>"
    )


def _palette() -> list[str]:
    """matplotlib's RdYlGn in 101 steps: index 0 is 50 % received or less, 100 is all."""
    from matplotlib import colormaps  # colours only: pyplot is not imported
    from matplotlib.colors import to_hex

    scale = colormaps["RdYlGn"]
    return [to_hex(scale(step / 100)) for step in range(101)]


def _heat_cell(expected: int, level: float | None, missing: int, palette: list[str]) -> str:
    """One centre-month: its colour by the share received, the calls missing in it."""
    if not expected or level is None:
        return '<td class="none"></td>'
    return f'<td style="background:{palette[int(level)]}">{missing or ""}</td>'


def trend_plot(trend: pl.DataFrame) -> bytes:
    """Per run and category: percent of the centres' applicable results that passed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = (
        trend.filter(pl.col("centre_id") != "ALL")
        .group_by("run_seq", "category")
        .agg(pl.col("n_passed").sum(), pl.col("n_applicable").sum())
        .with_columns(pct=100 * pl.col("n_passed") / pl.col("n_applicable"))
        .sort("run_seq")
    )
    fig, ax = plt.subplots(figsize=(7, 3))
    for category in ex.CATEGORIES:
        part = rates.filter(category=category)
        if part.height:
            ax.plot(part["run_seq"], part["pct"], marker="o", label=category)
    ax.set_ylim(0, 105)
    ax.set_xlabel("quality run")
    ax.set_ylabel("% of centre results passed")
    ax.set_xticks(rates["run_seq"].unique().sort().to_list())
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def retention_plot(completeness: pl.DataFrame) -> bytes:
    """Share of patients due at each month who were called: the cohort, and each centre
    faintly (loss to follow-up, the study's main threat)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def share(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.sort("month").with_columns(pct=100 * pl.col("received") / pl.col("expected"))

    cohort = share(completeness.group_by("month").agg(pl.col("expected", "received").sum()))
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=(7, 3))
    centres = [
        share(part).select("month", "pct").to_numpy()
        for _, part in completeness.group_by("centre_id")
    ]  # one collection: 500 plot calls took 0.5 s
    ax.add_collection(LineCollection(centres, colors="grey", alpha=0.25, linewidths=0.8))
    ax.plot(cohort["month"], cohort["pct"], color="black", marker="o", label="cohort")
    ax.set_ylim(0, 105)
    ax.set_xlabel("months since inclusion")
    ax.set_ylabel("% of patients due, called")
    ax.set_xticks(range(13))
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def markdown(run_id: str, card: pl.DataFrame, breaches: list, report: Path) -> str:
    """The scorecard as markdown, for a Prefect artifact."""
    columns = [*ex.CATEGORIES, "overall"]
    lines = [
        f"## Data quality, run {run_id}",
        "",
        f"{len(breaches)} breaches; the report is `{report}` on the machine that runs "
        "cohortflow (a file: open it in a browser there; `make report-screenshot` renders it)",
        "",
        "| centre | " + " | ".join(columns) + " | failed |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]
    for r in card.iter_rows(named=True):
        cells = " | ".join("n/a" if r[c] is None else f"{r[c]:.0f}%" for c in columns)
        lines.append(f"| {r['centre_id']} | {cells} | {r['failed']} |")
    if breaches:
        lines += ["", "Breaches:", *[f"- {b}" for b in breaches[:20]]]
        if len(breaches) > 20:
            lines.append(f"- ... and {len(breaches) - 20} more (see the report)")
    return "\n".join(lines)
