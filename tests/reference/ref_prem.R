# Reference values for scaleup_analysis.prom_sites (PREM / PROM scale scores and site comparisons).
# Run from tests/reference/:  Rscript ref_prem.R   -> writes prem.json
# Needs psych, jsonlite (lm, predict, t.test from base R's stats).
#
# Datasets written to prem.json (each with its data):
#   hand: a hand-built set of 3 sites x 12 respondents, 4 items on a 1-5 scale (q3 reversed), 9 missing
#         item answers (one respondent answered 1 item, one none), covariates age and female.
#   sim:  simulated with set.seed(20261204): 10 sites of 3 to 60 respondents with different case mix
#         (age, female, deprivation quintile dep Q1-Q5 as text), 4 missing scores.
# Values:
#   scores: the scale score of every respondent by hand (base R rowMeans of the answered items after
#           reversal 1 + 5 - x, missing when fewer than m items were answered) for m = 2 (share 0.5 of 4
#           items), 3 (count 3, and share 0.75) and 1; psych::scoreItems(keys, items, totals = FALSE,
#           impute = "none", min = 1, max = 5)$scores, equal to the rule with m = 1.
#   cells:  per cell (site; site x stratum; stratum) n, mean, sd, t.test(y)$conf.int (n >= 2); with the
#           case-mix model fit <- lm(score ~ covariates) on all complete respondents (no unit term):
#           expected = mean(fitted(fit)[cell]), adjusted = mean(y) + mean(y[cell]) - expected,
#           se = sqrt(sigma^2 (1/N + 1/n) - se.fit^2) with se.fit from predict(fit, newdata = the cell's
#           mean covariates, se.fit = TRUE) (hand; continuous covariates) or from the cell's mean row of
#           model.matrix(fit) and vcov(fit) (sim; a factor), checked against the hat matrix
#           sum(H[cell, cell]) / n^2; interval with qt(, df.residual(fit)).
#   model:  summary(fit)$coefficients, sigma, r.squared, df.residual, mean(y), N.
suppressPackageStartupMessages({
  library(psych)
  library(jsonlite)
})

out <- list(meta = list(R_version = R.version.string,
                        psych_version = as.character(packageVersion("psych"))))

rule_score <- function(items, reverse, lo, hi, m) {
  x <- items
  for (r in reverse) x[[r]] <- lo + hi - x[[r]]
  answered <- rowSums(!is.na(x))
  s <- rowMeans(x, na.rm = TRUE)
  s[answered < m] <- NA
  s
}

level <- 0.95
cell_table <- function(d, score, keys, fit = NULL, use_predict = FALSE, covs = NULL) {
  y <- d[[score]]
  N <- length(y)
  ybar <- mean(y)
  cells <- split(seq_len(N), d[keys], drop = TRUE, lex.order = TRUE)
  if (!is.null(fit)) {
    X <- model.matrix(fit)
    H <- X %*% solve(crossprod(X)) %*% t(X)
    sig <- summary(fit)$sigma
  }
  rows <- lapply(names(cells), function(nm) {
    idx <- cells[[nm]]
    v <- y[idx]
    n <- length(v)
    r <- list()
    for (k in keys) r[[k]] <- as.character(d[[k]][idx[1]])
    r$n <- n
    r$mean <- mean(v)
    r$sd <- if (n > 1) sd(v) else NA
    ci <- if (n > 1) t.test(v, conf.level = level)$conf.int else c(NA, NA)
    r$mean_ci_low <- ci[1]
    r$mean_ci_high <- ci[2]
    if (!is.null(fit)) {
      e <- mean(fitted(fit)[idx])
      if (use_predict) {
        nd <- as.data.frame(lapply(d[idx, covs, drop = FALSE], mean))
        p <- predict(fit, newdata = nd, se.fit = TRUE)
        sefit <- p$se.fit
        stopifnot(abs(p$fit - e) < 1e-10)
      } else {
        xbar <- colMeans(X[idx, , drop = FALSE])
        sefit <- sqrt(drop(t(xbar) %*% vcov(fit) %*% xbar))
      }
      lev_hat <- sum(H[idx, idx]) / n^2
      stopifnot(abs(sefit^2 / sig^2 - lev_hat) < 1e-10)
      se <- sqrt(sig^2 * (1 / N + 1 / n) - sefit^2)
      r$expected_mean <- e
      r$adjusted_mean <- ybar + mean(v) - e
      r$adjusted_mean_se <- se
      q <- qt(1 - (1 - level) / 2, df.residual(fit))
      r$adjusted_mean_ci_low <- r$adjusted_mean - q * se
      r$adjusted_mean_ci_high <- r$adjusted_mean + q * se
    }
    r
  })
  rows
}

model_list <- function(fit) {
  cf <- summary(fit)$coefficients
  list(term = rownames(cf), estimate = unname(cf[, 1]), se = unname(cf[, 2]), statistic = unname(cf[, 3]),
       pvalue = unname(cf[, 4]), sigma = summary(fit)$sigma, r_squared = summary(fit)$r.squared,
       df_resid = df.residual(fit))
}

# ---------------------------------------------------------------------------------------------
# hand: 3 sites x 12 respondents
# ---------------------------------------------------------------------------------------------
hand <- data.frame(
  site_id = rep(c("A", "B", "C"), each = 12),
  age = c(34, 45, 52, 61, 70, 28, 39, 48, 57, 66, 43, 50,
          55, 62, 71, 78, 83, 60, 67, 74, 58, 80, 69, 73,
          25, 31, 38, 44, 29, 36, 41, 47, 33, 27, 52, 39),
  female = c(1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1,
             0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0,
             1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0),
  q1 = c(4, 5, 3, 4, 2, 5, 4, NA, 3, 4, 5, 4,  3, 2, 2, 3, 1, 4, 3, 2, NA, 2, 3, 2,  5, 4, 4, 5, 3, 4, 5, 4, 5, NA, 4, 3),
  q2 = c(4, 4, 3, 5, 3, 4, 4, 4, NA, 3, 5, 4,  3, 3, 2, 2, 2, 3, 3, 2, NA, 1, 3, 3,  4, 4, 5, 4, 3, 5, 4, 4, 5, NA, 3, 4),
  q3 = c(2, 1, 3, 2, 4, 1, 2, 2, 3, 2, 1, 2,  3, 4, 4, 3, 5, 2, 3, 4, 4, 4, NA, 3,  1, 2, 2, 1, 3, 2, 1, 2, 1, NA, 2, 3),
  q4 = c(5, 4, 3, 4, 2, 5, 4, 3, 3, NA, 5, 4,  3, 2, 3, 3, 1, 4, 3, 2, 2, 2, 3, 2,  4, 5, 4, 5, 3, 4, 4, 5, 4, NA, 4, 3)
)
items <- c("q1", "q2", "q3", "q4")
hand$q1[c(8)] <- NA
hand$q2[c(9, 21)] <- NA
hand$q1[21] <- NA  # respondent 21 answered q3, q4 only
hand$q2[20] <- NA; hand$q4[20] <- NA; hand$q1[20] <- NA  # respondent 20 answered q3 only
# respondent 34 answered nothing
sc <- psych::scoreItems(keys = list(s = c("q1", "q2", "-q3", "q4")), items = hand[items], totals = FALSE,
                        impute = "none", min = 1, max = 5)$scores[, 1]
s1 <- rule_score(hand[items], "q3", 1, 5, 1)
stopifnot(isTRUE(all.equal(unname(sc), unname(s1), tolerance = 1e-14)))
hand$score <- rule_score(hand[items], "q3", 1, 5, 2)
hd <- hand[!is.na(hand$score), ]
fit_h <- lm(score ~ age + female, data = hd)
out$hand <- list(
  data = hand[c("site_id", "age", "female", items)], items = items, reverse = "q3", scale_min = 1, scale_max = 5,
  scores = list(m2 = hand$score, m3 = rule_score(hand[items], "q3", 1, 5, 3),
                m1 = s1, psych = unname(sc)),
  covariates = c("age", "female"),
  model = c(model_list(fit_h), list(overall_mean = mean(hd$score), n_obs = nrow(hd))),
  raw_cells = cell_table(hd, "score", "site_id"),
  cells = cell_table(hd, "score", "site_id", fit_h, use_predict = TRUE, covs = c("age", "female"))
)

# ---------------------------------------------------------------------------------------------
# sim: 10 sites with different case mix
# ---------------------------------------------------------------------------------------------
set.seed(20261204)
sizes <- c(4, 8, 15, 25, 40, 60, 30, 12, 3, 50)
sites <- sprintf("S%02d", seq_along(sizes))
site <- rep(sites, sizes)
age_mean <- rep(seq(45, 75, length.out = length(sizes)), sizes)
age <- round(rnorm(length(site), age_mean, 10))
female <- rbinom(length(site), 1, 0.55)
dep <- paste0("Q", pmin(5, pmax(1, round(rep(seq(1.5, 4.5, length.out = length(sizes)), sizes) +
                                       rnorm(length(site), 0, 1)))))
site_eff <- rep(rnorm(length(sizes), 0, 0.3), sizes)
y <- 3.5 - 0.015 * (age - 60) - 0.2 * female - 0.1 * (as.integer(substr(dep, 2, 2)) - 1) + site_eff +
  rnorm(length(site), 0, 0.6)
sim <- data.frame(site_id = site, age = age, female = female, dep = dep, score = y)
sim$score[c(7, 50, 120, 200)] <- NA
sd_ <- sim[!is.na(sim$score), ]
fit_s <- lm(score ~ age + female + dep, data = sd_)
out$sim <- list(
  data = sim, covariates = c("age", "female", "dep"),
  model = c(model_list(fit_s), list(overall_mean = mean(sd_$score), n_obs = nrow(sd_))),
  cells_site = cell_table(sd_, "score", "site_id", fit_s),
  cells_site_dep = cell_table(sd_, "score", c("site_id", "dep"), fit_s),
  cells_dep = cell_table(sd_, "score", "dep", fit_s)
)

# ---------------------------------------------------------------------------------------------
# within-unit case mix (casemix = "within"): lm with a fixed effect per site; adjusted = mean(y[cell])
# - d' beta_w, d = the cell's mean covariates minus the overall ones. For a site, its variance is
# sigma^2 / n + d' vcov(beta_w) d (the site means are uncorrelated with the within-site coefficients);
# for any cell, sigma^2 * ||a_c - Z (Z'Z)^-1 e_c||^2 computed from the model matrix -- both computed here,
# and the first checked against the second.
# ---------------------------------------------------------------------------------------------
within_table <- function(d, keys, covs) {
  fit <- lm(as.formula(paste("score ~", paste(covs, collapse = " + "), "+ factor(site_id)")), data = d)
  Z <- model.matrix(fit)
  cov_cols <- setdiff(colnames(Z)[!grepl("^factor\\(site_id\\)", colnames(Z))], "(Intercept)")
  b <- coef(fit)[cov_cols]
  V <- vcov(fit)[cov_cols, cov_cols, drop = FALSE]
  sig <- summary(fit)$sigma
  ZtZi <- solve(crossprod(Z))
  xall <- colMeans(Z[, cov_cols, drop = FALSE])
  y <- d$score
  ybar <- mean(y)
  q <- qt(1 - (1 - level) / 2, df.residual(fit))
  cells <- split(seq_len(nrow(d)), d[keys], drop = TRUE, lex.order = TRUE)
  rows <- lapply(names(cells), function(nm) {
    idx <- cells[[nm]]
    n <- length(idx)
    dd <- colMeans(Z[idx, cov_cols, drop = FALSE]) - xall
    shift <- sum(dd * b)
    e <- setNames(rep(0, ncol(Z)), colnames(Z)); e[cov_cols] <- dd
    ac <- rep(0, nrow(d)); ac[idx] <- 1 / n
    se_general <- sig * sqrt(sum((ac - Z %*% ZtZi %*% e)^2))
    if (identical(keys, "site_id")) {
      se_unit <- sqrt(sig^2 / n + drop(t(dd) %*% V %*% dd))
      stopifnot(abs(se_unit - se_general) < 1e-10)
    }
    r <- list()
    for (k in keys) r[[k]] <- as.character(d[[k]][idx[1]])
    r$n <- n
    r$expected_mean <- ybar + shift
    r$adjusted_mean <- mean(y[idx]) - shift
    r$adjusted_mean_se <- se_general
    r$adjusted_mean_ci_low <- r$adjusted_mean - q * se_general
    r$adjusted_mean_ci_high <- r$adjusted_mean + q * se_general
    r
  })
  cf <- summary(fit)$coefficients[cov_cols, , drop = FALSE]
  list(model = list(term = rownames(cf), estimate = unname(cf[, 1]), se = unname(cf[, 2]),
                    statistic = unname(cf[, 3]), pvalue = unname(cf[, 4]), sigma = sig,
                    r_squared = summary(fit)$r.squared, df_resid = df.residual(fit)),
       cells = rows)
}
out$sim_within <- list(site = within_table(sd_, "site_id", c("age", "female", "dep")),
                       site_dep = within_table(sd_, c("site_id", "dep"), c("age", "female", "dep")))
out$hand_within <- within_table(hd, "site_id", c("age", "female"))

writeLines(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "prem.json")
message("wrote prem.json")
