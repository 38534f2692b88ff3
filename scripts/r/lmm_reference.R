# lme4 + lmerTest reference fits of the study's mixed models, on data the tests keep.
# Run from the repository root: Rscript scripts/r/lmm_reference.R (see scripts/r/README.md).
# Writes tests/data/dyestuff2.csv (lme4's Dyestuff2) and tests/data/r_reference_lmm.json.
suppressMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})
data_dir <- "tests/data"
# Tight tolerances: with time in months the slope variance is ~1000x smaller than the
# intercept's, and lme4's default stopping rule leaves the optimum at ~1e-4.
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, maxeval = 1e5))

describe <- function(fit) {
  coefs <- summary(fit)$coefficients
  vc <- as.data.frame(VarCorr(fit))
  list(
    fixed = list(
      term = rownames(coefs), estimate = unname(coefs[, "Estimate"]),
      std_error = unname(coefs[, "Std. Error"]), df = unname(coefs[, "df"]),
      t = unname(coefs[, "t value"]), p_value = unname(coefs[, "Pr(>|t|)"])
    ),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov),
    log_likelihood = as.numeric(logLik(fit)), reml = isREML(fit),
    singular = isSingular(fit), theta = unname(getME(fit, "theta")),
    sigma = sigma(fit), n_obs = nobs(fit)
  )
}

sleep <- read.csv(file.path(data_dir, "sleepstudy.csv"))
cohort <- read.csv(file.path(data_dir, "lmm_cohort.csv"))
centre <- read.csv(file.path(data_dir, "lmm_centre_effect.csv"))
no_centre <- read.csv(file.path(data_dir, "lmm_centre_none.csv"))
dye <- Dyestuff2
dye$sample <- ave(seq_along(dye$Yield), dye$Batch, FUN = seq_along) - 1
write.csv(dye, file.path(data_dir, "dyestuff2.csv"), row.names = FALSE)

full_ml <- lmer(nprs ~ month * depressed + (month | patient_key), cohort, REML = FALSE,
                control = tight)
reduced_ml <- lmer(nprs ~ month + depressed + (month | patient_key), cohort, REML = FALSE,
                control = tight)
lrt <- anova(reduced_ml, full_ml)
out <- list(
  versions = list(
    R = R.version.string, lme4 = as.character(packageVersion("lme4")),
    lmerTest = as.character(packageVersion("lmerTest"))
  ),
  sleepstudy = describe(lmer(Reaction ~ Days + (Days | Subject), sleep, control = tight)),
  sleepstudy_40_dropped = describe(
    lmer(Reaction ~ Days + (Days | Subject), sleep[-(1:40), ], control = tight)
  ),
  primary = describe(lmer(nprs ~ month + (month | patient_key), cohort, control = tight)),
  interaction = describe(
    lmer(nprs ~ month * depressed + (month | patient_key), cohort, control = tight)
  ),
  interaction_full_ml = describe(full_ml),
  interaction_reduced_ml = describe(reduced_ml),
  interaction_lrt = list(chi2 = lrt$Chisq[2], df = lrt$Df[2], p_value = lrt$`Pr(>Chisq)`[2]),
  centre_no_effect = describe(
    lmer(nprs ~ month + (1 | centre_id) + (month | centre_id:patient_key), cohort,
         control = tight)
  ),
  centre_none = describe(
    lmer(nprs ~ month + (1 | centre_id) + (month | centre_id:patient_key), no_centre,
         control = tight)
  ),
  centre_effect = describe(
    lmer(nprs ~ month + (1 | centre_id) + (month | centre_id:patient_key), centre,
         control = tight)
  ),
  dyestuff2 = describe(lmer(Yield ~ sample + (sample | Batch), dye, control = tight))
)
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
      file.path(data_dir, "r_reference_lmm.json"))
