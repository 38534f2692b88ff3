"""The results page as a browser renders it: headless Chromium, no console message, every
section with this snapshot's numbers, a screenshot that is not blank.

Uses the functions of scripts/screenshot_report.py (what `make results-screenshot` runs).
Skipped, with the reason, where Debian's chromium is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from tests.models.report.conftest import SNAPSHOT
from tests.models.report.pages import section

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "screenshot_report.py"
SECTIONS = (
    "table-1",
    "pain-curve",
    "trajectories",
    "models",
    "forest",
    "questionnaires",
    "adverse-effects",
    "provenance",
)

pytestmark = pytest.mark.slow  # starts a browser (about 3 s a page)


@pytest.fixture(scope="module")
def chromium():
    spec = importlib.util.spec_from_file_location("screenshot_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.browser() is None:
        pytest.skip("chromium is not installed (apt-get install chromium): page not rendered")
    return module


def test_results_page_renders_every_section_with_the_snapshots_numbers(study, chromium):
    """It renders without a console message, and the rendered DOM holds every section with
    the snapshot, the patients, the effect size and the adverse effects of this run."""
    dom, console = chromium.dump_dom(study.report)
    assert console == []
    for anchor in SECTIONS:
        assert section(dom, anchor), anchor
    assert f'<code id="snapshot">{SNAPSHOT}</code>' in dom
    assert f'<span id="n-patients">{study.views["analysis_patients"].height}</span>' in dom
    effect = pl.read_parquet(study.results / "lmm_primary_effect_size.parquet")["estimate"][0]
    assert f"standardised_one_year_change {effect:.4g}" in section(dom, "models")
    assert dom.count('src="data:image/png;base64,') == 4  # curve, trajectories, forest, bars


def test_results_page_screenshot_is_drawn(study, chromium, tmp_path):
    """It draws the page's top (header, Table 1, the NPRS curve): a real image, not blank."""
    from PIL import Image

    out = tmp_path / "results.png"
    assert chromium.screenshot(study.report, out, height=2400) == []
    with Image.open(out) as image:
        assert image.size == (1200, 2400)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # text, tables and a plot: many colours


def test_console_check_catches_a_page_that_logs_an_error(chromium, tmp_path):
    """It would see a console error or an uncaught exception (the check can fail)."""
    page = tmp_path / "bad.html"
    page.write_text('<p>x</p><script>console.error("boom"); throw new Error("thrown")</script>')
    _, console = chromium.dump_dom(page)
    assert any('"boom"' in line for line in console)
    assert any("Uncaught Error: thrown" in line for line in console)
