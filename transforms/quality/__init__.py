"""Data quality: the check catalogue run per centre, scored, stored per run, reported.

* ``checks``, ``plausibility``: checks computed in DuckDB (joins, history, distributions);
* ``gx``: the Great Expectations suites (codes, ranges, not-null, uniqueness);
* ``score``: statuses from raw counts and thresholds, scorecards, trends;
* ``store``: results and queries per run and centre; query files for the centres;
* ``report``: the HTML report and the Prefect markdown;
* ``run``: one quality run, start to end (what the flows call).
"""

from transforms.quality.run import SQL_CHECKS, QualityResult, run_quality
from transforms.quality.score import (
    Breach,
    load_results,
    rescore,
    scorecard,
    status,
    status_changes,
    trend,
)
from transforms.quality.store import ensure_quality_tables, expand

__all__ = [
    "SQL_CHECKS",
    "Breach",
    "QualityResult",
    "ensure_quality_tables",
    "expand",
    "load_results",
    "rescore",
    "run_quality",
    "scorecard",
    "status",
    "status_changes",
    "trend",
]
