"""The living study report: ``reports/<run>/results.html``, written by every fit.

It presents the current snapshot as the paper does: Table 1 (overall and by baseline
depression, with N and missing), the mean NPRS by month with its CI and the number
answering, the trajectory groups with their shares, each model's tables (effect size,
interaction test, centre model, mediation), a forest plot of the effects, SF-12 and HADS,
adverse effects by type and severity; the published figure beside each estimate where
the papers give one; the manifest's snapshot, code version and specification at the foot.

Inside, by layer: ``page`` (the page and its atomic write) > ``sections`` > ``figures``,
``table_one``, ``html_tables`` > ``summaries`` > ``sources`` (what it reads) and ``paper``
(the published figures).
"""

from models.report.page import render, write_results_report
from models.report.sources import ReportError, read_cohort, read_results

__all__ = ["ReportError", "read_cohort", "read_results", "render", "write_results_report"]
