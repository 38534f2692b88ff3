# lavaan reference for the mediation analysis (product of coefficients, patient bootstrap).
# Run from the repository root: Rscript scripts/r/mediation_reference.R (scripts/r/README.md).
# Writes tests/data/r_reference_mediation.json.
suppressMessages({
  library(lavaan)
  library(jsonlite)
})
data_dir <- "tests/data"
d <- read.csv(file.path(data_dir, "mediation_cohort.csv"))
d <- d[complete.cases(d[, c("nprs_change", "total_dose_mg", "hads_d_baseline", "age", "sex")]), ]
d$dose <- d$total_dose_mg / 100
d$male <- as.numeric(d$sex == "M")
model <- "
  hads_d_baseline ~ a * dose + age + male
  nprs_change ~ cp * dose + b * hads_d_baseline + age + male
  indirect := a * b
  total := cp + a * b
"
fit <- sem(model, data = d)
set.seed(20230516)
boot <- sem(model, data = d, se = "bootstrap", bootstrap = 2000)
pe <- parameterEstimates(fit)
pb <- parameterEstimates(boot, boot.ci.type = "perc")
row <- function(label) {
  s <- pe[pe$label == label, ]
  b <- pb[pb$label == label, ]
  list(est = s$est, se = s$se, boot_se = b$se, boot_ci_percentile = c(b$ci.lower, b$ci.upper))
}
out <- list(
  versions = list(R = R.version.string, lavaan = as.character(packageVersion("lavaan"))),
  n = nrow(d), bootstrap = 2000,
  a = row("a"), b = row("b"), direct = row("cp"), indirect = row("indirect"), total = row("total")
)
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
      file.path(data_dir, "r_reference_mediation.json"))
