"""The quality report folder is never half made: ``queries/`` appears only with its
``quality.html``, after a failure midway the run's folder keeps only what the night wrote
before (``quarantine.csv``), and the next run removes the staging debris."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tests.nights import night
from transforms import warehouse
from transforms.quality import report as quality_report
from transforms.quality import run_quality
from transforms.quality.run import STAGING

pytestmark = pytest.mark.slow  # quality runs with Great Expectations: 2-3 s each


@pytest.fixture
def checked(workspace):
    """A loaded warehouse with views, and the reports folder the night wrote into."""
    con, snapshot = night(workspace, "night-1")
    warehouse.refresh_views(con, snapshot)
    reports = workspace / "reports"
    (reports / "dq-1").mkdir(parents=True)
    (reports / "dq-1" / "quarantine.csv").write_text("written by the night\n")
    yield con, reports
    con.close()


def _quality(con, reports, run_id: str):
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    return run_quality(con, run_id=run_id, workspace_reports=reports, now=now, with_gx=False)


def _fail(*args, **kwargs):
    raise RuntimeError("killed midway")


@pytest.mark.parametrize(
    "where",
    ["queries", "plot", "page"],
)
def test_failure_midway_leaves_no_queries_without_the_report(checked, monkeypatch, where):
    con, reports = checked
    if where == "queries":  # after the first centre's CSV
        written = []
        original = pl.DataFrame.write_csv

        def write_once(self, *args, **kwargs):
            if written:
                _fail()
            written.append(1)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(pl.DataFrame, "write_csv", write_once)
    elif where == "plot":
        monkeypatch.setattr(quality_report, "trend_plot", _fail)
    else:  # the page itself, once the queries are staged
        monkeypatch.setattr(quality_report, "render_report", _fail)
    with pytest.raises(RuntimeError, match="killed midway"):
        _quality(con, reports, "dq-1")
    visible = sorted(p.name for p in (reports / "dq-1").iterdir() if p.name != STAGING)
    assert visible == ["quarantine.csv"]
    assert (reports / "dq-1" / "quarantine.csv").read_text() == "written by the night\n"


def test_next_run_removes_staging_debris_and_writes_queries_with_their_report(checked, monkeypatch):
    con, reports = checked
    with monkeypatch.context() as patch:
        patch.setattr(quality_report, "render_report", _fail)
        with pytest.raises(RuntimeError):
            _quality(con, reports, "dq-1")
    assert (reports / "dq-1" / STAGING / "queries").is_dir()  # as a kill would leave it

    result = _quality(con, reports, "dq-2")
    assert not (reports / "dq-1" / STAGING).exists()
    folder = reports / "dq-2"
    assert sorted(p.name for p in folder.iterdir()) == ["quality.html", "queries"]
    assert result.queries, "the small workspace has queries to send back"
    assert all(p.parent == folder / "queries" and p.is_file() for p in result.queries.values())
    page = result.report.read_text()
    for path in result.queries.values():
        assert f'href="queries/{path.name}"' in page
