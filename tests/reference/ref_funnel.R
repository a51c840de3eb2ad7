# Reference values for scaleup_analysis.monitoring.funnel (institutional_funnel).
# Run from tests/reference/:  Rscript ref_funnel.R   -> writes funnel.json
# Needs jsonlite only: FunnelPlotR is not packaged for Debian, so the formulas of Spiegelhalter
# (2005a, Stat Med 24:1185, appendix A: exact limits interpolated between counts; 2005b, QSHC
# 14:347: z-scores, Winsorised/truncated phi, multiplicative and additive (DerSimonian-Laird)
# over-dispersion) are written out below, in base R (qbinom/pbinom, qpois/ppois, quantile type 7).
# The SHMI variant (log transform, 10 % truncation, additive tau2 with weights = expected) gives
# FunnelPlotR's formula for SR/SHMI: tau2 = (N phi - (N - 1)) / (sum(E) - sum(E^2) / sum(E)).
#
# Datasets (written with their data):
#   hand6:  6 sites, events / individuals (a hand-built small study);
#   prop60: 60 sites, binomial with a logit-normal site effect (sd 0.3): over-dispersed proportions;
#   rate40: 40 units, Poisson events over person-years with a gamma site effect: rates;
#   ratio50: 50 units, observed events and non-integer expected events (sum of patient risks) with
#            two planted outliers: indirectly standardised ratios (target 1);
#   mean30: 30 units x 3 periods of (n, mean, sd) rows with one planted high unit (M05): means, the
#            standard error sigma / sqrt(n) with sigma the pooled within-unit SD.
# For each dataset x option set: target, z, phi, phi_df, phi_pvalue, tau2, z_adjusted, the four
# limits used, the signal, and funnel_limits() on a grid of precisions (adjusted and unadjusted).
suppressPackageStartupMessages(library(jsonlite))

f <- function(tr, y) switch(tr, none = y, arcsine = asin(sqrt(y)), sqrt = sqrt(y), log = log(y))
finv <- function(tr, kind, u) switch(tr,
  arcsine = sin(pmin(pmax(u, 0), pi / 2))^2, sqrt = pmax(u, 0)^2, log = exp(u),
  none = if (kind == "mean") u else if (kind == "proportion") pmin(pmax(u, 0), 1) else pmax(u, 0))
sdw <- NA  # pooled within-unit SD of a mean (set by funnel() for kind = "mean")
se <- function(tr, kind, theta, rho) {
  if (tr %in% c("arcsine", "sqrt")) return(1 / (2 * sqrt(rho)))
  if (tr == "log") return(1 / sqrt(theta * rho))
  if (kind == "mean") return(sdw / sqrt(rho))
  if (kind == "proportion") sqrt(theta * (1 - theta) / rho) else sqrt(theta / rho)
}
# Spiegelhalter (2005a) A.1.1: r_p = smallest r with F(r) >= p; alpha = (F(r_p) - p) / (F(r_p) - F(r_p - 1)).
exact_lim <- function(kind, theta, rho, p) {
  if (kind == "proportion") {
    r <- qbinom(p, rho, theta); Fr <- pbinom(r, rho, theta); Fm <- pbinom(r - 1, rho, theta)
  } else {
    r <- qpois(p, theta * rho); Fr <- ppois(r, theta * rho); Fm <- ppois(r - 1, theta * rho)
  }
  y <- (r - (Fr - p) / (Fr - Fm)) / rho
  # with r_p = 0 the interpolation goes below zero events: cut at the indicator's bounds
  if (kind == "proportion") pmin(pmax(y, 0), 1) else pmax(y, 0)
}
limits_at <- function(kind, tr, theta, rho, levels, sigma = NULL, exact = TRUE) {
  out <- list()
  for (j in 1:2) {
    nm <- c("alert", "alarm")[j]; lv <- levels[j]
    if (is.null(sigma) && exact) {
      lo <- exact_lim(kind, theta, rho, (1 - lv) / 2); hi <- exact_lim(kind, theta, rho, (1 + lv) / 2)
    } else {
      sd <- if (is.null(sigma)) se(tr, kind, theta, rho) else sigma
      zq <- qnorm((1 + lv) / 2)
      lo <- finv(tr, kind, f(tr, theta) - zq * sd); hi <- finv(tr, kind, f(tr, theta) + zq * sd)
    }
    out[[paste0(nm, "_low")]] <- lo; out[[paste0(nm, "_high")]] <- hi
  }
  out
}

funnel <- function(d, kind, tr, od, trim, tm, lim, levels = c(0.95, 0.998), target = NULL, mult = 1) {
  given <- !is.null(target)
  if (kind == "mean") {
    # rows (unit x period) pooled per unit: n, mean, within-unit sum of squares (rows' SDs and
    # the rows' means around the unit's mean)
    rho <- tapply(d$n, d$unit, sum)
    y <- tapply(d$n * d$mean, d$unit, sum) / rho
    ss <- tapply((d$n - 1) * d$sd^2 + d$n * (d$mean - y[d$unit])^2, d$unit, sum)
    sdw <<- sqrt(sum(ss) / (sum(rho) - length(rho)))
    theta <- if (given) target else sum(rho * y) / sum(rho)
  } else {
    r <- d$events; rho <- if (kind == "ratio") d$expected else d$n
    theta <- if (given) target else if (kind == "ratio") 1 else sum(r) / sum(rho)
    y <- r / rho
  }
  s <- se(tr, kind, theta, rho)
  z <- (f(tr, y) - f(tr, theta)) / s
  if (trim > 0) { lo <- quantile(z, trim, type = 7, names = FALSE); hi <- quantile(z, 1 - trim, type = 7, names = FALSE) }
  else { lo <- -Inf; hi <- Inf }
  trimmed <- z < lo | z > hi
  if (tm == "winsorize") { zw <- pmin(pmax(z, lo), hi); w <- 1 / s^2 }
  else { zw <- z[!trimmed]; w <- 1 / s[!trimmed]^2 }
  N <- length(zw)
  phi <- sum(zw^2) / N
  df <- N - if (given) 0 else 1
  tau2 <- max(0, (N * phi - (N - 1)) / (sum(w) - sum(w^2) / sum(w)))
  adjusted <- (od == "additive" && tau2 > 0) || (od == "multiplicative" && phi > 1)
  sig_fun <- function(rr) {
    s0 <- se(tr, kind, theta, rr)
    if (od == "multiplicative") s0 * sqrt(max(phi, 1)) else sqrt(s0^2 + tau2)
  }
  sigma <- if (adjusted) sig_fun(rho) else NULL
  zadj <- if (adjusted) (f(tr, y) - f(tr, theta)) / sigma else z
  L <- limits_at(kind, tr, theta, rho, levels, sigma, lim == "exact")
  value <- y * mult
  signal <- rep("within", length(y))
  signal[value < L$alert_low * mult] <- "below_alert"
  signal[value > L$alert_high * mult] <- "above_alert"
  signal[value < L$alarm_low * mult] <- "below_alarm"
  signal[value > L$alarm_high * mult] <- "above_alarm"
  grid <- if (kind %in% c("proportion", "mean")) c(5, 20, 50, 137, 400, 1500) else c(0.7, 3.3, 12.5, 48, 260, 1900)
  Gu <- limits_at(kind, tr, theta, grid, levels, NULL, lim == "exact")
  Ga <- if (od == "none") Gu else limits_at(kind, tr, theta, grid, levels, sig_fun(grid), FALSE)
  mlist <- function(L) lapply(L, function(v) v * mult)
  list(options = list(kind = kind, transform = tr, overdispersion = od, trim = trim, trim_method = tm,
                      limits = lim, levels = levels, target = target, multiplier = mult),
       target = theta, sd = sdw, z = unname(z), phi = phi, phi_df = df,
       phi_pvalue = if (df > 0) pchisq(N * phi, df, lower.tail = FALSE) else NA,
       tau2 = tau2, adjusted = adjusted, n_trimmed = sum(trimmed), trimmed = trimmed, z_adjusted = zadj,
       value = value, limits = mlist(L), signal = signal,
       grid = grid, grid_unadjusted = mlist(Gu), grid_adjusted = mlist(Ga))
}

set.seed(20261204)
hand6 <- data.frame(unit = c("A", "B", "C", "D", "E", "F"), events = c(12, 30, 9, 41, 20, 3),
                    n = c(100, 210, 95, 250, 160, 60))
n60 <- sample(20:2000, 60)
p60 <- plogis(-2 + rnorm(60, 0, 0.3))
prop60 <- data.frame(unit = sprintf("S%02d", 1:60), events = rbinom(60, n60, p60), n = n60)
t40 <- round(runif(40, 50, 6000), 1)
rate40 <- data.frame(unit = sprintf("U%02d", 1:40), events = rpois(40, t40 * 0.012 * rgamma(40, 8, 8)), n = t40)
e50 <- round(runif(50, 2, 300), 3)
o50 <- rpois(50, e50 * rgamma(50, 20, 20))
o50[c(7, 31)] <- round(c(2.1, 0.45) * e50[c(7, 31)])
ratio50 <- data.frame(unit = sprintf("H%02d", 1:50), events = o50, expected = e50)
# mean30: 30 units x 3 periods of (n, mean, sd) rows, e.g. a satisfaction score; unit effects sd 0.4
u30 <- rnorm(30, 0, 0.4); u30[5] <- 2.5
mean30 <- data.frame(unit = rep(sprintf("M%02d", 1:30), each = 3), period = rep(1:3, 30))
mean30$n <- sample(3:120, 90, replace = TRUE)
mean30$mean <- round(7 + u30[as.integer(factor(mean30$unit))] + rnorm(90, 0, 2 / sqrt(mean30$n)), 4)
mean30$sd <- round(2 * sqrt(rchisq(90, mean30$n - 1) / (mean30$n - 1)), 4)

cases <- list()
add <- function(name, d, kind, tr, od, trim = 0.1, tm = "winsorize", lim = "exact", target = NULL, mult = 1) {
  key <- paste(name, kind, tr, od, trim, tm, lim, if (is.null(target)) "pooled" else target, mult, sep = "|")
  cases[[key]] <<- c(list(dataset = name), funnel(d, kind, tr, od, trim, tm, lim, target = target, mult = mult))
}
for (tr in c("none", "arcsine")) for (od in c("none", "additive", "multiplicative"))
  for (tm in c("winsorize", "truncate")) for (lim in c("exact", "normal")) {
    add("hand6", hand6, "proportion", tr, od, tm = tm, lim = lim)
    add("prop60", prop60, "proportion", tr, od, tm = tm, lim = lim)
  }
add("prop60", prop60, "proportion", "arcsine", "additive", target = 0.1, mult = 100)
add("prop60", prop60, "proportion", "none", "additive", trim = 0, lim = "normal")
add("prop60", prop60, "proportion", "arcsine", "multiplicative", trim = 0.2, tm = "truncate")
for (tr in c("none", "sqrt", "log")) for (od in c("none", "additive", "multiplicative"))
  for (tm in c("winsorize", "truncate")) for (lim in c("exact", "normal")) {
    add("rate40", rate40, "rate", tr, od, tm = tm, lim = lim, mult = 1000)
    add("ratio50", ratio50, "ratio", tr, od, tm = tm, lim = lim)
  }
add("rate40", rate40, "rate", "sqrt", "additive", target = 0.015, mult = 1000)
for (od in c("none", "additive", "multiplicative")) for (tm in c("winsorize", "truncate"))
  add("mean30", mean30, "mean", "none", od, tm = tm, lim = "normal")
add("mean30", mean30, "mean", "none", "additive", target = 7.2, lim = "normal")
add("ratio50", ratio50, "ratio", "log", "additive", target = 1.1)

out <- list(meta = list(R_version = R.version.string,
                        note = "Spiegelhalter 2005a/b formulas in base R; see the header of ref_funnel.R"),
            datasets = list(hand6 = hand6, prop60 = prop60, rate40 = rate40, ratio50 = ratio50, mean30 = mean30),
            cases = unname(lapply(names(cases), function(k) c(list(key = k), cases[[k]]))))
writeLines(toJSON(out, digits = I(15), auto_unbox = TRUE, null = "null", na = "null"), "funnel.json")
cat("cases:", length(cases), "\n")
