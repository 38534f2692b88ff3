# flexmix and lme4 references for the trajectory models, on data the tests keep.
# Run from the repository root: Rscript scripts/r/trajectory_reference.R (after
# .venv/bin/python scripts/r/trajectory_data.py). Writes tests/data/trajectory_reference.json.
#
# LCGA: flexmix's FLXMRglmfix(varFix = TRUE) is the group-based model of models/mixture.py
# (quadratic mean trajectory per group in month/12, one residual SD for all groups, each
# patient's visits in one group), fitted by EM from 20 random starts per K.
# GMM with one group: the linear mixed model with the same quadratic fixed part and a
# random intercept and slope (unstructured), or a random intercept only, by ML (lme4).
# lcmm (the R reference for growth mixture models with more groups) is not packaged for
# Debian: the GMM's K >= 2 fits are checked in tests against their limit cases instead.
suppressMessages({
  library(flexmix)
  library(lme4)
  library(jsonlite)
})
data_dir <- "tests/data"
d <- read.csv(file.path(data_dir, "trajectory_visits.csv"))
d$t <- d$month / 12
n_patients <- length(unique(d$patient_key))

lcga <- lapply(1:4, function(k) {
  set.seed(20230516 + k)
  fit <- stepFlexmix(nprs ~ t + I(t^2) | patient_key, data = d, k = k, nrep = 20,
                     model = FLXMRglmfix(varFix = TRUE), verbose = FALSE,
                     control = list(tol = 1e-12, iter.max = 10000, minprior = 0))
  ll <- logLik(fit)
  pars <- parameters(fit)
  list(
    k = k, log_likelihood = as.numeric(ll), df = attr(ll, "df"),
    bic_n_patients = -2 * as.numeric(ll) + attr(ll, "df") * log(n_patients),
    shares = unname(prior(fit)),
    intercept = unname(pars["coef.(Intercept)", ]), t = unname(pars["coef.t", ]),
    t2 = unname(pars["coef.I(t^2)", ]), sigma = unname(pars["sigma", 1])
  )
})

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5))
mixed <- function(formula) {
  fit <- lmer(formula, d, REML = FALSE, control = tight)
  vc <- as.data.frame(VarCorr(fit))
  list(log_likelihood = as.numeric(logLik(fit)), fixed = unname(fixef(fit)),
       vcov = vc$vcov, sigma = sigma(fit))
}
out <- list(
  versions = list(R = R.version.string, flexmix = as.character(packageVersion("flexmix")),
                  lme4 = as.character(packageVersion("lme4"))),
  n_patients = n_patients, n_visits = nrow(d), lcga = lcga,
  gmm1_intercept_slope = mixed(nprs ~ t + I(t^2) + (t | patient_key)),
  gmm1_intercept = mixed(nprs ~ t + I(t^2) + (1 | patient_key))
)
write_json(out, file.path(data_dir, "trajectory_reference.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
cat("wrote", file.path(data_dir, "trajectory_reference.json"), "\n")
