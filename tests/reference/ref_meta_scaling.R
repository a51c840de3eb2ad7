# Reference values for the O(k p^2) engine of meta_analysis / meta_regression (heterogeneity/_tau2.py)
# at sizes beyond the small worked examples of ref_meta.R, and for data on which metafor's Fisher
# scoring does not converge.  Run from this folder:  Rscript ref_meta_scaling.R  -> meta_scaling.json
# Every value comes from metafor (rma.uni, confint) run to convergence (control = CTRL / CI_CTRL below:
# tau^2 and its Q-profile bounds are the exact optimum / roots); the R call is visible next to each
# stored value. The simulated inputs are stored in the JSON so the Python tests run on
# exactly the same numbers.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)   # rma.uni: converge to the optimum
CI_CTRL <- list(tol = 1e-12, maxiter = 10000)                     # confint.rma.uni: exact Q-profile roots
methods <- c("FE", "DL", "REML", "ML", "PM", "PMM", "EB", "HE", "SJ", "HS", "HSk")
tests <- c("z", "t", "knha")

# ---- data ---------------------------------------------------------------------------------------------
set.seed(20261123)
# intercept-only, k = 500: yi ~ N(0.3, 0.05 + vi), vi ~ U(0.01, 0.2)
k1 <- 500
vi1 <- runif(k1, 0.01, 0.2)
ma <- data.frame(yi = rnorm(k1, 0.3, sqrt(0.05 + vi1)), vi = vi1)
# meta-regression, k = 300, one numeric and one 3-level categorical moderator (p = 4)
k2 <- 300
vi2 <- runif(k2, 0.01, 0.3)
x <- rnorm(k2, 0, 1)
arm <- sample(c("a", "b", "c"), k2, replace = TRUE)
mu2 <- 0.2 + 0.1 * x + ifelse(arm == "b", 0.15, ifelse(arm == "c", -0.1, 0))
mr <- data.frame(yi = rnorm(k2, mu2, sqrt(0.03 + vi2)), vi = vi2, x = x, arm = arm)

fields <- function(res) {
  fs <- fitstats(res)                                  # metafor::fitstats
  out <- list(
    estimate = num(coef(res)), se = num(res$se), tau2 = num(res$tau2), se_tau2 = num(res$se.tau2),
    I2 = num(res$I2), H2 = num(res$H2), Q = num(res$QE), Q_pvalue = num(res$QEp),
    QM = num(res$QM), QM_pvalue = num(res$QMp), loglik = fs[1, 1], AICc = fs[5, 1])
  if (res$method != "FE") {
    ci <- confint(res, control = CI_CTRL)$random       # metafor::confint.rma.uni (Q-profile)
    out$tau2_ci_low <- ci["tau^2", "ci.lb"]
    out$tau2_ci_high <- ci["tau^2", "ci.ub"]
  }
  out
}

cells_ma <- list()
cells_mr <- list()
for (m in methods) {
  for (tt in tests) {
    r1 <- rma(yi, vi, data = ma, method = m, test = tt, control = CTRL)                  # metafor::rma.uni
    cells_ma[[paste(m, tt, sep = "|")]] <- fields(r1)
    r2 <- rma(yi, vi, mods = ~ x + arm, data = mr, method = m, test = tt, control = CTRL)  # metafor::rma.uni(mods =)
    cells_mr[[paste(m, tt, sep = "|")]] <- fields(r2)
  }
}

# ---- data on which Fisher scoring does not converge with metafor's default control ----------------------
# (maxiter 100; with maxiter 10000 the first two converge after a slow damped oscillation, the third not)
# (found by hypothesis in tests/test_properties.py and by a seeded search over the same strategy)
nonconv <- list(
  list(yi = c(1, 0, 0, 0, 0), vi = c(0.03125, 0.5, 0.5, 0.5, 0.5), method = "REML"),
  list(yi = c(-0.5, -2.0, -0.5, 0.5, -0.5), vi = c(0.01, 0.25, 0.03125, 0.25, 0.125), method = "ML"),
  list(yi = c(0, 0, 0, 0, 0, 0, 1), vi = c(0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.125), x = c(0, 0, 0, 0, 0, 1, 0),
       method = "REML"))
for (i in seq_along(nonconv)) {
  nc <- nonconv[[i]]
  if (is.null(nc$x)) {
    r <- try(rma(nc$yi, nc$vi, method = nc$method, control = CTRL), silent = TRUE)  # metafor::rma.uni -> error
    r_default <- try(rma(nc$yi, nc$vi, method = nc$method), silent = TRUE)         # and with its default control
    # the estimators our error message suggests instead
    nc$PM_tau2 <- rma(nc$yi, nc$vi, method = "PM", control = CTRL)$tau2            # metafor::rma.uni
    nc$DL_tau2 <- rma(nc$yi, nc$vi, method = "DL")$tau2                            # metafor::rma.uni
  } else {
    r <- try(rma(nc$yi, nc$vi, mods = ~ nc$x, method = nc$method, control = CTRL), silent = TRUE)  # -> error
    r_default <- try(rma(nc$yi, nc$vi, mods = ~ nc$x, method = nc$method), silent = TRUE)
    nc$PM_tau2 <- rma(nc$yi, nc$vi, mods = ~ nc$x, method = "PM", control = CTRL)$tau2  # metafor::rma.uni
    nc$DL_tau2 <- rma(nc$yi, nc$vi, mods = ~ nc$x, method = "DL")$tau2             # metafor::rma.uni
  }
  nc$error <- if (inherits(r, "try-error")) conditionMessage(attr(r, "condition")) else NA_character_
  # run to convergence (maxiter 10000), Fisher scoring may get there after its slow oscillation
  nc$tau2 <- if (inherits(r, "try-error")) NA_real_ else r$tau2
  nc$error_default <- if (inherits(r_default, "try-error")) conditionMessage(attr(r_default, "condition")) else NA_character_
  nonconv[[i]] <- nc
}

out <- list(
  metafor_version = as.character(packageVersion("metafor")), control = CTRL, confint_control = CI_CTRL,
  grid = list(methods = methods, tests = tests, k_ma = k1, k_mr = k2),
  data = list(ma = ma, mr = mr, mr_formula = "~ x + arm"),
  meta_analysis = cells_ma, meta_regression = cells_mr, nonconvergence = nonconv)
write_json(out, "meta_scaling.json", digits = NA, auto_unbox = TRUE, dataframe = "columns",
           pretty = FALSE, na = "null")
