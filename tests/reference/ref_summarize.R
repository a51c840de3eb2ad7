# Reference values for tests/test_summarize.py (fits from per-cell summaries, scaleup_analysis.summarize).
# Run from tests/reference/:  Rscript ref_summarize.R   -> writes summarize.json
# The patient-level data are simulated here (seeded) and stored in the JSON, so the Python tests need
# no R: Python summarises the rows, fits from the summaries and must reproduce these R fits on the rows.
#   * lme4::lmer (+ lmerTest Satterthwaite df): random intercept and random intercept + slope, REML and ML
#   * per-site lm(): coefficient of `treated` and its variance; metafor::rma(method = "REML") on them
#   * lme4::glmer (Laplace): Bernoulli rows and aggregated cbind(events, n - events) per site x period
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(metafor)
  library(jsonlite)
})

set.seed(20261123)
S <- 14; Tn <- 6; m <- 9
adopt <- c(2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, NA, NA)   # two never-treated sites
d <- expand.grid(i = seq_len(m), period = seq_len(Tn), s = seq_len(S))
d$site_id <- sprintf("S%02d", d$s)
d$treated <- as.integer(!is.na(adopt[d$s]) & d$period >= adopt[d$s])
d$x <- round(rnorm(nrow(d)), 3)
b0 <- rnorm(S, 0, 1.2); b1 <- rnorm(S, 0, 0.8); u <- rnorm(S, 0, 0.6)
d$y <- round(2 + 1.5 * d$treated + 0.4 * d$x + b0[d$s] + b1[d$s] * d$treated + rnorm(nrow(d), 0, 1.5), 4)
d$event <- rbinom(nrow(d), 1, plogis(-0.8 + 0.5 * d$treated + u[d$s]))
d <- d[, c("site_id", "period", "treated", "x", "y", "event")]

fe_tab <- function(fit) {
  co <- summary(fit)$coefficients
  list(term = sub("\\(Intercept\\)", "Intercept", rownames(co)), estimate = unname(co[, "Estimate"]),
       se = unname(co[, "Std. Error"]), df = if ("df" %in% colnames(co)) unname(co[, "df"]) else NULL)
}
lmm <- function(form, reml) {
  fit <- lmerTest::lmer(form, data = d, REML = reml,
                        control = lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)))
  vc <- as.data.frame(VarCorr(fit))
  list(fixed = fe_tab(fit), loglik = as.numeric(logLik(fit)), theta = unname(getME(fit, "theta")),
       sigma2 = sigma(fit)^2, vcov_re = vc$vcov)
}
models <- list(
  ri_reml = lmm(y ~ treated + x + (1 | site_id), TRUE),
  ri_ml   = lmm(y ~ treated + x + (1 | site_id), FALSE),
  rs_reml = lmm(y ~ treated + x + (1 + treated | site_id), TRUE),
  rs_ml   = lmm(y ~ treated + x + (1 + treated | site_id), FALSE)
)

# per-site OLS (two-stage IPD meta-analysis): coef and vcov of `treated` from lm(y ~ treated + x)
sites <- sort(unique(d$site_id))
per_site <- do.call(rbind, lapply(sites, function(s) {
  ds <- d[d$site_id == s, ]
  if (length(unique(ds$treated)) < 2) return(NULL)
  f <- lm(y ~ treated + x, data = ds)
  data.frame(site_id = s, yi = unname(coef(f)["treated"]), vi = vcov(f)["treated", "treated"])
}))
ma <- rma(yi, vi, data = per_site, method = "REML", control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000))  # to convergence
meta <- list(mu = as.numeric(ma$beta), se = ma$se, tau2 = ma$tau2, I2 = ma$I2, QE = ma$QE)

# binomial GLMM: Bernoulli rows vs aggregated events / n per site x period (treated is cell-level)
g_rows <- glmer(event ~ treated + (1 | site_id), data = d, family = binomial)
agg <- aggregate(cbind(events = event, n = 1) ~ site_id + period + treated, data = d, FUN = sum)
g_agg <- glmer(cbind(events, n - events) ~ treated + (1 | site_id), data = agg, family = binomial)
glmm <- list(
  rows = list(beta = unname(fixef(g_rows)), se = unname(sqrt(diag(vcov(g_rows)))),
              theta = unname(getME(g_rows, "theta")), loglik = as.numeric(logLik(g_rows))),
  aggregated = list(beta = unname(fixef(g_agg)), se = unname(sqrt(diag(vcov(g_agg)))),
                    theta = unname(getME(g_agg, "theta")), loglik = as.numeric(logLik(g_agg)))
)

out <- list(
  data = d,
  cells = list(n_cells = nrow(unique(d[, c("site_id", "period")]))),
  lmm = models,
  per_site = per_site,
  meta = meta,
  glmm = glmm,
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  metafor = as.character(packageVersion("metafor")))
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, dataframe = "columns", pretty = FALSE), "summarize.json")
