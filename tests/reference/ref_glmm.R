# Reference values for tests/test_glmm.py: lme4::glmer (binomial logit/probit, Poisson log with offset;
# Laplace nAGQ = 1 and adaptive Gauss-Hermite quadrature nAGQ > 1) run with TIGHT controls, i.e. the exact
# optimum of the approximated likelihood: PIRLS tolerance tolPwrss = 1e-12 and bobyqa to rhoend = 1e-10
# (glmer's defaults stop ~1e-4 from it; the "default" logLik is stored to measure that distance).
# Run from tests/reference/:  Rscript ref_glmm.R   -> writes glmm.json (input data included: CI needs no R).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})

tight <- glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa",
                      optCtrl = list(rhobeg = 0.2, rhoend = 1e-10, maxfun = 1e5))

data("cbpp", package = "lme4")
cb <- data.frame(herd = as.character(cbpp$herd), incidence = cbpp$incidence, size = cbpp$size,
                 period = as.character(cbpp$period))
data("grouseticks", package = "lme4")
gt <- data.frame(TICKS = grouseticks$TICKS, YEAR = as.character(grouseticks$YEAR),
                 cHEIGHT = grouseticks$HEIGHT - mean(grouseticks$HEIGHT),
                 LOCATION = as.character(grouseticks$LOCATION))

# Counts per site-quarter with a population offset (simulated, seeded): 12 sites x 8 quarters,
# log rate = -4 + 0.05 quarter + 0.3 treat + b_site (sd 0.4) + b_slope quarter (sd 0.05).
set.seed(20261204)
ps <- expand.grid(quarter = 0:7, site = sprintf("s%02d", 1:12), stringsAsFactors = FALSE)
ps$pop <- rep(round(runif(12, 2000, 40000)), each = 8)
ps$treat <- as.integer(ps$quarter >= rep(sample(2:7, 12, replace = TRUE), each = 8))
b0 <- rnorm(12, 0, 0.4); b1 <- rnorm(12, 0, 0.05)
sid <- match(ps$site, sprintf("s%02d", 1:12))
ps$events <- rpois(nrow(ps), ps$pop * exp(-4 + 0.05 * ps$quarter + 0.3 * ps$treat + b0[sid] + b1[sid] * ps$quarter))
ps$logpop <- log(ps$pop)

# Binary outcome with a random slope (simulated, seeded): 30 sites of 20-60 patients, probit link.
n_site <- sample(20:60, 30, replace = TRUE)
sb <- data.frame(site = sprintf("s%02d", rep(1:30, n_site)), x = round(rnorm(sum(n_site)), 4))
sid <- rep(1:30, n_site)
B <- cbind(rnorm(30, 0, 0.6), rnorm(30, 0, 0.3))
sb$y <- rbinom(nrow(sb), 1, pnorm(-0.3 + 0.5 * sb$x + B[sid, 1] + B[sid, 2] * sb$x))

# Patient-level 0/1 rows with one binary covariate (many identical rows: exercises the merging of rows),
# 50 sites x 40 patients.
pb <- data.frame(site = sprintf("h%02d", rep(1:50, each = 40)), a = rbinom(2000, 1, 0.4))
pb$y <- rbinom(2000, 1, plogis(-1 + 0.6 * pb$a + rnorm(50, 0, 0.8)[rep(1:50, each = 40)]))

# A small hand-built study: 5 sites x 3 periods, events out of trials.
hb <- data.frame(site = rep(c("Gaspé", "Laval", "Lévis", "Rimouski", "Sherbrooke"), each = 3),
                 period = rep(c("p1", "p2", "p3"), 5),
                 events = c(3, 5, 8, 10, 12, 15, 2, 2, 4, 7, 9, 13, 5, 4, 9),
                 trials = c(20, 22, 25, 40, 41, 45, 15, 16, 18, 30, 33, 35, 25, 24, 28))

one <- function(g, default = NULL) {
  gs <- summary(g)$coefficients
  fl <- getME(g, "flist")
  re <- ranef(g, condVar = TRUE)[[1]]
  pv <- attr(re, "postVar")
  vc <- as.data.frame(VarCorr(g))
  out <- list(
    fixef = unname(fixef(g)), fixef_names = names(fixef(g)),
    se = unname(gs[, "Std. Error"]), z = unname(gs[, "z value"]), p = unname(gs[, "Pr(>|z|)"]),
    theta = unname(getME(g, "theta")),
    vcov_re = vc$vcov, sdcor = vc$sdcor,
    logLik = as.numeric(logLik(g)), AIC = AIC(g), BIC = BIC(g), nobs = nobs(g),
    ranef_groups = rownames(re), ranef = lapply(as.list(re), unname),
    ranef_condsd = lapply(seq_len(ncol(re)), function(j) sqrt(pv[j, j, ]))
  )
  if (!is.null(default)) out$logLik_default <- as.numeric(logLik(default))
  out
}
fitboth <- function(f, data, family, nAGQ = 1) {
  one(glmer(f, data = data, family = family, nAGQ = nAGQ, control = tight),
      glmer(f, data = data, family = family, nAGQ = nAGQ))
}
cases <- list()
for (a in c(1, 5, 25))
  cases[[paste0("cbpp|logit|intercept|", a)]] <- fitboth(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                                      cb, binomial, a)
for (a in c(1, 9))
  cases[[paste0("cbpp|probit|intercept|", a)]] <- fitboth(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                                       cb, binomial(link = "probit"), a)
for (a in c(1, 9))
  cases[[paste0("grouseticks|log|intercept|", a)]] <- fitboth(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION), gt, poisson, a)
for (a in c(1, 7))
  cases[[paste0("sitequarter|log|intercept|", a)]] <- fitboth(events ~ quarter + treat + offset(logpop) + (1 | site),
                                                           ps, poisson, a)
cases[["sitequarter|log|slope|1"]] <- fitboth(events ~ quarter + treat + offset(logpop) + (1 + quarter | site),
                                              ps, poisson)
cases[["simbin|probit|slope|1"]] <- fitboth(y ~ x + (1 + x | site), sb, binomial(link = "probit"))
cases[["simbin|logit|slope|1"]] <- fitboth(y ~ x + (1 + x | site), sb, binomial)
for (a in c(1, 11))
  cases[[paste0("patients|logit|intercept|", a)]] <- fitboth(y ~ a + (1 | site), pb, binomial, a)
for (a in c(1, 3))
  cases[[paste0("handbuilt|logit|intercept|", a)]] <- fitboth(cbind(events, trials - events) ~ period + (1 | site),
                                                           hb, binomial, a)
cases[["handbuilt|probit|intercept|1"]] <- fitboth(cbind(events, trials - events) ~ period + (1 | site),
                                                   hb, binomial(link = "probit"))

# ---------------------------------------------------------------- several random terms (Laplace)
cb$obs <- sprintf("o%02d", seq_len(nrow(cb)))
gt$BROOD <- as.character(grouseticks$BROOD)
data("VerbAgg", package = "lme4")
va <- data.frame(r2 = as.integer(VerbAgg$r2 == "Y"), Anger = VerbAgg$Anger, Gender = as.character(VerbAgg$Gender),
                 btype = as.character(VerbAgg$btype), situ = as.character(VerbAgg$situ),
                 id = as.character(VerbAgg$id), item = as.character(VerbAgg$item))
# stepped wedge, binary outcomes per site-period cell (simulated, seeded): 10 sites x 5 periods x 30 patients
sw <- expand.grid(k = 1:30, period = 1:5, site = sprintf("c%02d", 1:10), stringsAsFactors = FALSE)
start <- rep(rep(2:5, length.out = 10), each = 150)
sw$treat <- as.integer(sw$period >= start)
cell <- rnorm(50, 0, 0.3)[(match(sw$site, sprintf("c%02d", 1:10)) - 1) * 5 + sw$period]
sw$y <- rbinom(nrow(sw), 1, plogis(-0.8 + 0.5 * sw$treat + 0.1 * sw$period +
                                    rnorm(10, 0, 0.5)[match(sw$site, sprintf("c%02d", 1:10))] + cell))
sw$period <- as.character(sw$period)
sw <- sw[, c("site", "period", "treat", "y")]
terms_one <- function(g, default) {
  gs <- summary(g)$coefficients
  res <- list(fixef = unname(fixef(g)), fixef_names = names(fixef(g)), se = unname(gs[, "Std. Error"]), theta = unname(getME(g, "theta")),
              logLik = as.numeric(logLik(g)), AIC = AIC(g), BIC = BIC(g), nobs = nobs(g),
              logLik_default = as.numeric(logLik(default)), ranef = list(), ranef_condsd = list())
  re <- ranef(g, condVar = TRUE)
  for (nm in names(re)) {
    pv <- attr(re[[nm]], "postVar")
    res$ranef[[nm]] <- list(levels = rownames(re[[nm]]), values = lapply(as.list(re[[nm]]), unname),
                            condsd = if (is.list(pv))   # uncorrelated terms of one factor: one array per term
                              lapply(pv, function(a) sqrt(a[1, 1, ]))
                            else lapply(seq_len(ncol(re[[nm]])), function(j) sqrt(pv[j, j, ])))
  }
  res
}
fitterms <- function(f, data, family) {
  terms_one(glmer(f, data = data, family = family, control = tight), glmer(f, data = data, family = family))
}
terms <- list()
terms[["cbpp|logit|(1 | herd) + (1 | obs)"]] <- fitterms(cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs),
                                                       cb, binomial)
terms[["grouseticks|log|(1 | BROOD) + (1 | LOCATION)"]] <- fitterms(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION),
                                                                  gt, poisson)
terms[["VerbAgg|logit|(1 | id) + (1 | item)"]] <- fitterms(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item),
                                                         va, binomial)
terms[["steppedwedge|logit|(1 | site/period)"]] <- fitterms(y ~ treat + period + (1 | site/period), sw, binomial)
terms[["steppedwedge|probit|(1 | site) + (1 | period)"]] <- fitterms(y ~ treat + (1 | site) + (1 | period), sw,
                                                                    binomial(link = "probit"))
terms[["sitequarter|log|(1 + quarter || site)"]] <- fitterms(events ~ quarter + treat + offset(logpop) + (1 + quarter || site),
                                                            ps, poisson)

write_json(list(lme4_version = as.character(packageVersion("lme4")),
                data = list(cbpp = cb, grouseticks = gt, sitequarter = ps, simbin = sb, patients = pb, handbuilt = hb,
                            VerbAgg = va, steppedwedge = sw),
                cases = cases, terms = terms),
           "glmm.json", digits = NA, auto_unbox = TRUE, pretty = FALSE)
