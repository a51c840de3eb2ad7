# Reference values for scaleup_analysis.monitoring.equity (tests/test_equity.py).
# No R package for grouped-data SII/RII/concentration indices is installed here, so every value is
# computed below in base R, independently of the Python code:
#   SII: lm(y ~ ridit, weights = population) (weighted least squares on the ridits);
#   SE of SII: sandwich (X'WX)^-1 X'W diag(v) W X (X'WX)^-1 with the known sampling variances v;
#   RII (ratio) = predict(fit, rank 1) / predict(fit, rank 0); RII (mean) = SII / weighted.mean(y);
#   concentration index C = 2 cov_w(y, ridit) / mu (O'Donnell et al. 2008, eq. 8.7), cov.wt(method = "ML");
#   Erreygers E = 4 mu C / (max - min); Wagstaff W = (max - min) mu C / ((max - mu)(mu - min)).
# Run from tests/reference/: Rscript ref_equity.R  (writes equity.json)
library(jsonlite)

datasets <- list(
  hand_last = list(order = c(1, 2, 3, 4, 5), pop = rep(100, 5), events = c(50, 45, 40, 35, 30),
                   n = rep(100, 5), scale = 1, kind = "proportion", most_disadvantaged = "last",
                   bounds = c(0, 1)),
  counts_first = list(order = 1:5, pop = c(2994, 2878, 2653, 2469, 1974), events = c(463, 442, 354, 289, 139),
                      n = c(2994, 2878, 2653, 2469, 1974), scale = 100, kind = "proportion",
                      most_disadvantaged = "first", bounds = c(0, 100)),
  rate_last = list(order = 1:4, pop = c(52000, 21000, 14000, 6000), events = c(410, 190, 150, 80),
                   n = c(52000, 21000, 14000, 6000), scale = 1000, kind = "rate",
                   most_disadvantaged = "last", bounds = NULL),
  mean_last = list(order = 1:6, pop = c(900, 1100, 1000, 950, 800, 700), y = c(7.1, 6.9, 6.6, 6.4, 6.0, 5.2),
                   se = c(0.10, 0.09, 0.11, 0.12, 0.14, 0.2), scale = 1, kind = "mean",
                   most_disadvantaged = "last", bounds = c(0, 10))
)

ref_one <- function(d) {
  if (is.null(d$y)) {
    p <- d$events / d$n
    y <- d$scale * p
    v <- if (d$kind == "proportion") d$scale^2 * p * (1 - p) / d$n else d$scale^2 * d$events / d$n^2
  } else {
    y <- d$y
    v <- d$se^2
  }
  o <- order(d$order, decreasing = (d$most_disadvantaged == "last"))   # most disadvantaged first
  y <- y[o]; v <- v[o]; w <- d$pop[o] / sum(d$pop)
  ridit <- cumsum(w) - w / 2
  fit <- lm(y ~ ridit, weights = w)                                     # WLS on the ridits
  X <- model.matrix(fit)
  W <- diag(w)
  bread <- solve(t(X) %*% W %*% X)
  V <- bread %*% t(X) %*% W %*% diag(v) %*% W %*% X %*% bread
  pr <- predict(fit, newdata = data.frame(ridit = c(0, 1)))
  mu <- weighted.mean(y, w)
  cw <- cov.wt(cbind(y, ridit), wt = w, method = "ML")$cov[1, 2]
  C <- 2 * cw / mu
  out <- list(
    sii = unname(coef(fit)[2]),
    sii_se = sqrt(V[2, 2]),
    intercept = unname(coef(fit)[1]),
    rii_ratio = unname(pr[2] / pr[1]),
    rii_mean = unname(coef(fit)[2]) / mu,
    mean = mu,
    cindex = C
  )
  if (!is.null(d$bounds)) {
    lo <- d$bounds[1]; hi <- d$bounds[2]
    out$erreygers <- 4 * mu * C / (hi - lo)
    out$wagstaff <- (hi - lo) * mu * C / ((hi - mu) * (mu - lo))
  }
  out
}

ref <- lapply(datasets, ref_one)
ref$`_meta` <- list(R = R.version.string, script = "ref_equity.R")
write_json(ref, "equity.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
