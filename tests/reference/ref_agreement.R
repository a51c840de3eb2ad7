# Reference values for scaleup_analysis.agreement (rater agreement: ICC, Cohen's kappa).
# Run from tests/reference/:  Rscript ref_agreement.R   -> writes agreement.json
# Needs psych, lme4, jsonlite.
#
# Grid written to agreement.json
#   icc:        datasets sf (Shrout & Fleiss 1979 table, 6 x 4), sim20x3 (simulated, seed 20261123),
#               gleser (psych::Gleser, 12 x 12) x ICC1..ICC3k x {icc, F, df1, df2, p, lower, upper}
#               from psych::ICC(x, lmer = FALSE): the exact ANOVA mean-square estimator of
#               Shrout & Fleiss. psych's default (lmer = TRUE) rebuilds the same mean squares from
#               lme4 variance components and so only agrees to the optimizer tolerance (~1e-6);
#               those values are stored too ("psych_lmer") for information.
#   icc_mixed:  datasets sf_missing (sf with 3 cells deleted), sim25x5_missing (simulated, ~25% of
#               cells missing): lme4::lmer REML variance components of the crossed model
#               rating ~ 1 + (1|target) + (1|rater) and of the one-way model rating ~ 1 + (1|target),
#               plus the ICCs computed from them with the formulas documented in agreement.py.
#   cohen_kappa: datasets table10 (SAS / statsmodels 3x3 example), sim60x4 (simulated 4-category
#               ordinal ratings) x weights {none, linear, quadratic}: psych::cohen.kappa.
suppressPackageStartupMessages({
  library(psych)
  library(lme4)
  library(jsonlite)
})

out <- list(
  meta = list(
    R_version = R.version.string,
    psych_version = as.character(packageVersion("psych")),
    lme4_version = as.character(packageVersion("lme4"))
  )
)

wide_to_long <- function(x) {
  x <- as.matrix(x)
  data.frame(
    target = rep(seq_len(nrow(x)), times = ncol(x)),
    rater = rep(seq_len(ncol(x)), each = nrow(x)),
    rating = as.vector(x)
  )
}

icc_table <- function(res) {
  r <- res$results
  rows <- list()
  for (i in seq_len(nrow(r))) {
    rows[[r$type[i]]] <- list(
      icc = r$ICC[i], F = r$F[i], df1 = r$df1[i], df2 = r$df2[i], p = r$p[i],
      lower = r[["lower bound"]][i], upper = r[["upper bound"]][i]
    )
  }
  rows
}

# ---------------------------------------------------------------- ICC (complete, balanced) ---------
# Shrout & Fleiss (1979) Table 2: 6 targets x 4 judges (the example in ?psych::ICC).
sf <- matrix(c(9, 2, 5, 8,
               6, 1, 3, 2,
               8, 4, 6, 8,
               7, 1, 2, 6,
               10, 5, 6, 9,
               6, 2, 4, 7), ncol = 4, byrow = TRUE)

set.seed(20261123)
n_t <- 20; n_r <- 3
sim20x3 <- outer(rnorm(n_t, 0, 2), rnorm(n_r, 0, 0.7), "+") + 10 +
  matrix(rnorm(n_t * n_r, 0, 1), n_t, n_r)
sim20x3 <- round(sim20x3, 3)

data(Gleser, package = "psych")
gleser <- as.matrix(Gleser)   # 12 persons x 12 judge/item conditions (psych bundled data)

icc_data <- list(sf = sf, sim20x3 = sim20x3, gleser = gleser)
out$icc <- list()
for (nm in names(icc_data)) {
  x <- icc_data[[nm]]
  res95 <- psych::ICC(x, lmer = FALSE)                 # alpha = 0.05 -> 95% bounds
  res90 <- psych::ICC(x, lmer = FALSE, alpha = 0.10)   # 90% bounds
  res_lmer <- psych::ICC(x)                            # psych default (lmer = TRUE)
  out$icc[[nm]] <- list(
    data = wide_to_long(x),
    level95 = icc_table(res95),
    level90 = icc_table(res90),
    psych_lmer = icc_table(res_lmer)
  )
}

# ---------------------------------------------------------------- ICC from variance components ----
icc_from_vc <- function(d) {
  d$target <- factor(d$target); d$rater <- factor(d$rater)
  m2 <- lme4::lmer(rating ~ 1 + (1 | target) + (1 | rater), data = d, REML = TRUE,
                   control = lmerControl(optimizer = "bobyqa",
                                         optCtrl = list(rhobeg = 2e-4, rhoend = 2e-10)))
  vc2 <- as.data.frame(lme4::VarCorr(m2))
  s2_t <- vc2$vcov[vc2$grp == "target"]
  s2_r <- vc2$vcov[vc2$grp == "rater"]
  s2_e <- vc2$vcov[vc2$grp == "Residual"]
  m1 <- lme4::lmer(rating ~ 1 + (1 | target), data = d, REML = TRUE,
                   control = lmerControl(optimizer = "bobyqa",
                                         optCtrl = list(rhobeg = 2e-4, rhoend = 2e-10)))
  vc1 <- as.data.frame(lme4::VarCorr(m1))
  s2_t1 <- vc1$vcov[vc1$grp == "target"]
  s2_w <- vc1$vcov[vc1$grp == "Residual"]
  k <- 1 / mean(1 / as.numeric(table(d$target)))   # harmonic mean of ratings per target
  list(
    data = d,
    crossed = list(var_target = s2_t, var_rater = s2_r, var_residual = s2_e,
                   intercept = unname(lme4::fixef(m2)[1]),
                   reml_deviance = unname(lme4::REMLcrit(m2))),
    oneway = list(var_target = s2_t1, var_residual = s2_w,
                  intercept = unname(lme4::fixef(m1)[1]),
                  reml_deviance = unname(lme4::REMLcrit(m1))),
    k = k,
    icc = list(
      ICC1 = s2_t1 / (s2_t1 + s2_w),
      ICC2 = s2_t / (s2_t + s2_r + s2_e),
      ICC3 = s2_t / (s2_t + s2_e),
      ICC1k = s2_t1 / (s2_t1 + s2_w / k),
      ICC2k = s2_t / (s2_t + (s2_r + s2_e) / k),
      ICC3k = s2_t / (s2_t + s2_e / k)
    )
  )
}

sf_long <- wide_to_long(sf)
sf_missing <- sf_long[-c(3, 10, 20), ]      # delete 3 of the 24 cells

set.seed(777)
n_t <- 25; n_r <- 5
d <- expand.grid(target = seq_len(n_t), rater = seq_len(n_r))
u_t <- rnorm(n_t, 0, 1.5); u_r <- rnorm(n_r, 0, 0.8)
d$rating <- round(50 + u_t[d$target] + u_r[d$rater] + rnorm(nrow(d), 0, 1), 2)
keep <- runif(nrow(d)) > 0.25
sim25x5_missing <- d[keep, ]

out$icc_mixed <- list(
  sf_missing = icc_from_vc(sf_missing),
  sim25x5_missing = icc_from_vc(sim25x5_missing)
)

# ---------------------------------------------------------------- Cohen's kappa -------------------
# psych::cohen.kappa reports the Fleiss, Cohen & Everitt (1969) large-sample variance.
# Its weight matrix holds agreement weights; linear: 1 - |i-j|/(k-1); quadratic: 1 - (i-j)^2/(k-1)^2
# (psych's default w is the quadratic one).
agree_w <- function(k, power) {
  w <- abs(outer(seq_len(k), seq_len(k), "-"))^power
  1 - w / (k - 1)^power
}
kappa_entry <- function(x, k, power, levels) {
  res <- if (is.null(power)) psych::cohen.kappa(x, levels = levels)
         else psych::cohen.kappa(x, w = agree_w(k, power), levels = levels)
  list(kappa = res$kappa, var_kappa = res$var.kappa,
       weighted_kappa = res$weighted.kappa, var_weighted = res$var.weighted,
       lower = res$confid[, "lower"], upper = res$confid[, "upper"], n = res$n.obs)
}

table10 <- matrix(c(0, 4, 1,
                    0, 8, 0,
                    0, 1, 5), 3, byrow = TRUE)
# expand the contingency table to one row per subject (rater 1 in rows, rater 2 in columns)
t10_raw <- data.frame(r1 = integer(0), r2 = integer(0))
for (i in 1:3) for (j in 1:3) if (table10[i, j] > 0)
  t10_raw <- rbind(t10_raw, data.frame(r1 = rep(i, table10[i, j]), r2 = rep(j, table10[i, j])))

set.seed(4242)
truth <- sample(1:4, 60, replace = TRUE, prob = c(0.2, 0.3, 0.3, 0.2))
jit <- function(v) pmin(4, pmax(1, v + sample(c(-1, 0, 0, 0, 1), length(v), replace = TRUE)))
sim60x4 <- data.frame(r1 = jit(truth), r2 = jit(truth))

kappa_data <- list(table10 = t10_raw, sim60x4 = sim60x4)
kappa_levels <- list(table10 = 1:3, sim60x4 = 1:4)
out$cohen_kappa <- list()
for (nm in names(kappa_data)) {
  x <- kappa_data[[nm]]
  lev <- kappa_levels[[nm]]
  k <- length(lev)
  out$cohen_kappa[[nm]] <- list(
    data = x,
    none = kappa_entry(x, k, NULL, lev),       # psych::cohen.kappa(x)  (unweighted part)
    linear = kappa_entry(x, k, 1, lev),        # psych::cohen.kappa(x, w = linear agreement weights)
    quadratic = kappa_entry(x, k, 2, lev)      # psych::cohen.kappa(x, w = quadratic agreement weights)
  )
}

writeLines(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, dataframe = "columns"), "agreement.json")
message("wrote agreement.json")
