# Reference values for scaleup_analysis.heterogeneity.meta (meta_analysis, meta_regression).
# Run from this folder:  Rscript ref_meta.R   -> writes meta.json
# Every value comes from metafor (rma.uni and its methods) run to convergence: rma(..., control = CTRL)
# with CTRL = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000) (Fisher scoring stops when tau^2
# changes by <= 1e-12; uniroot for PM/PMM at tol 1e-12) and confint(res, control = CI_CTRL) (Q-profile
# roots at tol 1e-12), so tau^2 and its CI bounds are the exact optimum / roots; the values metafor
# returns with its default control (threshold 1e-5, tol eps^0.25) are stored beside them
# ("default_control") to document how far the default stops. The R call is visible next to each
# stored value. The input data (yi, vi, moderators) are stored in the JSON so the
# Python tests run on exactly the same numbers.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
options(na.action = "na.omit")

num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)   # rma.uni: converge to the optimum
CI_CTRL <- list(tol = 1e-12, maxiter = 10000)                     # confint.rma.uni: exact Q-profile roots

# ---- data -------------------------------------------------------------------------------------------
# BCG vaccine trials: log risk ratios (metafor::escalc measure "RR")
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg <- data.frame(author = bcg$author, year = bcg$year, ablat = bcg$ablat, alloc = bcg$alloc,
                  yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi))

# Baskerville et al. (2012) practice facilitation: yi = smd, vi = se^2 (bundled CSV)
bsk_raw <- read.csv("../../scaleup_analysis/data/bundled/baskerville2012_practice_facilitation.csv")
bsk <- data.frame(author = bsk_raw$author, year = bsk_raw$year, tailor = bsk_raw$tailor,
                  pperf = bsk_raw$pperf, yi = bsk_raw$smd, vi = bsk_raw$se^2)

# Hine et al. (1989) lidocaine trials: risk differences (metafor::escalc measure "RD"); tau^2 = 0 and
# a tiny Q-profile upper bound (3.2e-5), where metafor's default uniroot tolerance returns 6.1e-5
hine <- escalc(measure = "RD", n1i = n1i, n2i = n2i, ai = ai, ci = ci, data = dat.hine1989)
hine <- data.frame(author = hine$study, yi = as.numeric(hine$yi), vi = as.numeric(hine$vi))

datasets <- list(bcg = bcg, baskerville = bsk, hine1989 = hine)
methods <- c("FE", "DL", "REML", "ML", "PM", "PMM", "EB", "HE", "SJ", "HS", "HSk")
tests <- c("z", "t", "knha")

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

tau2_ci <- function(res, control = CI_CTRL) {
  if (res$method == "FE") return(NULL)
  ci <- confint(res, control = control)$random   # metafor::confint.rma.uni, Q-profile (type = "QP")
  list(tau2_ci_low = ci["tau^2", "ci.lb"], tau2_ci_high = ci["tau^2", "ci.ub"],
       I2_ci_low = ci["I^2(%)", "ci.lb"], I2_ci_high = ci["I^2(%)", "ci.ub"],
       H2_ci_low = ci["H^2", "ci.lb"], H2_ci_high = ci["H^2", "ci.ub"])
}

# metafor with its default control (threshold 1e-5, tol eps^0.25): stored to measure how far it stops
default_fields <- function(res) {
  ci <- if (res$method == "FE") NULL else confint(res)$random
  list(tau2 = num(res$tau2), tau2_ci_low = if (is.null(ci)) NA_real_ else ci["tau^2", "ci.lb"],
       tau2_ci_high = if (is.null(ci)) NA_real_ else ci["tau^2", "ci.ub"])
}

# ---- 1. meta_analysis grid: dataset x method x test ---------------------------------------------------
ma <- list()
for (dn in names(datasets)) {
  d <- datasets[[dn]]
  for (m in methods) {
    for (tt in tests) {
      res <- suppressWarnings(rma(yi, vi, data = d, method = m, test = tt, control = CTRL))  # metafor::rma.uni
      out <- model_fields(res)
      out <- c(out, tau2_ci(res))
      out$default_control <- default_fields(rma(yi, vi, data = d, method = m, test = tt))
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
reg_methods <- c("FE", "REML", "ML", "DL", "PM", "PMM", "EB", "HS", "HSk")
mr <- list()
for (mn in names(reg_models)) {
  spec <- reg_models[[mn]]
  d <- datasets[[spec$data]]
  for (m in reg_methods) {
    for (tt in tests) {
      res <- suppressWarnings(rma(yi, vi, mods = as.formula(spec$formula), data = d,
                                  method = m, test = tt, control = CTRL))      # metafor::rma.uni
      dflt <- suppressWarnings(rma(yi, vi, mods = as.formula(spec$formula), data = d, method = m, test = tt))
      out <- model_fields(res)
      out$terms <- rownames(res$beta)
      out$estimate <- num(res$beta); out$se <- num(res$se); out$statistic <- num(res$zval)
      out$pvalue <- num(res$pval); out$ci_low <- num(res$ci.lb); out$ci_high <- num(res$ci.ub)
      out$vcov <- unname(res$vb)                                               # vcov(res)
      out$R2 <- if (is.null(res$R2)) NA_real_ else num(res$R2)
      out <- c(out, tau2_ci(res))
      out$default_control <- default_fields(dflt)
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

# ---- 2b. subset tests of coefficients: btt = (metafor::rma.uni, btt by position or by name pattern) ----
btt_cases <- list(
  list(name = "bcg_cat_alloc", data = "bcg", formula = "~ ablat + alloc", btt = "alloc",
       terms = c("alloc[T.random]", "alloc[T.systematic]")),
  list(name = "bcg_cat_ablat", data = "bcg", formula = "~ ablat + alloc", btt = 2L, terms = "ablat"),
  list(name = "bcg_num_int_year", data = "bcg", formula = "~ ablat + year", btt = c(1L, 3L),
       terms = c("intrcpt", "year")),
  list(name = "baskerville_pperf", data = "baskerville", formula = "~ tailor + pperf", btt = "pperf",
       terms = "pperf")
)
bt <- list()
for (bc in btt_cases) {
  for (m in c("REML", "DL", "FE")) {
    for (tt in tests) {
      res <- suppressWarnings(rma(yi, vi, mods = as.formula(bc$formula), data = datasets[[bc$data]],
                                  method = m, test = tt, btt = bc$btt, control = CTRL))  # metafor::rma.uni(btt =)
      bt[[paste(bc$name, m, tt, sep = "|")]] <- list(
        data = bc$data, formula = bc$formula, btt_r = bc$btt, terms = bc$terms, btt_index = res$btt,
        QM = num(res$QM), QM_df = num(res$QMdf), QM_pvalue = num(res$QMp), tau2 = num(res$tau2),
        estimate = num(res$beta), se = num(res$se))
    }
  }
}

# ---- 3. exact permutation tests (metafor::permutest, exact = TRUE) -----------------------------------
bcg6 <- bcg[1:6, ]
perm_cases <- list(
  list(name = "bcg6_ablat|REML|z", data = bcg6, formula = "~ ablat", method = "REML", test = "z"),
  list(name = "bcg6_ablat|DL|knha", data = bcg6, formula = "~ ablat", method = "DL", test = "knha"),
  list(name = "bcg8_alloc|REML|z", data = bcg[1:8, ], formula = "~ alloc", method = "REML", test = "z"),
  list(name = "bcg6_ablat_year_btt3|PMM|t", data = bcg6, formula = "~ ablat + year", method = "PMM",
       test = "t", btt = 3L, terms = "year")
)
pt <- list()
for (pc in perm_cases) {
  res <- rma(yi, vi, mods = as.formula(pc$formula), data = pc$data, method = pc$method, test = pc$test,
             btt = pc$btt, control = CTRL)
  perm <- permutest(res, exact = TRUE, progbar = FALSE)                       # metafor::permutest.rma.uni
  pt[[pc$name]] <- list(formula = pc$formula, rows = nrow(pc$data), method = pc$method, test = pc$test,
                        btt = pc$terms,
                        pvalue = num(perm$pval), QM_pvalue = num(perm$QMp),
                        n_perm = num(perm$exact.iter), statistic = num(res$zval), QM = num(res$QM))
}

# ---- 4. the paper's pooled estimate ---------------------------------------------------------------------
paper <- list()
for (m in c("DL", "REML")) {
  res <- rma(yi, vi, data = bsk, method = m, control = CTRL)
  paper[[m]] <- list(estimate = num(coef(res)), ci_low = res$ci.lb, ci_high = res$ci.ub)
}

out <- list(
  info = list(metafor = as.character(packageVersion("metafor")), R = R.version.string,
              script = "tests/reference/ref_meta.R", control = CTRL, confint_control = CI_CTRL),
  grid = list(datasets = names(datasets), methods = methods, tests = tests,
              reg_models = names(reg_models), reg_methods = reg_methods),
  data = list(bcg = as.list(bcg), baskerville = as.list(bsk), hine1989 = as.list(hine),
              reg_formulas = lapply(reg_models, function(s) s$formula)),
  meta_analysis = ma, meta_regression = mr, btt = bt, permutest = pt, paper = paper
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = FALSE), "meta.json")
message("wrote meta.json")
