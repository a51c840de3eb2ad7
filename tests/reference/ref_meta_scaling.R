# Reference values for the O(k p^2) engine of meta_analysis / meta_regression (heterogeneity/_tau2.py)
# at sizes beyond the small worked examples of ref_meta.R, and for data on which metafor's Fisher
# scoring does not converge.  Run from this folder:  Rscript ref_meta_scaling.R  -> meta_scaling.json
# Every value comes from metafor (rma.uni, confint) with its default settings; the R call is visible
# next to each stored value. The simulated inputs are stored in the JSON so the Python tests run on
# exactly the same numbers.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

num <- function(x) if (is.null(x)) NA_real_ else as.numeric(x)
methods <- c("FE", "DL", "REML", "ML", "PM", "EB", "HE", "SJ")
tests <- c("z", "knha")

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
    ci <- confint(res)$random                          # metafor::confint.rma.uni (Q-profile)
    out$tau2_ci_low <- ci["tau^2", "ci.lb"]
    out$tau2_ci_high <- ci["tau^2", "ci.ub"]
  }
  out
}

cells_ma <- list()
cells_mr <- list()
for (m in methods) {
  for (tt in tests) {
    r1 <- rma(yi, vi, data = ma, method = m, test = tt)                  # metafor::rma.uni
    cells_ma[[paste(m, tt, sep = "|")]] <- fields(r1)
    r2 <- rma(yi, vi, mods = ~ x + arm, data = mr, method = m, test = tt)  # metafor::rma.uni(mods =)
    cells_mr[[paste(m, tt, sep = "|")]] <- fields(r2)
  }
}

# ---- data on which Fisher scoring does not converge ---------------------------------------------------
# (found by hypothesis in tests/test_properties.py and by a seeded search over the same strategy)
nonconv <- list(
  list(yi = c(1, 0, 0, 0, 0), vi = c(0.03125, 0.5, 0.5, 0.5, 0.5), method = "REML"),
  list(yi = c(-0.5, -2.0, -0.5, 0.5, -0.5), vi = c(0.01, 0.25, 0.03125, 0.25, 0.125), method = "ML"),
  list(yi = c(0, 0, 0, 0, 0, 0, 1), vi = c(0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.125), x = c(0, 0, 0, 0, 0, 1, 0),
       method = "REML"))
for (i in seq_along(nonconv)) {
  nc <- nonconv[[i]]
  if (is.null(nc$x)) {
    r <- try(rma(nc$yi, nc$vi, method = nc$method), silent = TRUE)                 # metafor::rma.uni -> error
    # the estimators our error message suggests instead
    nc$PM_tau2 <- rma(nc$yi, nc$vi, method = "PM")$tau2                            # metafor::rma.uni
    nc$DL_tau2 <- rma(nc$yi, nc$vi, method = "DL")$tau2                            # metafor::rma.uni
  } else {
    r <- try(rma(nc$yi, nc$vi, mods = ~ nc$x, method = nc$method), silent = TRUE)  # metafor::rma.uni -> error
    nc$PM_tau2 <- rma(nc$yi, nc$vi, mods = ~ nc$x, method = "PM")$tau2             # metafor::rma.uni
    nc$DL_tau2 <- rma(nc$yi, nc$vi, mods = ~ nc$x, method = "DL")$tau2             # metafor::rma.uni
  }
  nc$error <- if (inherits(r, "try-error")) conditionMessage(attr(r, "condition")) else NA_character_
  nonconv[[i]] <- nc
}

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  grid = list(methods = methods, tests = tests, k_ma = k1, k_mr = k2),
  data = list(ma = ma, mr = mr, mr_formula = "~ x + arm"),
  meta_analysis = cells_ma, meta_regression = cells_mr, nonconvergence = nonconv)
write_json(out, "meta_scaling.json", digits = NA, auto_unbox = TRUE, dataframe = "columns",
           pretty = FALSE, na = "null")
