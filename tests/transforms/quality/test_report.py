"""The HTML report and the markdown, from small frames (no warehouse, no GX)."""

from __future__ import annotations

import re

import polars as pl

from transforms.quality.report import (
    completeness_heatmap,
    markdown,
    retention_plot,
    trend_plot,
    write_report,
)
from transforms.quality.score import breaches_of, score, scorecard

PNG = b"\x89PNG\r\n\x1a\n"


def _results() -> pl.DataFrame:
    return score(
        pl.DataFrame(
            {
                "check_id": ["a", "a"],
                "category": ["conformance", "conformance"],
                "centre_id": ["C01", "C02"],
                "n_checked": [10, 10],
                "n_violating": [0, 3],
                "threshold_pct": [0.0, 0.0],
                "threshold_count": [0, 0],
                "observed": [None, "3 bad codes"],
                "unit": ["rows", "rows"],
            },
            schema_overrides={"observed": pl.String},
        )
    )


def _completeness() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "centre_id": ["C01", "C01", "C02"],
            "month": [0, 1, 0],
            "expected": [4, 4, 3],
            "received": [4, 2, 3],
        }
    )


def _trend() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "run_seq": [1, 2],
            "run_id": ["r1", "r2"],
            "centre_id": ["C01", "C01"],
            "category": ["conformance"] * 2,
            "n_applicable": [2, 2],
            "n_passed": [1, 2],
            "n_failed": [1, 0],
            "pct_passed": [50.0, 100.0],
        }
    )


def test_plots_are_png_images():
    """It draws the trend and the retention curve without a display."""
    assert trend_plot(_trend()).startswith(PNG)
    assert retention_plot(_completeness()).startswith(PNG)


def test_heatmap_is_a_table_of_calls_missing_coloured_by_share_received():
    """It gives each centre a row and each month a cell: calls missing written, the colour
    green when all were received, red at half, grey when none was expected."""
    page = completeness_heatmap(_completeness())
    rows = re.findall(r"<tr><th>(C\d+)</th>(.*?)</tr>", page)
    assert [centre for centre, _ in rows] == ["C01", "C02"]
    c01 = re.findall(r"<td([^>]*)>([^<]*)</td>", rows[0][1])
    assert len(c01) == 13
    assert c01[0] == (' style="background:#006837"', "")  # 4 of 4: RdYlGn's green end
    assert c01[1] == (' style="background:#a50026"', "2")  # 2 of 4: its red end, 2 missing
    assert c01[2] == (' class="none"', "")  # month 2: no call expected


def test_write_report_holds_scorecard_breaches_heatmap_and_links(tmp_path):
    """One self-contained page: tables, embedded images, links to the query files; GX's
    Data Docs are not linked (unstyled offline, and passing where centres fail)."""
    results = _results()
    queries = {"C02": tmp_path / "run" / "queries" / "C02_queries.csv"}
    path = write_report(
        tmp_path / "run" / "quality.html",
        run_id="r2",
        results=results,
        scorecard=scorecard(results),
        completeness=_completeness(),
        quarantine=pl.DataFrame(
            {
                "centre_id": ["C02"],
                "form": ["hads"],
                "column_name": ["hads_a3"],
                "rule": ["less_than_or_equal_to(3)"],
                "n_rows": [4],
            }
        ),
        trend=_trend(),
        changes=pl.DataFrame(),
        queries=queries,
    )
    page = path.read_text()
    assert 'id="scorecard"' in page and '<td class="num bad">0%</td>' in page
    assert "3 of 10 rows" in page and "3 bad codes" in page
    assert page.count("data:image/png;base64,") == 2  # retention, trend
    assert 'aria-label="completeness heatmap"' in page and "<th>C01</th>" in page
    assert "data_docs" not in page and 'href="queries/C02_queries.csv"' in page
    assert "hads.hads_a3 less_than_or_equal_to(3) (4)" in page


def test_markdown_has_one_row_per_centre_and_the_breaches(tmp_path):
    """The Prefect artifact: the scorecard table and a line per breach."""
    results = _results()
    report = tmp_path / "quality.html"
    text = markdown("r2", scorecard(results), breaches_of(results), report)
    assert "| ALL | 0% | n/a | n/a | n/a | 0% | 1 |" in text  # pooled: 3 of 20 > 0
    assert "| C01 | 100% |" in text
    assert "- C02 a: 3 of 10 (30.0%) > 0% or 0 (3 bad codes)" in text
    assert str(report) in text
