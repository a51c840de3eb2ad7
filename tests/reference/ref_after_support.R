# Reference values for scaleup_analysis.sustainment.after_support.support_withdrawal_effects
# (tests/test_after_support.py). Run from tests/reference/:  Rscript ref_after_support.R
#   -> writes after_support.json
#
# Base R only (stats::lm + jsonlite). The imputation estimator of Borusyak, Jaravel & Spiess (2024):
#   1. fit y = alpha_unit + gamma_period by weighted least squares on the UNTREATED cells only
#      (never-adopters, and adopters before their cohort):
#        lm(y ~ factor(unit) + factor(period), weights = w, subset = untreated)
#   2. impute y0 = predict(fit) for the treated cells (period >= cohort) whose unit and period both
#      have an untreated cell (BJS: the unit FE needs an untreated period of that unit), tau = y - y0;
#   3. effect_during / effect_after = weighted.mean(tau, w) over cells before / from the withdrawal
#      period; difference = after - during; ratio = after / during;
#   4. event study: weighted mean of tau by event_time = period - withdrawal (units with a withdrawal);
#   5. segmented regression over treated cells of withdrawn units:
#        lm(tau ~ after + I(after * (period - withdrawal)), weights = w)
#      -> level_change, slope_change;
#   6. fidelity slope over after cells with a fidelity value:  lm(tau ~ fidelity, weights = w).
# Every panel is stored in the JSON as CSV text (values rounded before the analysis, so that the CSV
# holds exactly the numbers R analysed) so that the Python tests need no R.
suppressPackageStartupMessages(library(jsonlite))

analyse <- function(d) {
  never <- is.na(d$cohort)
  d$untreated <- never | d$period < d$cohort
  d$treated <- !d$untreated
  fit <- lm(y ~ factor(unit) + factor(period), data = d, weights = w, subset = untreated)
  # imputable treated cells: the unit and the period have an untreated cell (the panels below are
  # built so that the untreated cells form one connected unit-period graph)
  ok_units <- unique(d$unit[d$untreated])
  ok_periods <- unique(d$period[d$untreated])
  d$imputable <- d$treated & d$unit %in% ok_units & d$period %in% ok_periods
  tr <- d[d$imputable, ]
  tr$y0 <- predict(fit, newdata = tr)
  tr$tau <- tr$y - tr$y0
  tr$after <- as.numeric(!is.na(tr$withdrawal) & tr$period >= tr$withdrawal)
  dur <- tr[tr$after == 0, ]
  aft <- tr[tr$after == 1, ]
  effect_during <- weighted.mean(dur$tau, dur$w)
  effect_after <- weighted.mean(aft$tau, aft$w)
  # event study around the withdrawal
  wd <- tr[!is.na(tr$withdrawal), ]
  wd$event_time <- wd$period - wd$withdrawal
  ks <- sort(unique(wd$event_time))
  es <- data.frame(
    event_time = ks,
    estimate = sapply(ks, function(k) weighted.mean(wd$tau[wd$event_time == k], wd$w[wd$event_time == k])),
    n_cells = sapply(ks, function(k) sum(wd$event_time == k)),
    n_units = sapply(ks, function(k) length(unique(wd$unit[wd$event_time == k])))
  )
  # segmented regression (level and slope change at the withdrawal)
  wd$after_slope <- wd$after * (wd$period - wd$withdrawal)
  seg <- lm(tau ~ after + after_slope, data = wd, weights = w)
  # fidelity slope in the after cells
  af <- aft[!is.na(aft$fidelity), ]
  fid <- lm(tau ~ fidelity, data = af, weights = w)
  list(
    effect_during = effect_during, effect_after = effect_after,
    difference = effect_after - effect_during, ratio = effect_after / effect_during,
    n_during = nrow(dur), n_after = nrow(aft),
    n_units_during = length(unique(dur$unit)), n_units_after = length(unique(aft$unit)),
    n_excluded = sum(d$treated & !d$imputable),
    event_study = es,
    segmented_intercept = unname(coef(seg)[1]),
    level_change = unname(coef(seg)["after"]),
    slope_change = unname(coef(seg)["after_slope"]),
    n_segmented = nrow(wd),
    fidelity_slope = unname(coef(fid)["fidelity"]),
    n_fidelity = nrow(af),
    cells = data.frame(unit = tr$unit, period = tr$period, tau = tr$tau, after = tr$after)
  )
}

csv_text <- function(d) {
  con <- textConnection("out", "w", local = TRUE)
  write.csv(d, con, row.names = FALSE, na = "NA")
  close(con)
  paste(out, collapse = "\n")
}

# ---------------------------------------------------------------------------------------------
# 1. hand-built: 6 units x 8 periods; U5, U6 never adopt; U1..U4 staggered cohorts 3, 3, 4, 5;
#    withdrawals 6, 7, 7 and none (U4 keeps its support); unequal weights; fidelity in after cells
# ---------------------------------------------------------------------------------------------
units <- paste0("U", 1:6)
cohort <- c(3, 3, 4, 5, NA, NA)
withdrawal <- c(6, 7, 7, NA, NA, NA)
wt <- c(1, 2, 1.5, 0.5, 1, 3)
unit_fe <- c(10, 12, 9, 11, 8, 13)
period_fe <- c(0, 0.5, 1.1, 1.4, 2.0, 2.2, 2.9, 3.1)
# small fixed "noise" so that the fit is not exact
noise <- matrix(c( 0.3, -0.2,  0.1,  0.0, -0.4,  0.2,  0.1, -0.1,
                  -0.1,  0.2, -0.3,  0.4,  0.1, -0.2,  0.0,  0.3,
                   0.2,  0.0,  0.1, -0.2,  0.3, -0.1, -0.3,  0.2,
                   0.0, -0.3,  0.2,  0.1, -0.1,  0.4, -0.2,  0.0,
                  -0.2,  0.1,  0.0,  0.3, -0.3,  0.0,  0.2, -0.1,
                   0.1,  0.0, -0.1, -0.2,  0.2, -0.3,  0.1,  0.3), nrow = 6, byrow = TRUE)
fid_vals <- matrix(NA, 6, 8)
fid_vals[1, 6:8] <- c(0.9, 0.7, 0.6)
fid_vals[2, 7:8] <- c(0.8, 0.5)
fid_vals[3, 7:8] <- c(1.0, 0.4)
hand <- do.call(rbind, lapply(1:6, function(i) {
  tt <- 1:8
  treated <- !is.na(cohort[i]) & tt >= cohort[i]
  after <- treated & !is.na(withdrawal[i]) & tt >= withdrawal[i]
  eff <- ifelse(after, 1 - 0.2 * (tt - ifelse(is.na(withdrawal[i]), 0, withdrawal[i])), ifelse(treated, 2.5, 0))
  fi <- fid_vals[i, ]
  eff <- eff + ifelse(after & !is.na(fi), 1.5 * (fi - 0.7), 0)
  data.frame(unit = units[i], period = tt, y = round(unit_fe[i] + period_fe + eff + noise[i, ], 4),
             cohort = cohort[i], withdrawal = withdrawal[i], w = wt[i], fidelity = fi)
}))

# ---------------------------------------------------------------------------------------------
# 2. simulated (fixed seed): 40 units x 12 periods, 10 never adopt, cohorts 3..7, withdrawal 3 to
#    6 periods after adoption for 24 units (6 keep their support), weights, fidelity in after cells,
#    and 15 cells missing at random (unbalanced panel)
# ---------------------------------------------------------------------------------------------
set.seed(20250917)
n <- 40; TT <- 12
coh <- c(rep(NA, 10), sample(3:7, 30, replace = TRUE))
wdr <- c(rep(NA, 10), coh[11:40] + sample(3:6, 30, replace = TRUE))
wdr[sample(11:40, 6)] <- NA
a_i <- rnorm(n, 50, 5)
g_t <- cumsum(rnorm(TT, 0.3, 0.5))
sim <- expand.grid(period = 1:TT, unit = sprintf("S%02d", 1:n), stringsAsFactors = FALSE)[, c("unit", "period")]
ix <- match(sim$unit, sprintf("S%02d", 1:n))
sim$cohort <- coh[ix]
sim$withdrawal <- wdr[ix]
sim$w <- round(runif(n, 0.5, 3), 3)[ix]
tr_s <- !is.na(sim$cohort) & sim$period >= sim$cohort
af_s <- tr_s & !is.na(sim$withdrawal) & sim$period >= sim$withdrawal
sim$fidelity <- ifelse(af_s, round(runif(nrow(sim), 0.3, 1), 3), NA)
eff_s <- ifelse(af_s, 1.2 - 0.15 * (sim$period - sim$withdrawal) + 2 * (sim$fidelity - 0.65), ifelse(tr_s, 2.4, 0))
sim$y <- round(a_i[ix] + g_t[sim$period] + eff_s + rnorm(nrow(sim), 0, 1), 4)
sim <- sim[-sample(which(sim$period > 1), 15), c("unit", "period", "y", "cohort", "withdrawal", "w", "fidelity")]

# ---------------------------------------------------------------------------------------------
# 3. cells that cannot be imputed: no never-adopter, so periods 9-10 (every unit adopted) have no
#    untreated cell, and unit A1 adopts in period 1 (never untreated); equal weights (w = 1)
# ---------------------------------------------------------------------------------------------
set.seed(7)
coh3 <- c(1, 3, 3, 4, 5, 5, 6, 7, 8, 9)
wdr3 <- c(4, 6, NA, 7, 8, 9, 8, 9, NA, NA)
ex <- expand.grid(period = 1:10, unit = sprintf("A%d", 1:10), stringsAsFactors = FALSE)[, c("unit", "period")]
ix3 <- match(ex$unit, sprintf("A%d", 1:10))
ex$cohort <- coh3[ix3]
ex$withdrawal <- wdr3[ix3]
ex$w <- 1
tr3 <- ex$period >= ex$cohort
af3 <- tr3 & !is.na(ex$withdrawal) & ex$period >= ex$withdrawal
ex$fidelity <- ifelse(af3, round(runif(nrow(ex), 0.2, 1), 2), NA)
ex$y <- round(rnorm(10, 20, 3)[ix3] + 0.4 * ex$period + ifelse(af3, 0.8 + 1.0 * ex$fidelity, ifelse(tr3, 2, 0)) +
              rnorm(nrow(ex), 0, 0.7), 4)
ex <- ex[, c("unit", "period", "y", "cohort", "withdrawal", "w", "fidelity")]

panels <- list(hand = hand, simulated = sim, excluded = ex)
out <- list(R_version = R.version.string, panels = list())
for (nm in names(panels)) {
  d <- panels[[nm]]
  res <- analyse(d)
  res$csv <- csv_text(d)
  out$panels[[nm]] <- res
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, dataframe = "columns", na = "null", pretty = TRUE),
           "after_support.json")
cat("wrote after_support.json\n")
