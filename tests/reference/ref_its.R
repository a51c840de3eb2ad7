# Reference values for scaleup_analysis.rollout.its (tests/test_its.py).
# Segmented regression y = b0 + b1 t + b2 post + b3 (t - T0) post (Bernal et al. 2017), fitted with
#   lm() + sandwich::NeweyWest(prewhite = FALSE, adjust = FALSE)   (errors = "newey-west")
#   lm() + vcov()                                                   (errors = "ols")
#   nlme::gls(correlation = corAR1(form = ~ time), method = "REML") (errors = "ar1")
# a hand-written panel Newey-West meat for the controlled series, and metafor::rma(method = "DL")
# for pooling site estimates. Run from tests/reference/:  Rscript ref_its.R
suppressPackageStartupMessages({library(jsonlite); library(sandwich); library(nlme); library(metafor)})

nw_lag <- function(n) floor(4 * (n / 100)^(2 / 9))       # Newey & West (1994) rule of thumb

design <- function(d, t0, season = NULL) {
  d$level_change <- as.numeric(d$time >= t0)
  d$slope_change <- (d$time - t0) * d$level_change
  if (!is.null(season)) { d$sin1 <- sin(2 * pi * d$time / season); d$cos1 <- cos(2 * pi * d$time / season) }
  d
}

set.seed(20261123)
n <- 48; t0 <- 25; tt <- 1:n
e <- as.numeric(arima.sim(list(ar = 0.5), n, sd = 1))
single <- data.frame(time = tt, y = 20 + 0.1 * tt - 4 * (tt >= t0) + 0.3 * (tt - t0) * (tt >= t0) + e)
e2 <- as.numeric(arima.sim(list(ar = 0.3), n, sd = 0.8))
seasonal <- data.frame(time = tt, y = 50 + 0.2 * tt + 2 * sin(2 * pi * tt / 12) - 1 * cos(2 * pi * tt / 12)
                       - 3 * (tt >= t0) - 0.2 * (tt - t0) * (tt >= t0) + e2)

fit_single <- function(d, t0, errors, season = NULL, horizons = c(0, 6, 12)) {
  d <- design(d, t0, season)
  f <- if (is.null(season)) y ~ time + level_change + slope_change else
    y ~ time + level_change + slope_change + sin1 + cos1
  out <- list()
  if (errors == "ar1") {
    g <- gls(f, data = d, correlation = corAR1(form = ~ time), method = "REML")
    b <- coef(g); V <- vcov(g)
    out$rho <- unname(coef(g$modelStruct$corStruct, unconstrained = FALSE))
  } else {
    m <- lm(f, data = d)
    b <- coef(m)
    V <- if (errors == "ols") vcov(m) else NeweyWest(m, lag = nw_lag(nrow(d)), prewhite = FALSE, adjust = FALSE)
    out$maxlags <- nw_lag(nrow(d))
  }
  out$terms <- c("intercept", names(b)[-1]); out$estimate <- unname(b); out$se <- unname(sqrt(diag(V)))
  # effects at horizons h: effect = b2 + b3 h; counterfactual = b0 + b1 (t0 + h) [+ season];
  # relative effect = effect / counterfactual, delta-method SE
  eff <- list()
  for (h in horizons) {
    th <- t0 + h
    a <- setNames(rep(0, length(b)), names(b)); a["level_change"] <- 1; a["slope_change"] <- h
    cvec <- setNames(rep(0, length(b)), names(b)); cvec["(Intercept)"] <- 1; cvec["time"] <- th
    if (!is.null(season)) { cvec["sin1"] <- sin(2 * pi * th / season); cvec["cos1"] <- cos(2 * pi * th / season) }
    ef <- sum(a * b); cf <- sum(cvec * b)
    gr <- a / cf - ef / cf^2 * cvec
    eff[[length(eff) + 1]] <- list(horizon = h, effect = ef, se = sqrt(drop(t(a) %*% V %*% a)),
                                   counterfactual = cf, relative_effect = ef / cf,
                                   relative_se = sqrt(drop(t(gr) %*% V %*% gr)))
  }
  out$effects <- eff
  out
}

cells <- list()
for (err in c("ols", "newey-west", "ar1")) {
  cells[[length(cells) + 1]] <- c(list(dataset = "single", errors = err), fit_single(single, t0, err))
  cells[[length(cells) + 1]] <- c(list(dataset = "seasonal", errors = err), fit_single(seasonal, t0, err, season = 12))
}

# ---- controlled ITS: treated and control series (control = 1 flags the control rows) ------
set.seed(11)
nc <- 40; t0c <- 21; tc <- 1:nc
ctrl <- data.frame(time = tc, control = 1, y = 30 + 0.15 * tc - 1 * (tc >= t0c) + rnorm(nc))
trt <- data.frame(time = tc, control = 0, y = 32 + 0.15 * tc - 5 * (tc >= t0c) - 0.2 * (tc - t0c) * (tc >= t0c) + rnorm(nc))
controlled <- rbind(trt, ctrl)
fit_controlled <- function(d, t0, errors) {
  d <- d[order(d$control, d$time), ]          # treated series first, then control, by time
  d$z <- 1 - d$control
  d$post <- as.numeric(d$time >= t0); d$time_since <- (d$time - t0) * d$post
  d$treated <- d$z; d$treated_time <- d$z * d$time
  d$level_change <- d$z * d$post; d$slope_change <- d$z * d$time_since
  m <- lm(y ~ time + post + time_since + treated + treated_time + level_change + slope_change, data = d)
  X <- model.matrix(m); u <- residuals(m); L <- nw_lag(sum(d$control == 0))
  if (errors == "ols") V <- vcov(m) else {
    # panel Newey-West: Bartlett-weighted autocovariances of the scores within each series
    meat <- matrix(0, ncol(X), ncol(X))
    for (s in unique(d$control)) {
      i <- which(d$control == s); S <- X[i, , drop = FALSE] * u[i]
      meat <- meat + crossprod(S)
      for (j in seq_len(L)) {
        G <- crossprod(S[(j + 1):nrow(S), , drop = FALSE], S[1:(nrow(S) - j), , drop = FALSE])
        meat <- meat + (1 - j / (L + 1)) * (G + t(G))
      }
    }
    bread <- solve(crossprod(X)); V <- bread %*% meat %*% bread
  }
  list(terms = c("intercept", names(coef(m))[-1]), estimate = unname(coef(m)),
       se = unname(sqrt(diag(V))), maxlags = L)
}
for (err in c("ols", "newey-west"))
  cells[[length(cells) + 1]] <- c(list(dataset = "controlled", errors = err), fit_controlled(controlled, t0c, err))

# ---- multi-site: one model per site (site-specific T0), DerSimonian-Laird pooling --------
set.seed(5)
sites <- sprintf("%02d", 1:6); nt <- 30
multisite <- do.call(rbind, lapply(seq_along(sites), function(k) {
  t0k <- 12 + k; lk <- -3 + rnorm(1, 0, 1); sk <- 0.2 + rnorm(1, 0, 0.1)
  data.frame(site = sites[k], time = 1:nt, t0 = t0k,
             y = 15 + 0.1 * (1:nt) + lk * ((1:nt) >= t0k) + sk * ((1:nt) - t0k) * ((1:nt) >= t0k) + rnorm(nt))
}))
for (err in c("ols", "newey-west")) {
  per <- lapply(sites, function(s) {
    d <- multisite[multisite$site == s, ]; r <- fit_single(d, d$t0[1], err, horizons = 0)
    list(level = r$estimate[3], level_se = r$se[3], slope = r$estimate[4], slope_se = r$se[4])
  })
  pooled <- list()
  for (term in c("level", "slope")) {
    yi <- sapply(per, `[[`, term); sei <- sapply(per, `[[`, paste0(term, "_se"))
    r <- rma(yi = yi, sei = sei, method = "DL")
    pooled[[paste0(term, "_change")]] <- list(estimate = as.numeric(r$b), se = r$se, tau2 = r$tau2,
                                              I2 = r$I2, Q = r$QE, site_estimates = yi, site_se = sei)
  }
  cells[[length(cells) + 1]] <- list(dataset = "multisite", errors = err, pooled = pooled)
}

out <- list(datasets = list(single = single, seasonal = seasonal, controlled = controlled,
                            multisite = multisite),
            t0 = list(single = t0, seasonal = t0, controlled = t0c),
            cells = cells)
write_json(out, "its.json", digits = NA, auto_unbox = TRUE, dataframe = "columns")
message("wrote its.json with ", length(cells), " cells")
