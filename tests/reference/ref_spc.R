# Reference values for scaleup_analysis.monitoring.spc (tests/test_spc.py).
# qicharts2 is not installed here, so every centre line and limit is computed below from the
# textbook formulas (Montgomery 2009; Laney 2002) as qicharts2 0.7/0.8 documents them, written out
# in base R, independently of the Python code. Run from tests/reference/: Rscript ref_spc.R
library(jsonlite)

# ---- Anhoej thresholds (Anhoej & Olesen 2014; qicharts2:::runs.analysis) -------------------
n <- 1:100
anhoej <- list(
  n = n,
  longest_run_max = round(log2(n)) + 3,             # Schilling 2012
  n_crossings_min = qbinom(0.05, pmax(n - 1, 0), 0.5)  # Chen 2010
)

runs_ref <- function(y, cl) {
  s <- sign(y - cl)
  s <- s[s != 0 & !is.na(s)]
  r <- rle(s)$lengths
  nu <- length(s)
  list(n_obs = length(y), n_useful = nu, longest_run = max(r),
       longest_run_max = round(log2(nu)) + 3, n_crossings = length(r) - 1,
       n_crossings_min = qbinom(0.05, nu - 1, 0.5),
       runs_signal = max(r) > round(log2(nu)) + 3 || (length(r) - 1) < qbinom(0.05, nu - 1, 0.5))
}

series <- list(
  ties   = c(3, 5, 4, 4, 6, 7, 4, 2, 4, 8, 9, 4, 1, 4, 5),           # several points on the median
  shift  = c(10, 12, 11, 9, 10, 11, 13, 12, 15, 16, 15, 17, 18, 16, 17, 19, 18, 17),
  random = round(c(0.6, -0.3, 1.2, -1.1, 0.4, -0.2, 0.9, -0.8, 0.1, -0.5, 1.4, -0.9,
                   0.3, 0.7, -1.3, 0.2, -0.4, 0.8, -0.6, 1.0), 2)
)
runs <- lapply(series, function(y) c(list(y = y), runs_ref(y, median(y, na.rm = TRUE))))

# ---- control charts ---------------------------------------------------------------------
c4 <- function(n) sqrt(2 / (n - 1)) * exp(lgamma(n / 2) - lgamma((n - 1) / 2))
screened_amr <- function(mr) {          # qicharts2 default option qic.screenedmr = TRUE
  mr <- mr[!is.na(mr)]
  amr <- mean(mr)
  mean(mr[mr < 3.267 * amr])
}

chart_part <- function(ch, a, base) {
  # a: aggregated points of one part; base: logical baseline
  k <- nrow(a); y <- a$y
  if (ch == "run") { cl <- rep(median(y[base]), k); lcl <- ucl <- rep(NA, k) }
  if (ch == "i") {
    cl <- mean(y[base]); s <- screened_amr(abs(diff(y[base]))) / 1.128
    lcl <- rep(cl - 3 * s, k); ucl <- rep(cl + 3 * s, k); cl <- rep(cl, k)
  }
  if (ch == "mr") {
    y <- c(NA, abs(diff(y))); cl <- mean(y[base], na.rm = TRUE)
    lcl <- rep(0, k); ucl <- rep(3.267 * cl, k); cl <- rep(cl, k)
  }
  if (ch %in% c("xbar", "s")) {
    m <- a$len
    sbar <- if (length(unique(m)) > 1) sqrt(sum((m[base] - 1) * a$sd[base]^2) / sum(m[base] - 1)) else mean(a$sd[base])
    if (ch == "xbar") {
      cl <- sum(m[base] * a$mean[base]) / sum(m[base])
      A3 <- 3 / (c4(m) * sqrt(m))
      lcl <- cl - A3 * sbar; ucl <- cl + A3 * sbar; cl <- rep(cl, k)
    } else {
      y <- a$sd
      c5 <- sqrt(1 - c4(m)^2)
      lcl <- pmax(0, 1 - 3 * c5 / c4(m)) * sbar; ucl <- (1 + 3 * c5 / c4(m)) * sbar; cl <- rep(sbar, k)
    }
  }
  if (ch == "c") {
    y <- a$sum; cl <- mean(y[base])
    lcl <- rep(max(0, cl - 3 * sqrt(cl)), k); ucl <- rep(cl + 3 * sqrt(cl), k); cl <- rep(cl, k)
  }
  if (ch %in% c("p", "pp", "u", "up")) {
    cl <- sum(a$sum[base]) / sum(a$n[base])
    sdv <- if (ch %in% c("p", "pp")) sqrt(cl * (1 - cl) / a$n) else sqrt(cl / a$n)
    if (ch %in% c("pp", "up")) {                        # Laney 2002
      z <- (y[base] - cl) / sdv[base]
      sdv <- sdv * screened_amr(abs(diff(z))) / 1.128
    }
    lcl <- pmax(0, cl - 3 * sdv); ucl <- cl + 3 * sdv
    if (ch %in% c("p", "pp")) ucl <- pmin(1, ucl)
    cl <- rep(cl, k)
  }
  r <- if (ch == "mr") list(runs_signal = FALSE) else runs_ref(y, cl)
  list(y = y, cl = cl, lcl = lcl, ucl = ucl,
       sigma_signal = !is.na(ucl) & !is.na(y) & (y > ucl | y < lcl),
       runs_signal = rep(r$runs_signal, k), summary = r[names(r) != "runs_signal"])
}

make_data <- function(seed, sizes) {
  set.seed(seed)
  period <- rep(seq_along(sizes), sizes)
  shift <- ifelse(period > 16, 1.2, 0)
  data.frame(period = period,
             y = round(rnorm(length(period), 10 + shift, 1.5), 2),
             n = sample(40:120, length(period), replace = TRUE),
             events = NA)
}
datasets <- list(
  equal_subgroups = make_data(20261123, rep(4, 24)),
  unequal_subgroups = make_data(20261124, sample(c(2, 3, 4, 5), 24, replace = TRUE))
)
for (nm in names(datasets)) {
  d <- datasets[[nm]]
  set.seed(7)
  d$events <- rbinom(nrow(d), d$n, ifelse(d$period > 16, 0.3, 0.22))
  datasets[[nm]] <- d
}

aggregate_points <- function(d, ch) {
  sp <- split(d, d$period)
  data.frame(
    x = as.numeric(names(sp)),
    y = sapply(sp, function(g) if (ch %in% c("p", "pp", "u", "up")) sum(g$events) / sum(g$n)
                                 else if (ch == "c") sum(g$events) else mean(g$y)),
    sum = sapply(sp, function(g) sum(g$events)),
    n = sapply(sp, function(g) sum(g$n)),
    len = sapply(sp, nrow), mean = sapply(sp, function(g) mean(g$y)),
    sd = sapply(sp, function(g) sd(g$y)))
}

options_grid <- list(none = list(freeze = NULL, part = NULL),
                     freeze = list(freeze = 12, part = NULL),
                     part = list(freeze = NULL, part = 16))
charts <- c("run", "i", "mr", "xbar", "s", "p", "u", "c", "pp", "up")
cells <- list()
for (nm in names(datasets)) for (ch in charts) for (op in names(options_grid)) {
  a <- aggregate_points(datasets[[nm]], ch)
  o <- options_grid[[op]]
  k <- nrow(a)
  part <- if (is.null(o$part)) rep(1, k) else ifelse(seq_len(k) <= o$part, 1, 2)
  base <- if (is.null(o$freeze)) rep(TRUE, k) else seq_len(k) <= o$freeze
  res <- list(y = c(), cl = c(), lcl = c(), ucl = c(), sigma_signal = c(), runs_signal = c())
  summ <- list()
  for (p in unique(part)) {
    idx <- part == p
    r <- chart_part(ch, a[idx, ], base[idx])
    for (f in names(res)) res[[f]] <- c(res[[f]], r[[f]])
    summ[[p]] <- r$summary
  }
  res$part <- part
  res$summary <- summ
  cells[[paste(nm, ch, op, sep = "/")]] <- c(list(dataset = nm, chart = ch, option = op), res)
}

# ---- qicharts2 vignette example (published summary(qic(y, chart = 'i')) output) --------------
# "qicharts2" vignette, section "The Anhoej rules": set.seed(19); y <- rnorm(24); y[22] <- 4;
# y[13:24] <- rnorm(12, mean = 2); summary(qic(y, chart = 'i')) printed n.obs 24, n.useful 24,
# longest.run 13, longest.run.max 8, n.crossings 4, n.crossings.min 8, runs.signal 1,
# aLCL -2.114884, CL 1.057091, aUCL 4.229067, sigma.signal 0. Only the data are generated here.
set.seed(19)
vignette_y <- rnorm(24)
vignette_y[22] <- 4
vignette_y[13:24] <- rnorm(12, mean = 2)

out <- list(anhoej = anhoej, runs = runs, qicharts2_vignette_y = vignette_y,
            datasets = lapply(datasets, as.list),
            charts = unname(cells))
write_json(out, "spc.json", digits = NA, auto_unbox = TRUE, na = "null", null = "null")
message("wrote spc.json with ", length(cells), " chart cells")
