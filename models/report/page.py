"""The page: sections in the paper's order, one self-contained HTML file written whole.

No script, no font, no image fetched from anywhere: styles inline, figures as base64
PNG, so the file can be mailed, archived or opened without a network. Written under a
temporary name beside its place and renamed: a reader never opens half a page.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import duckdb

from models.report import sections
from models.report.sources import Cohort, Results, read_cohort, read_results

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;color:#222;max-width:1150px;
padding:0 1em}h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.4em 0 1.2em}td,th{border:1px solid #ccc;
padding:3px 7px;font-size:13px;text-align:left;vertical-align:top}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}.paper{color:#b71c1c}
.missing{color:#8d6e00;font-style:italic}.note{font-size:12px;color:#555}
img{max-width:100%;display:block;margin:.5em 0}ul.spec{font-size:13px;color:#333}
nav a{margin-right:1em}div.wide{overflow-x:auto;max-width:100%}footer{margin-top:2.5em;
font-size:13px}pre{font-size:12px;background:#f7f7f7;padding:.6em;overflow-x:auto}
code{background:#f3f3f3;padding:0 3px}
"""
CONTENTS = [
    ("table-1", "Table 1"),
    ("pain-curve", "NPRS by month"),
    ("trajectories", "Trajectories"),
    ("models", "Models"),
    ("forest", "Effects"),
    ("questionnaires", "SF-12 and HADS"),
    ("adverse-effects", "Adverse effects"),
    ("provenance", "Provenance"),
]


def write_results_report(results_folder: Path, con: duckdb.DuckDBPyConnection, out: Path) -> Path:
    """Write ``out`` (``reports/<run>/results.html``) from a published results folder and
    the warehouse's views at the same snapshot; returns ``out``."""
    results = read_results(results_folder)
    cohort = read_cohort(con, results.snapshot_id)
    page = render(results, cohort, _csv_links(results, out.parent))
    write_page(out, page)
    return out


def render(results: Results, cohort: Cohort, link: sections.Link) -> str:
    """The whole page as text."""
    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in CONTENTS)
    body = [
        sections.header(results, cohort),
        f"<nav>{nav}</nav>",
        sections.table_one_section(cohort),
        sections.pain_curve_section(cohort),
        sections.trajectory_section(results, link),
        sections.models_section(results, link),
        sections.forest_section(results),
        sections.questionnaires_section(results, link),
        sections.adverse_section(results, link),
        sections.other_tables_section(results, link),
        sections.provenance(results),
    ]
    title = f"Study results, snapshot {html.escape(results.snapshot_id)}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _csv_links(results: Results, page_folder: Path) -> sections.Link:
    """Relative links from the page to each table's CSV beside its parquet."""

    def link(name: str) -> str:
        entry = results.manifest.get("files", {}).get(name, {})
        return os.path.relpath(results.folder / entry.get("csv", f"{name}.csv"), page_folder)

    return link


def write_page(path: Path, page: str) -> None:
    """Write under a temporary name beside ``path``, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
