# Reference values for scaleup_analysis.monitoring.voltage.voltage_drop (phase comparison of effect sizes).
# Run from this folder:  Rscript ref_voltage.R   -> writes voltage.json
# Data: Landenberger & Lipsey (2005), bundled CSV (= metadat::dat.landenberger2005). Effect size: log odds
# ratio of NOT recidivating, CBT vs control (metafor::escalc measure "OR"). Phases: program = research
# (efficacy) -> demo -> practice (routine delivery); research is the reference ("pilot").
# Every stored value comes from metafor run to convergence (control = list(threshold = 1e-12, tol = 1e-12,
# maxiter = 10000), as the package; z tests); the R call is next to it.
# The ratio CIs (delta method, Fieller) are recomputed here from metafor's coefficients and vcov with
# the formulas written out below, as an independent check of the Python arithmetic.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

raw <- read.csv("../../scaleup_analysis/data/bundled/landenberger2005_cbt_offenders.csv")
dat <- escalc(measure = "OR", ai = n.cbt.non, bi = n.cbt.rec, ci = n.ctrl.non, di = n.ctrl.rec,
              data = raw)                                        # metafor::escalc
lv <- c("research", "demo", "practice")
dat$program <- factor(dat$program, levels = lv)
crit <- qnorm(0.975)

ratio_cis <- function(a, s, va, vs, cas) {
  r <- s / a
  se <- sqrt(vs - 2 * r * cas + r^2 * va) / abs(a)                # delta method
  A <- a^2 - crit^2 * va; B <- a * s - crit^2 * cas; C <- s^2 - crit^2 * vs
  disc <- B^2 - A * C                                              # Fieller quadratic A r^2 - 2 B r + C <= 0
  type <- if (A > 0) "bounded" else if (disc > 0) "exclusive" else "unbounded"
  roots <- if (disc > 0) sort(c((B - sqrt(disc)) / A, (B + sqrt(disc)) / A)) else c(NA, NA)
  list(ratio = r, ratio_se = se, delta_low = r - crit * se, delta_high = r + crit * se,
       fieller_type = type, fieller_root1 = roots[1], fieller_root2 = roots[2],
       difference = s - a, difference_se = sqrt(vs + va - 2 * cas))
}

methods <- c("REML", "DL", "ML", "FE")
out <- list()
for (m in methods) {
  res <- rma(yi, vi, mods = ~ program, data = dat, method = m,
             control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))  # metafor::rma.uni, subgroup meta-regression
  b <- as.numeric(coef(res)); V <- unname(vcov(res))
  pr <- predict(res, newmods = rbind(c(0, 0), c(1, 0), c(0, 1)))   # pooled effect per phase
  cell <- list(
    coef = b, vcov = V, tau2 = res$tau2, QM = res$QM, QM_df = res$QMdf[1], QM_pvalue = res$QMp,
    phase_estimate = as.numeric(pr$pred), phase_se = as.numeric(pr$se),
    phase_ci_low = as.numeric(pr$ci.lb), phase_ci_high = as.numeric(pr$ci.ub),
    ratios = list(
      demo = ratio_cis(b[1], b[1] + b[2], V[1, 1], V[1, 1] + V[2, 2] + 2 * V[1, 2], V[1, 1] + V[1, 2]),
      practice = ratio_cis(b[1], b[1] + b[3], V[1, 1], V[1, 1] + V[3, 3] + 2 * V[1, 3], V[1, 1] + V[1, 3])
    )
  )
  sub <- list()
  for (p in lv) {
    rs <- rma(yi, vi, data = dat, subset = program == p, method = m,
              control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))  # metafor::rma.uni per subgroup
    sub[[p]] <- list(k = rs$k, estimate = as.numeric(coef(rs)), se = rs$se, tau2 = rs$tau2)
  }
  cell$subgroups <- sub
  cell$subgroup_ratios <- list(
    demo = ratio_cis(sub$research$estimate, sub$demo$estimate, sub$research$se^2, sub$demo$se^2, 0),
    practice = ratio_cis(sub$research$estimate, sub$practice$estimate, sub$research$se^2, sub$practice$se^2, 0)
  )
  out[[m]] <- cell
}

json <- list(
  grid = list(datasets = "landenberger2005", methods = methods, models = c("meta_regression", "subgroups"),
              phases = lv),
  data = list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi), program = as.character(dat$program)),
  landenberger2005 = out,
  versions = list(R = R.version.string, metafor = as.character(packageVersion("metafor")))
)
writeLines(toJSON(json, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), "voltage.json")
