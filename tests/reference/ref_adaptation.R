# Reference values for scaleup_analysis.adaptation.component_analysis (tests/test_adaptation.py).
# Run from tests/reference/:  Rscript ref_adaptation.R   -> adaptation.json
# Data: the bundled Landenberger & Lipsey (2005) CSV (same rows as metadat::dat.landenberger2005).
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

dat <- read.csv("../../scaleup_analysis/data/bundled/landenberger2005_cbt_offenders.csv",
                stringsAsFactors = FALSE, check.names = FALSE)
# log odds ratio of NON-recidivism, CBT vs control (as in ?dat.landenberger2005)
dat <- escalc(measure = "OR", ai = n.cbt.non, bi = n.cbt.rec, ci = n.ctrl.non, di = n.ctrl.rec, data = dat)
comps <- grep("^cbt\\.", names(dat), value = TRUE)
# yes/no component indicators as 0/1 (safe names for the formula: dots replaced)
X <- as.data.frame(lapply(dat[comps], function(x) as.numeric(x == "yes")))
names(X) <- gsub(".", "_", comps, fixed = TRUE)
d <- cbind(data.frame(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi)), X)

pack <- function(res, terms) {
  list(
    terms = terms,
    estimate = unname(as.numeric(coef(res))),
    se = unname(as.numeric(res$se)),
    statistic = unname(as.numeric(res$zval)),
    pvalue = unname(as.numeric(res$pval)),
    ci_low = unname(as.numeric(res$ci.lb)),
    ci_high = unname(as.numeric(res$ci.ub)),
    tau2 = res$tau2,
    QM = res$QM,
    QM_pvalue = res$QMp,
    QE = res$QE,
    I2 = if (is.null(res$I2)) NA else res$I2,
    k = res$k
  )
}

out <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi), components = comps, joint = list(), separate = list())
f_joint <- as.formula(paste("~", paste(names(X), collapse = " + ")))
for (method in c("REML", "DL", "FE")) {
  for (test in c("z", "knha")) {
    if (method == "FE" && test == "knha") next  # not a sensible combination; not in the grid
    # joint model: all components at once
    res <- rma(yi, vi, mods = f_joint, data = d, method = method, test = test,
               control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))  # run to convergence
    out$joint[[paste(method, test, sep = "_")]] <- pack(res, c("intrcpt", comps))
  }
}
for (method in c("REML", "DL")) {
  for (test in c("z", "knha")) {
    key <- paste(method, test, sep = "_")
    out$separate[[key]] <- list()
    for (j in seq_along(comps)) {
      # one model per component
      res <- rma(yi, vi, mods = as.formula(paste("~", names(X)[j])), data = d, method = method, test = test,
                 control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))  # run to convergence
      out$separate[[key]][[comps[j]]] <- pack(res, c("intrcpt", comps[j]))
    }
  }
}
out$R_version <- R.version.string
out$metafor_version <- as.character(packageVersion("metafor"))


# ---------------------------------------------------------------------------------------------
# adaptation_effects (a), inference = "mixed": the cumulative-count model on a simulated panel
# adaptation_panel.csv = adaptation_effects(...)$panel of simulate_scaleup(seed=5, n_sites=60,
# n_periods=10, patients_per_site_period=10) (tests/test_adaptation.py re-creates it and checks it).
suppressPackageStartupMessages({library(lme4); library(lmerTest)})
pan <- read.csv("adaptation_panel.csv", stringsAsFactors = FALSE)
pan$exp_f <- factor(ifelse(pan$D == 1, pan$exposure, -1))  # untreated = reference level
counts <- c("n_consistent", "n_inconsistent", "n_unknown")
# Mundlak (1978) site means: mean over all rows, and mean over treated rows x D
for (j in seq_along(counts)) {
  v <- pan[[counts[j]]]
  pan[[paste0("m_all_", j)]] <- ave(v, pan$site_id, FUN = mean)
  tr_mean <- ave(ifelse(pan$D == 1, v, NA), pan$site_id, FUN = function(x) if (all(is.na(x))) 0 else mean(x, na.rm = TRUE))
  pan[[paste0("m_tr_", j)]] <- tr_mean * pan$D
}
fit <- lmer(y ~ factor(period) + exp_f + n_consistent + n_inconsistent + n_unknown +
              m_all_1 + m_tr_1 + m_all_2 + m_tr_2 + m_all_3 + m_tr_3 + (1 + D | site_id),
            data = pan, REML = TRUE, control = lmerControl(optimizer = "bobyqa"))
cf <- summary(fit, ddf = "Satterthwaite")$coefficients
out$mixed_cumulative <- list(
  terms = counts,
  estimate = unname(cf[counts, "Estimate"]),
  se = unname(cf[counts, "Std. Error"]),
  df = unname(cf[counts, "df"]),
  pvalue = unname(cf[counts, "Pr(>|t|)"]),
  sigma2 = sigma(fit)^2,
  vc = as.data.frame(VarCorr(fit))$vcov,
  nobs = nobs(fit)
)
out$lme4_version <- as.character(packageVersion("lme4"))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = FALSE), "adaptation.json")
