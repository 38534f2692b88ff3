"""What the columns of the published result tables mean (label, unit, description).

Written into each result's parquet schema (Arrow field metadata and the file key
``cohortflow.columns``) so that a table read alone still says what it holds. A column not
listed here (an analysis adding one) is published without a description, never refused.
The unit of ``estimate`` and of its CI is the row's quantity: NPRS points (per month for a
``month`` term), SD units for the standardised effect size, points of a score.
"""

from __future__ import annotations

from transforms.delivery.columns import ColumnDoc

SAME_AS_ESTIMATE = "as estimate"
RESULT_COLUMNS: dict[str, tuple[str, str, str]] = {
    "term": ("Model term", "", "fixed-effect term, patsy notation (month:depressed[T.True])"),
    "estimate": ("Estimate", "the row's quantity", "point estimate"),
    "std_error": ("Standard error", SAME_AS_ESTIMATE, "standard error of the estimate"),
    "z": ("Wald z", "", "estimate / standard error"),
    "p_value": ("p-value", "probability", "two-sided p-value of the row's test"),
    "ci_low": ("95% CI, lower bound", SAME_AS_ESTIMATE, "lower bound of the 95% CI"),
    "ci_high": ("95% CI, upper bound", SAME_AS_ESTIMATE, "upper bound of the 95% CI"),
    "model": ("Model", "", "the model the row belongs to"),
    "n_patients": ("Patients", "count", "patients in the fit"),
    "n_observations": ("Observations", "count", "patient-months in the fit"),
    "n_centres": ("Centres", "count", "centres in the fit"),
    "component": ("Variance component", "", "random-effect or residual (co)variance"),
    "quantity": ("Quantity", "", "what the row estimates"),
    "one_year_change": ("One-year change in NPRS", "points", "12 x the monthly slope"),
    "definition": ("Definition", "", "how the quantity is computed"),
    "coding": ("Coding", "", "how the group variable is coded in this row"),
    "lrt_chi2": ("Likelihood-ratio chi-square", "", "2 x (ML log-likelihood full - reduced)"),
    "lrt_df": ("LRT degrees of freedom", "count", "parameters the full model adds"),
    "lrt_p_value": ("LRT p-value", "probability", "p-value of the likelihood-ratio test"),
    "converged": ("Converged", "", "whether the optimiser converged"),
    "effect": ("Mediation effect", "", "ACME (indirect), ADE (direct), total, proportion"),
    "n": ("N", "count", "patients with every variable of the analysis"),
    "exposure_contrast": ("Exposure contrast", "", "the exposure change an effect refers to"),
    "formula": ("Formula", "", "the fitted model's formula"),
    "score": ("Score", "", "the questionnaire score summarised"),
    "baseline_mean": ("Mean at baseline", "points", "mean of the score at month 0"),
    "baseline_sd": ("SD at baseline", "points", "SD at month 0 (of NPRS for the effect size)"),
    "one_year_mean": ("Mean at one year", "points", "mean of the score at month 12"),
    "one_year_sd": ("SD at one year", "points", "SD of the score at month 12"),
    "t_statistic": ("Paired t", "", "paired t statistic (one year - baseline)"),
    "month": ("Month since inclusion", "months", "follow-up month, 0-12"),
    "mean": ("Mean", "points", "mean score"),
    "sd": ("SD", "points", "standard deviation of the score"),
    "n_groups": ("Groups in the model", "count", "number of trajectory groups fitted"),
    "selected": ("Selected", "", "whether this number of groups was selected"),
    "group": ("Trajectory group", "", "group number, 1 = lowest pain"),
    "share": ("Estimated share", "proportion", "mixing proportion of the group"),
    "n_assigned": ("Patients assigned", "count", "patients whose highest posterior is the group"),
    "assigned_share": ("Share assigned", "proportion", "n_assigned / patients"),
    "app": ("Average posterior probability", "probability", "mean posterior of those assigned"),
    "posterior_probability": ("Posterior probability", "probability", "of the patient's group"),
    "assigned": ("Assigned", "", "whether this is the patient's most probable group"),
    "observed_mean": ("Observed mean NPRS", "points, 0-10", "of the patients assigned"),
    "n_observed": ("Patients observed", "count", "assigned patients answering that month"),
    "bic": ("BIC", "", "Bayesian information criterion, n = patients"),
    "aic": ("AIC", "", "Akaike information criterion"),
    "log_likelihood": ("Log-likelihood", "", "at the estimates"),
    "n_parameters": ("Parameters", "count", "free parameters of the model"),
    "centre_id": ("Centre", "", "centre, or ALL for the whole cohort"),
    "ae_type": ("Adverse effect type", "", "type, or all"),
    "severity": ("Severity", "", "mild, moderate, severe, or all"),
    "n_events": ("Events", "count", "adverse effects reported"),
    "patients_affected": ("Patients affected", "count", "patients with at least one"),
    "percent_patients": ("Patients affected", "%", "of the patients included (in the centre)"),
    "patient_key": ("Patient pseudonym", "", "the warehouse's pseudonym (never a local id)"),
}


def result_docs(columns: list[str]) -> dict[str, ColumnDoc]:
    """The documented columns among ``columns`` (others are left undescribed)."""
    return {
        name: ColumnDoc(name, *RESULT_COLUMNS[name][:2], description=RESULT_COLUMNS[name][2])
        for name in columns
        if name in RESULT_COLUMNS
    }
