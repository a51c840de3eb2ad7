# Reference values for scaleup_analysis.rollout.stepped_wedge (tests/test_stepped_wedge.py).
# Power: Var(theta) of the GLS estimator with period fixed effects and a random cluster intercept,
# computed from the full stacked design with a block-diagonal covariance (base R), and Hussey &
# Hughes' (2007) closed form for complete designs with equal cluster sizes. Two-sided power
# pnorm(|theta|/se - z) + pnorm(-|theta|/se - z); detectable effect by uniroot().
# Analysis: lmerTest::lmer(y ~ factor(period) + treatment + (1 | cluster)) on simulated data, and
# with a cluster x period random effect: + (1 | cluster:period) (three data sets, REML and ML).
# Run from tests/reference/:  Rscript ref_stepped_wedge.R
suppressPackageStartupMessages({library(jsonlite); library(lme4); library(lmerTest)})

sw_matrix <- function(per_step, baseline = 1) {
  S <- length(per_step); Tn <- baseline + S
  step <- rep(seq_len(S), per_step)
  outer(step, seq_len(Tn), function(s, j) as.numeric(j >= baseline + s))
}
designs <- list(
  hh24   = list(X = sw_matrix(rep(6, 4))),
  rss18  = list(X = sw_matrix(rep(3, 6))),
  uneven = list(X = sw_matrix(c(4, 3, 3), baseline = 2))
)
# incomplete: rss18 without cluster-periods more than 2 periods before the crossover
Xi <- designs$rss18$X; step <- rep(1:6, each = 3)
for (i in 1:18) for (j in 1:7) if (j < 1 + step[i] - 2) Xi[i, j] <- NA
designs$incomplete <- list(X = Xi)
designs$unequal_m <- list(X = designs$rss18$X, m = rep(c(8, 15, 30), 6))

gls_var <- function(X, vmean, tau2) {           # vmean: I x T matrix of sigma2/m + gamma2
  I <- nrow(X); Tn <- ncol(X)
  rows <- list(); Vs <- list()
  for (i in 1:I) {
    o <- which(!is.na(X[i, ]))
    D <- matrix(0, length(o), Tn + 1); D[cbind(seq_along(o), o)] <- 1; D[, Tn + 1] <- X[i, o]
    rows[[i]] <- D
    Vs[[i]] <- diag(vmean[i, o], length(o)) + tau2
  }
  D <- do.call(rbind, rows)
  V <- as.matrix(Matrix::bdiag(Vs))
  solve(t(D) %*% solve(V) %*% D)[Tn + 1, Tn + 1]
}
hh_closed <- function(X, s2, tau2) {            # Hussey & Hughes (2007), eq. 8
  I <- nrow(X); Tn <- ncol(X); U <- sum(X); W <- sum(colSums(X)^2); V <- sum(rowSums(X)^2)
  I * s2 * (s2 + Tn * tau2) / ((I * U - W) * s2 + (U^2 + I * Tn * U - Tn * W - I * V) * tau2)
}
pow2 <- function(eff, se, alpha = 0.05) { z <- qnorm(1 - alpha / 2); pnorm(abs(eff) / se - z) + pnorm(-abs(eff) / se - z) }

options <- list(
  continuous = list(outcome = "continuous", effect = 0.25, sigma2 = 1, icc = 0.05, m = 20, gamma2 = 0),
  continuous_cp = list(outcome = "continuous", effect = 0.25, sigma2 = 1, icc = 0.05, m = 20, gamma2 = 0.01),
  binary = list(outcome = "binary", effect = -0.03, p0 = 0.10, tau2 = 0.02^2, m = 50, gamma2 = 0)
)
cells <- list()
for (dn in names(designs)) for (on in names(options)) {
  X <- designs[[dn]]$X; o <- options[[on]]
  m <- if (!is.null(designs[[dn]]$m)) designs[[dn]]$m else o$m
  M <- matrix(m, nrow(X), ncol(X))            # per-cluster sizes recycle down the rows
  var_for <- function(eff) {
    if (o$outcome == "binary") { pb <- o$p0 + eff / 2; s2 <- pb * (1 - pb); t2 <- o$tau2 }
    else { s2 <- o$sigma2; t2 <- s2 * o$icc / (1 - o$icc) }
    list(v = gls_var(X, s2 / M + o$gamma2, t2), s2 = s2, t2 = t2)
  }
  r <- var_for(o$effect)
  se <- sqrt(r$v)
  de <- uniroot(function(d) pow2(d, sqrt(var_for(sign(o$effect) * d)$v)) - 0.8,
                c(1e-8, if (o$outcome == "binary") 0.0999 else 5), tol = 1e-13)$root
  closed <- if (!anyNA(X) && length(unique(m)) == 1) hh_closed(X, r$s2 / m + o$gamma2, r$t2) else NULL
  cells[[length(cells) + 1]] <- list(design = dn, option = on, variance = r$v,
    variance_closed_form = closed, power = pow2(o$effect, se), se = se, detectable_effect = de,
    sigma2 = r$s2, tau2 = r$t2)
}

# ---- analysis: simulated cross-sectional stepped-wedge data, 18 clusters x 7 periods ------
set.seed(20261123)
X <- designs$rss18$X; I <- nrow(X); Tn <- ncol(X); msz <- 12
sim <- do.call(rbind, lapply(1:I, function(i) do.call(rbind, lapply(1:Tn, function(j)
  data.frame(cluster = sprintf("c%02d", i), period = j, treatment = X[i, j], row = seq_len(msz))))))
a <- rnorm(I, 0, 0.4); names(a) <- sprintf("c%02d", 1:I)
sim$y <- round(10 + 0.15 * sim$period + 0.5 * sim$treatment + a[sim$cluster] + rnorm(nrow(sim)), 3)
sim$row <- NULL
analysis <- list()
for (reml in c(TRUE, FALSE)) {
  f <- lmer(y ~ factor(period) + treatment + (1 | cluster), data = sim, REML = reml)
  co <- summary(f)$coefficients["treatment", ]
  vc <- as.data.frame(VarCorr(f))
  analysis[[if (reml) "REML" else "ML"]] <- list(estimate = unname(co["Estimate"]), se = unname(co["Std. Error"]),
    df = unname(co["df"]), p_value = unname(co[["Pr(>|t|)"]]), tau2 = vc$vcov[1], sigma2 = vc$vcov[2])
}

# ---- analysis with a cluster x period random effect (Hooper et al. 2016 / Girling & Hemming 2016
# "nested exchangeable" model): lmerTest::lmer(y ~ factor(period) + treatment + (1 | cluster) +
# (1 | cluster:period)), REML and ML, on three simulated data sets:
#   complete   - rss18 schedule (18 clusters x 7 periods), 10 individuals per cluster-period;
#   incomplete - the incomplete rss18 schedule, unequal cluster-period sizes (2 to 14);
#   singular   - uneven schedule (10 clusters x 5 periods), no true cluster-period effect; the first
#                seed from 1 for which both fits are singular (gamma2 estimated at 0, isSingular()).
# Each cell holds the default lmer() fit and, under "tight", the same fit with BOBYQA run to
# rhoend = 1e-12 (lme4's default nloptwrap stops at xtol_abs = 1e-8 on theta, which leaves ~1e-5
# relative noise in flat directions of the likelihood; the tight fit shows where the optimum is).
simulate_nested <- function(X, sizes, tau, gamma, sigma, effect = 0.5) {
  I <- nrow(X); Tn <- ncol(X)
  a <- rnorm(I, 0, tau)
  g <- matrix(rnorm(I * Tn, 0, gamma), I, Tn)
  rows <- list()
  for (i in 1:I) for (j in 1:Tn) if (!is.na(X[i, j])) {
    m <- sizes[i, j]
    rows[[length(rows) + 1]] <- data.frame(cluster = sprintf("c%02d", i), period = j,
      treatment = X[i, j],
      y = round(10 + 0.15 * j + effect * X[i, j] + a[i] + g[i, j] + rnorm(m, 0, sigma), 3))
  }
  do.call(rbind, rows)
}
fit_nested <- function(dat, reml, control = lmerControl()) {
  f <- lmer(y ~ factor(period) + treatment + (1 | cluster) + (1 | cluster:period), data = dat, REML = reml,
            control = control)
  co <- summary(f)$coefficients                      # lmerTest: Satterthwaite df
  vc <- as.data.frame(VarCorr(f))
  tau2 <- vc$vcov[vc$grp == "cluster"]; gamma2 <- vc$vcov[vc$grp == "cluster:period"]
  sigma2 <- vc$vcov[vc$grp == "Residual"]
  est <- unname(co["treatment", "Estimate"]); se <- unname(co["treatment", "Std. Error"])
  df <- unname(co["treatment", "df"])
  list(estimate = est, se = se, df = df, p_value = unname(co["treatment", "Pr(>|t|)"]),
       ci_low = est - qt(0.975, df) * se, ci_high = est + qt(0.975, df) * se,
       tau2 = tau2, gamma2 = gamma2, sigma2 = sigma2,
       icc = (tau2 + gamma2) / (tau2 + gamma2 + sigma2), cac = tau2 / (tau2 + gamma2),
       loglik = as.numeric(logLik(f)), singular = isSingular(f), nobs = nobs(f),
       theta = as.list(getME(f, "theta")),
       fixed = list(term = rownames(co), estimate = unname(co[, "Estimate"]),
                    se = unname(co[, "Std. Error"]), df = unname(co[, "df"])))
}
set.seed(42)
nested_data <- list()
nested_data$complete <- simulate_nested(designs$rss18$X, matrix(10, 18, 7), tau = 0.5, gamma = 0.35, sigma = 1)
set.seed(43)
nested_data$incomplete <- simulate_nested(designs$incomplete$X,
  matrix(sample(2:14, 18 * 7, replace = TRUE), 18, 7), tau = 0.4, gamma = 0.25, sigma = 1)
for (s in 1:200) {
  set.seed(s)
  dat <- simulate_nested(designs$uneven$X, matrix(8, 10, 5), tau = 0.4, gamma = 0, sigma = 1)
  if (isSingular(lmer(y ~ factor(period) + treatment + (1 | cluster) + (1 | cluster:period), data = dat, REML = TRUE)) &&
      isSingular(lmer(y ~ factor(period) + treatment + (1 | cluster) + (1 | cluster:period), data = dat, REML = FALSE))) break
}
nested_singular_seed <- s
nested_data$singular <- dat
nested <- list()
for (dn in names(nested_data)) for (reml in c(TRUE, FALSE))
  nested[[length(nested) + 1]] <- c(list(dataset = dn, method = if (reml) "REML" else "ML"),
                                    fit_nested(nested_data[[dn]], reml),
                                    list(tight = fit_nested(nested_data[[dn]], reml,
                                      lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))))

# logLik of the Hussey & Hughes fits above (same calls as in `analysis`)
hh_loglik <- list()
for (reml in c(TRUE, FALSE))
  hh_loglik[[if (reml) "REML" else "ML"]] <- as.numeric(logLik(lmer(y ~ factor(period) + treatment + (1 | cluster),
                                                                    data = sim, REML = reml)))

out <- list(designs = lapply(designs, function(d) list(X = d$X, m = d$m)),
            options = options, cells = cells, analysis_data = sim, analysis = analysis,
            nested_data = nested_data, nested_singular_seed = nested_singular_seed, nested = nested,
            hh_loglik = hh_loglik)
write_json(out, "stepped_wedge.json", digits = NA, auto_unbox = TRUE, na = "null", null = "null",
           matrix = "rowmajor", dataframe = "columns")
message("wrote stepped_wedge.json with ", length(cells), " power cells and ", length(nested), " nested-model cells")
