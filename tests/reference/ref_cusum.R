# Reference values for scaleup_analysis.monitoring.cusum (risk-adjusted Bernoulli CUSUM, VLAD).
# Run from tests/reference/:  Rscript ref_cusum.R   -> writes cusum.json   (base R + jsonlite; ~1 minute)
#
# Written independently of the Python code, from Steiner, Cook, Farewell & Treasure (2000),
# Biostatistics 1(4):441-452, eq. 2.1:
#   W_t = y_t log(RA/R0) - log((1 - p_t + RA p_t) / (1 - p_t + R0 p_t)),  S_t = max(0, S_{t-1} + W_t),
#   signal when S_t >= h, then S restarts at 0 (reset = TRUE) or goes on (reset = FALSE).
# The lower (improvement) chart uses RA < R0 and is reported as -S_t.  VLAD_t = cumsum(p - y).
#
# 1. charts: a hand-built set (3 sites, ties in time, rows shuffled) and a simulated study
#    (3 sites x 60 patients; risks Beta(1.5, 8), outcomes Bernoulli with odds ratio 1, 2.5 and 0.4
#    by site), each with the upper, lower and both charts, reset TRUE / FALSE: values of every row.
# 2. run lengths simulated (plain loop over patients, vectorised over runs): a risk mix of 60
#    patients, charts RA = 2 (h = 3) and RA = 0.5 (h = 2.5), in control (RA_true = 1) and out of
#    control (RA_true = RA); mean run length and its Monte Carlo standard error.
# 3. exact run lengths of constant-risk charts whose weights lie on a lattice (Reynolds & Stoumbos
#    1999: integer-valued scaled weights): p = 2^(1/(m+1)) - 1 makes the RA = 2 weights +m and -1
#    times log(1 + p); p = 2 (1 - 2^(-1/(m+1))) makes the RA = 1/2 weights +1 and -m times
#    -log(1 - p/2). With h = (H + 0.5) step the chart is a finite Markov chain on 0..H, solved exactly.
suppressPackageStartupMessages(library(jsonlite))

weights <- function(p, ra, r0 = 1) {
  den <- log(1 - p + ra * p) - log(1 - p + r0 * p)
  list(w1 = log(ra / r0) - den, w0 = -den)
}

chart <- function(y, p, ra, h, r0 = 1, reset = TRUE) {
  w <- weights(p, ra, r0)
  wt <- ifelse(y == 1, w$w1, w$w0)
  s <- numeric(length(y)); sig <- logical(length(y)); prev <- 0
  for (t in seq_along(y)) {
    cur <- max(0, prev + wt[t]); s[t] <- cur
    if (cur >= h) {
      sig[t] <- reset || !(t > 1 && s[t - 1] >= h)
      prev <- if (reset) 0 else cur
    } else prev <- cur
  }
  list(llr = wt, s = s, signal = sig)
}

run_all <- function(d, ra_up, ra_low, h_up, h_low, reset) {
  out <- list()
  for (u in sort(unique(d$site_id))) {
    g <- d[d$site_id == u, ]
    g <- g[order(g$period, seq_len(nrow(g))), ]   # stable: ties in data order
    row <- list(site_id = g$site_id, period = g$period, row = g$row, event = g$event, risk = g$risk,
                vlad = cumsum(g$risk - g$event))
    if (!is.na(ra_up)) { a <- chart(g$event, g$risk, ra_up, h_up, reset = reset)
      row$llr_upper <- a$llr; row$cusum_upper <- a$s; row$signal_upper <- a$signal }
    if (!is.na(ra_low)) { b <- chart(g$event, g$risk, ra_low, h_low, reset = reset)
      row$llr_lower <- b$llr; row$cusum_lower <- -b$s; row$signal_lower <- b$signal }
    out[[length(out) + 1]] <- as.data.frame(row)
  }
  do.call(rbind, out)
}

hand <- data.frame(
  site_id = c("B", "A", "A", "C", "B", "A", "C", "A", "B", "C", "A", "B", "A", "C", "B", "A", "C", "B"),
  period  = c(2, 1, 1, 1, 1, 2, 2, 2, 3, 1, 3, 3, 3, 3, 4, 4, 2, 4),
  event   = c(1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1),
  risk    = c(0.30, 0.10, 0.20, 0.05, 0.60, 0.10, 0.02, 0.30, 0.25, 0.50, 0.20, 0.15, 0.10, 0.40,
              0.35, 0.05, 0.90, 0.08))
hand$row <- seq_len(nrow(hand)) - 1   # 0-based row labels, as pandas

set.seed(20261204)
sim <- do.call(rbind, lapply(1:3, function(k) {
  n <- 60; p <- rbeta(n, 1.5, 8); or <- c(1, 2.5, 0.4)[k]
  q <- or * p / (1 - p + or * p)
  data.frame(site_id = paste0("S", k), period = sort(sample(1:12, n, replace = TRUE)),
             event = rbinom(n, 1, q), risk = round(p, 6))
}))
sim <- sim[sample(nrow(sim)), ]
sim$row <- seq_len(nrow(sim)) - 1

cases <- list()
for (nm in c("hand", "sim")) {
  d <- get(nm)
  h <- if (nm == "hand") c(1.2, 0.8) else c(2.5, 2.0)
  for (spec in list(list(key = "upper", up = 2, low = NA), list(key = "lower", up = NA, low = 0.5),
                    list(key = "both", up = 2, low = 0.5))) {
    for (reset in c(TRUE, FALSE)) {
      r <- run_all(d, spec$up, spec$low, h[1], h[2], reset)
      cases[[paste(nm, spec$key, if (reset) "reset" else "noreset", sep = "_")]] <- list(
        data = nm, odds_ratio = c(spec$up, spec$low)[!is.na(c(spec$up, spec$low))],
        limit = h[!is.na(c(spec$up, spec$low))], reset = reset, chart = as.list(r))
    }
  }
}

# 2. simulated run lengths
simulate_rl <- function(h, risks, ra, ra_true, nrun) {
  rl <- integer(nrun); s <- numeric(nrun); active <- seq_len(nrun); t <- 0L
  while (length(active)) {
    t <- t + 1L
    p <- risks[sample.int(length(risks), length(active), replace = TRUE)]
    y <- runif(length(active)) < ra_true * p / (1 - p + ra_true * p)
    w <- weights(p, ra)
    s[active] <- pmax(0, s[active] + ifelse(y, w$w1, w$w0))
    done <- s[active] >= h
    rl[active[done]] <- t
    active <- active[!done]
  }
  rl
}
set.seed(7)
mix <- round(rbeta(60, 1.2, 10), 6)
runs <- list(risks = mix, cases = list())
for (spec in list(list(ra = 2, h = 3), list(ra = 0.5, h = 2.5))) {
  for (rt in unique(c(1, spec$ra))) {
    nrun <- 50000
    rl <- simulate_rl(spec$h, mix, spec$ra, rt, nrun)
    runs$cases[[length(runs$cases) + 1]] <- list(odds_ratio = spec$ra, limit = spec$h, odds_ratio_true = rt,
                                               n_runs = nrun, mean = mean(rl), se = sd(rl) / sqrt(nrun))
  }
}

# 3. exact lattice chains
lattice <- list()
for (m in c(4, 9)) {
  for (H in c(20, 45)) {
    for (dir in c("upper", "lower")) {
      if (dir == "upper") { p <- 2^(1 / (m + 1)) - 1; ra <- 2; step <- log(1 + p) }
      else { p <- 2 * (1 - 2^(-1 / (m + 1))); ra <- 0.5; step <- -log(1 - p / 2) }
      for (rt in c(1, ra)) {
        q <- rt * p / (1 - p + rt * p)          # probability of an outcome 1
        Q <- matrix(0, H + 1, H + 1)             # states 0..H (values k * step), signal at k >= H + 1
        for (k in 0:H) {
          if (dir == "upper") { up <- k + m; dn <- max(k - 1, 0); pu <- q }
          else { up <- k + 1; dn <- max(k - m, 0); pu <- 1 - q }
          if (up <= H) Q[k + 1, up + 1] <- Q[k + 1, up + 1] + pu
          Q[k + 1, dn + 1] <- Q[k + 1, dn + 1] + (1 - pu)
        }
        L <- solve(diag(H + 1) - Q, rep(1, H + 1))
        lattice[[length(lattice) + 1]] <- list(direction = dir, m = m, H = H, risk = p, odds_ratio = ra,
                                             odds_ratio_true = rt, limit = (H + 0.5) * step, arl = L[1])
      }
    }
  }
}

out <- list(meta = list(R_version = R.version.string), hand = as.list(hand), sim = as.list(sim),
            cases = cases, run_lengths = runs, lattice = lattice)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE, na = "null"), "cusum.json")
message("wrote cusum.json")
