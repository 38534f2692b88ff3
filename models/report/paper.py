"""The published figures the report shows beside our estimates (shared/study.md).

The cohort study: JAMA Netw Open 2023;6(5):e2314406; its companion on the same national
cohort: Pain 2022;163:690-701. Where neither paper gives a figure, the report shows none.
Numbers are kept where a plot needs them (a point and its CI); text is what a reader sees.
"""

from __future__ import annotations

from dataclasses import dataclass

MAIN = "JAMA Netw Open 2023"
COMPANION = "Pain 2022"


@dataclass(frozen=True)
class Published:
    """One published figure: as printed, and as numbers where a forest plot can use them."""

    text: str
    source: str = MAIN
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    def cite(self) -> str:
        return f"{self.text} ({self.source})"


PATIENTS = Published("329 patients, 30 centres", COMPANION)
COLLECTION = Published("2016-07-07 to 2017-09-21")
EFFECT_SIZE = Published("-0.52 (95% CI -0.62 to -0.41), P < .001", MAIN, -0.52, -0.62, -0.41)
# The paper's sign: HADS-D <= 7 coded 1 (our row month:not_depressed).
INTERACTION = Published(
    "-0.04 (95% CI -0.06 to -0.01), omnibus P = .002", MAIN, -0.04, -0.06, -0.01
)
TRAJECTORIES = Published("3 groups: 16.0% mild, 35.3% moderate, 45.7% severe", COMPANION)
PROPORTION_MEDIATED = Published("64.6% of the pain reduction mediated by baseline depression")
MEDIATION_PATHS = Published(
    "depression -> pain diminution 0.03 (95% CI 0.01 to 0.04), P < .001; dose -> pain "
    "diminution 0.00 (95% CI -0.01 to 0.01), P = .67; dose not correlated with depression "
    "(r = -0.06, P = .32)"
)
SF12 = {
    "mcs12": Published("39.7 (10.9) -> 42.2 (11.1), P < .001", MAIN, 2.5),
    "pcs12": Published("28.5 (7.9) -> 29.5 (9.2), P = .02", MAIN, 1.0),
}
ADVERSE_EFFECTS = Published(
    "adverse events one week after a procedure in about half of the patients", COMPANION
)
NPRS_BY_MONTH = {
    0: Published("6.8 (SD 1.8)", COMPANION, 6.8),
    12: Published("5.7 (SD 1.8); about a third still answer at month 12", COMPANION, 5.7),
}
# Table 1, by the analysis_patients column (and code) the row describes.
TABLE_ONE = {
    "n": Published("329"),
    "age": Published("51.4 (11.0)"),
    "sex=F": Published("249 (75.7)"),
    "sex=M": Published("80 (24.3)"),
    "nprs_baseline": Published("6.8 (1.8)", COMPANION),
    "pcs12_baseline": Published("28.5 (7.9)"),
    "mcs12_baseline": Published("39.7 (10.9)"),
}
