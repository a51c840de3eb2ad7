# Reference values for scaleup_analysis.heterogeneity.meta (meta_analysis, meta_regression).
# Run from this folder:  Rscript ref_meta.R   -> writes meta.json
# Every value comes from metafor (rma.uni and its methods) with its default settings; the R call is
# visible next to each stored value. The input data (yi, vi, moderators) are stored in the JSON so the
# Python tests run on exactly the same numbers.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
options(na.action = "na.omit")

num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)

# ---- data -------------------------------------------------------------------------------------------
# BCG vaccine trials: log risk ratios (metafor::escalc measure "RR")
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg <- data.frame(author = bcg$author, year = bcg$year, ablat = bcg$ablat, alloc = bcg$alloc,
                  yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi))

# Baskerville et al. (2012) practice facilitation: yi = smd, vi = se^2 (bundled CSV)
bsk_raw <- read.csv("../../scaleup_analysis/data/bundled/baskerville2012_practice_facilitation.csv")
bsk <- data.frame(author = bsk_raw$author, year = bsk_raw$year, tailor = bsk_raw$tailor,
                  pperf = bsk_raw$pperf, yi = bsk_raw$smd, vi = bsk_raw$se^2)

datasets <- list(bcg = bcg, baskerville = bsk)
methods <- c("FE", "DL", "REML", "ML", "PM", "EB", "HE", "SJ")
tests <- c("z", "knha")

# ---- helpers ----------------------------------------------------------------------------------------
model_fields <- function(res) {
  fs <- fitstats(res)                      # metafor::fitstats (REML column for REML, else ML)
  list(
    estimate = num(coef(res)), se = num(res$se), statistic = num(res$zval), pvalue = num(res$pval),
    ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
    tau2 = num(res$tau2), se_tau2 = num(res$se.tau2),
    I2 = num(res$I2), H2 = num(res$H2), vt = num(res$vt),
    Q = num(res$QE), Q_df = res$k - res$p, Q_pvalue = num(res$QEp),
    QM = num(res$QM), QM_df = num(res$QMdf), QM_pvalue = num(res$QMp),
    k = res$k, p = res$p, s2w = num(res$s2w),
    loglik = fs[1, 1], deviance = fs[2, 1], AIC = fs[3, 1], BIC = fs[4, 1], AICc = fs[5, 1]
  )
}

tau2_ci <- function(res) {
  if (res$method == "FE") return(NULL)
  ci <- confint(res)$random              # metafor::confint.rma.uni, Q-profile (type = "QP")
  list(tau2_ci_low = ci["tau^2", "ci.lb"], tau2_ci_high = ci["tau^2", "ci.ub"],
       I2_ci_low = ci["I^2(%)", "ci.lb"], I2_ci_high = ci["I^2(%)", "ci.ub"],
       H2_ci_low = ci["H^2", "ci.lb"], H2_ci_high = ci["H^2", "ci.ub"])
}

# ---- 1. meta_analysis grid: dataset x method x test ---------------------------------------------------
ma <- list()
for (dn in names(datasets)) {
  d <- datasets[[dn]]
  for (m in methods) {
    for (tt in tests) {
      res <- suppressWarnings(rma(yi, vi, data = d, method = m, test = tt))   # metafor::rma.uni
      out <- model_fields(res)
      out <- c(out, tau2_ci(res))
      pr <- predict(res)                                                       # metafor::predict.rma
      out$pi_low <- if (is.null(pr$pi.lb)) NA_real_ else num(pr$pi.lb)
      out$pi_high <- if (is.null(pr$pi.ub)) NA_real_ else num(pr$pi.ub)
      out$weights <- num(weights(res))                                         # metafor::weights.rma.uni
      inf <- suppressWarnings(influence(res))                                  # metafor::influence.rma.uni
      out$influence <- list(
        rstudent = num(inf$inf$rstudent), dffits = num(inf$inf$dffits), cook_d = num(inf$inf$cook.d),
        cov_r = num(inf$inf$cov.r), tau2_del = num(inf$inf$tau2.del), QE_del = num(inf$inf$QE.del),
        hat = num(inf$inf$hat), weight = num(inf$inf$weight), dfbs = num(inf$dfbs[[1]]),
        inf = inf$is.infl)
      l1o <- suppressWarnings(leave1out(res))                                  # metafor::leave1out.rma.uni
      out$leave1out <- list(
        estimate = num(l1o$estimate), se = num(l1o$se), statistic = num(l1o[[3]]),
        pvalue = num(l1o$pval), ci_low = num(l1o$ci.lb), ci_high = num(l1o$ci.ub),
        Q = num(l1o$Q), Q_pvalue = num(l1o$Qp),
        tau2 = if (is.null(l1o$tau2)) rep(0, res$k) else num(l1o$tau2),
        I2 = num(l1o$I2), H2 = num(l1o$H2))
      if (m != "FE") {
        bl <- blup(res)                                                        # metafor::blup.rma.uni
        out$blup <- list(pred = num(bl$pred), se = num(bl$se), pi_low = num(bl$pi.lb),
                         pi_high = num(bl$pi.ub))
      }
      ma[[paste(dn, m, tt, sep = "|")]] <- out
    }
  }
}

# ---- 2. meta_regression grid: model x method x test ---------------------------------------------------
reg_models <- list(
  bcg_num = list(data = "bcg", formula = "~ ablat + year"),
  bcg_cat = list(data = "bcg", formula = "~ ablat + alloc"),
  baskerville = list(data = "baskerville", formula = "~ tailor + pperf")   # pperf has 2 NA rows
)
newmods <- list(
  bcg_num = cbind(ablat = c(10, 30, 50), year = c(1950, 1960, 1975)),
  bcg_cat = cbind(ablat = c(10, 30, 50), allocrandom = c(0, 1, 0), allocsystematic = c(0, 0, 1)),
  baskerville = cbind(tailor = c(0, 1, 1), pperf = c(5, 10, 20))
)
reg_methods <- c("FE", "REML", "ML", "DL")
mr <- list()
for (mn in names(reg_models)) {
  spec <- reg_models[[mn]]
  d <- datasets[[spec$data]]
  for (m in reg_methods) {
    for (tt in tests) {
      res <- suppressWarnings(rma(yi, vi, mods = as.formula(spec$formula), data = d,
                                  method = m, test = tt))                      # metafor::rma.uni
      out <- model_fields(res)
      out$terms <- rownames(res$beta)
      out$estimate <- num(res$beta); out$se <- num(res$se); out$statistic <- num(res$zval)
      out$pvalue <- num(res$pval); out$ci_low <- num(res$ci.lb); out$ci_high <- num(res$ci.ub)
      out$vcov <- unname(res$vb)                                               # vcov(res)
      out$R2 <- if (is.null(res$R2)) NA_real_ else num(res$R2)
      out <- c(out, tau2_ci(res))
      pr <- predict(res, newmods = newmods[[mn]])                              # metafor::predict.rma
      out$predict <- list(newmods = unname(newmods[[mn]]), pred = num(pr$pred), se = num(pr$se),
                          ci_low = num(pr$ci.lb), ci_high = num(pr$ci.ub),
                          pi_low = if (is.null(pr$pi.lb)) rep(NA_real_, 3) else num(pr$pi.lb),
                          pi_high = if (is.null(pr$pi.ub)) rep(NA_real_, 3) else num(pr$pi.ub))
      inf <- suppressWarnings(influence(res))                                  # metafor::influence.rma.uni
      out$influence <- list(
        rstudent = num(inf$inf$rstudent), dffits = num(inf$inf$dffits), cook_d = num(inf$inf$cook.d),
        cov_r = num(inf$inf$cov.r), tau2_del = num(inf$inf$tau2.del), QE_del = num(inf$inf$QE.del),
        hat = num(inf$inf$hat), weight = num(inf$inf$weight),
        dfbs = unname(do.call(cbind, unclass(inf$dfbs)[seq_len(res$p)])), inf = inf$is.infl)
      mr[[paste(mn, m, tt, sep = "|")]] <- out
    }
  }
}

# ---- 3. exact permutation tests (metafor::permutest, exact = TRUE) -----------------------------------
bcg6 <- bcg[1:6, ]
perm_cases <- list(
  list(name = "bcg6_ablat|REML|z", data = bcg6, formula = "~ ablat", method = "REML", test = "z"),
  list(name = "bcg6_ablat|DL|knha", data = bcg6, formula = "~ ablat", method = "DL", test = "knha"),
  list(name = "bcg8_alloc|REML|z", data = bcg[1:8, ], formula = "~ alloc", method = "REML", test = "z")
)
pt <- list()
for (pc in perm_cases) {
  res <- rma(yi, vi, mods = as.formula(pc$formula), data = pc$data, method = pc$method, test = pc$test)
  perm <- permutest(res, exact = TRUE, progbar = FALSE)                       # metafor::permutest.rma.uni
  pt[[pc$name]] <- list(formula = pc$formula, rows = nrow(pc$data), method = pc$method, test = pc$test,
                        pvalue = num(perm$pval), QM_pvalue = num(perm$QMp),
                        n_perm = num(perm$exact.iter), statistic = num(res$zval), QM = num(res$QM))
}

# ---- 4. the paper's pooled estimate ---------------------------------------------------------------------
paper <- list()
for (m in c("DL", "REML")) {
  res <- rma(yi, vi, data = bsk, method = m)
  paper[[m]] <- list(estimate = num(coef(res)), ci_low = res$ci.lb, ci_high = res$ci.ub)
}

out <- list(
  info = list(metafor = as.character(packageVersion("metafor")), R = R.version.string,
              script = "tests/reference/ref_meta.R"),
  grid = list(datasets = names(datasets), methods = methods, tests = tests,
              reg_models = names(reg_models), reg_methods = reg_methods),
  data = list(bcg = as.list(bcg), baskerville = as.list(bsk),
              reg_formulas = lapply(reg_models, function(s) s$formula)),
  meta_analysis = ma, meta_regression = mr, permutest = pt, paper = paper
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = FALSE), "meta.json")
message("wrote meta.json")
