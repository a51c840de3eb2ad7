# Reference values for tests/test_properties.py (numerical robustness at the boundaries).
# Run from this folder:  Rscript ref_robustness.R   -> writes robustness.json
# 1. tau^2 on the boundary: metafor::rma.uni (run to convergence: control = CTRL) for every tau^2
#    estimator x test on
#    - "identical": identical effects with unequal variances (Q = 0),
#    - "homogeneous": effects that vary less than their sampling error (Q < k - 1),
#    with predict() for the prediction interval and confint() (Q-profile) for tau^2.
# 2. zero cells in 2x2 tables: metafor::escalc for OR, RR, RD with to = "only0", "all", "none",
#    drop00 = TRUE/FALSE, on tables with a zero cell, perfect separation and a double-zero study.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)
# metafor run to convergence, as the package (tau^2 and its Q-profile bounds: exact optimum / roots)
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
CI_CTRL <- list(tol = 1e-12, maxiter = 10000)

boundary <- list(
  identical = data.frame(yi = rep(0.3, 5), vi = c(0.01, 0.02, 0.03, 0.04, 0.05)),
  homogeneous = data.frame(yi = c(0.30, 0.32, 0.29, 0.31, 0.30, 0.28), vi = c(0.02, 0.03, 0.05, 0.04, 0.02, 0.06))
)
methods <- c("FE", "DL", "REML", "ML", "PM", "EB", "HE", "SJ")
tests <- c("z", "knha")

meta <- list()
for (dname in names(boundary)) {
  d <- boundary[[dname]]
  for (m in methods) for (tt in tests) {
    res <- suppressWarnings(rma(yi, vi, data = d, method = m, test = tt, control = CTRL))   # metafor::rma.uni
    pr <- predict(res)                                                          # prediction interval
    ci <- if (m == "FE") NULL else suppressWarnings(confint(res, control = CI_CTRL)$random)  # Q-profile CI
    meta[[paste(dname, m, tt, sep = "|")]] <- list(
      dataset = dname, method = m, test = tt,
      estimate = num(coef(res)), se = num(res$se), ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
      tau2 = num(res$tau2), se_tau2 = num(res$se.tau2), I2 = num(res$I2), H2 = num(res$H2),
      Q = num(res$QE), pi_low = num(pr$pi.lb), pi_high = num(pr$pi.ub),
      tau2_ci_low = if (is.null(ci)) NA_real_ else num(ci["tau^2", "ci.lb"]),
      tau2_ci_high = if (is.null(ci)) NA_real_ else num(ci["tau^2", "ci.ub"])
    )
  }
}

# 2x2 tables: ai/bi = events/non-events in group 1, ci/di in group 2
tables2x2 <- data.frame(
  study = c("zero_cell", "separation", "double_zero", "no_zero"),
  ai = c(0, 12, 0, 8), bi = c(20, 0, 15, 12), ci = c(5, 0, 0, 4), di = c(15, 14, 18, 16)
)
escalc_ref <- list()
for (measure in c("OR", "RR", "RD")) for (to in c("only0", "all", "none")) for (drop00 in c(FALSE, TRUE)) {
  es <- suppressWarnings(escalc(measure = measure, ai = ai, bi = bi, ci = ci, di = di, data = tables2x2,
                                add = 1/2, to = to, drop00 = drop00))            # metafor::escalc
  escalc_ref[[paste(measure, to, drop00, sep = "|")]] <- list(
    measure = measure, to = to, drop00 = drop00,
    yi = num(es$yi), vi = num(es$vi)
  )
}

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  boundary_data = boundary, meta = unname(meta),
  tables2x2 = tables2x2, escalc = unname(escalc_ref)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), "robustness.json")
