# Reference values for tests/test_mixed.py and tests/test_multilevel.py.
# Run from tests/reference/:  Rscript ref_mixed.R   -> writes mixed.json
# Linear mixed models: lme4::lmer + lmerTest (Satterthwaite df); binomial GLMM: lme4::glmer (Laplace,
# nAGQ = 1); multilevel meta-analysis: metafor::rma.mv(yi, vi, random = ~ 1 | district/school).
# The input data are stored in the JSON so the Python tests need no R.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(metafor)
  library(jsonlite)
})

# ---------------------------------------------------------------- datasets -------------------------
data("sleepstudy", package = "lme4")
sleep <- data.frame(Reaction = sleepstudy$Reaction, Days = sleepstudy$Days,
                    Subject = as.character(sleepstudy$Subject))

# Unbalanced variant with a categorical fixed effect: 37 rows dropped at random (seeded), and
# `block` = phase of the deprivation (a_early: days 0-2, b_mid: 3-6, c_late: 7-9).
set.seed(20261123)
drop <- sort(sample(nrow(sleep), 37))
sleep_unbal <- sleep[-drop, ]
sleep_unbal$block <- as.character(cut(sleep_unbal$Days, c(-1, 2, 6, 9),
                                      labels = c("a_early", "b_mid", "c_late")))
rownames(sleep_unbal) <- NULL

data("Dyestuff", package = "lme4")
dye <- data.frame(Yield = Dyestuff$Yield, Batch = as.character(Dyestuff$Batch))
data("Dyestuff2", package = "lme4")   # singular fit: the batch variance is estimated at 0
dye2 <- data.frame(Yield = Dyestuff2$Yield, Batch = as.character(Dyestuff2$Batch))

data("cbpp", package = "lme4")
cb <- data.frame(herd = as.character(cbpp$herd), incidence = cbpp$incidence, size = cbpp$size,
                 period = as.character(cbpp$period))

dat_k <- metadat::dat.konstantopoulos2011
kon <- data.frame(district = as.character(dat_k$district), school = as.character(dat_k$school),
                  study = dat_k$study, yi = dat_k$yi, vi = dat_k$vi)

# ---------------------------------------------------------------- helpers --------------------------
lmm_ref <- function(fit) {
  s <- summary(fit)                      # lmerTest summary: Satterthwaite df and p-values
  cf <- s$coefficients
  vc <- as.data.frame(VarCorr(fit))      # grp, var1, var2, vcov, sdcor
  re <- ranef(fit, condVar = TRUE)[[1]]  # conditional modes + conditional variances
  pv <- attr(re, "postVar")
  list(
    fixef = as.list(fixef(fit)),
    se = as.list(setNames(cf[, "Std. Error"], rownames(cf))),
    df = if ("df" %in% colnames(cf)) as.list(setNames(cf[, "df"], rownames(cf))) else NULL,
    t = as.list(setNames(cf[, "t value"], rownames(cf))),
    p = if ("df" %in% colnames(cf)) as.list(setNames(cf[, "Pr(>|t|)"], rownames(cf))) else NULL,
    vcov = unname(as.matrix(vcov(fit))),
    varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                   var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = vc$vcov, sdcor = vc$sdcor),
    sigma = sigma(fit),
    theta = unname(getME(fit, "theta")),
    logLik = as.numeric(logLik(fit)),
    deviance_criterion = unname(if (isREML(fit)) getME(fit, "devcomp")$cmp[["REML"]]
                                else getME(fit, "devcomp")$cmp[["dev"]]),
    AIC = AIC(fit), BIC = BIC(fit),
    singular = isSingular(fit),
    ranef_groups = rownames(re),
    ranef = lapply(as.list(re), unname),
    ranef_condsd = lapply(seq_len(ncol(re)), function(j) sqrt(pv[j, j, ])),
    nobs = nobs(fit)
  )
}

# ---------------------------------------------------------------- LMM grid -------------------------
lmm <- list()
for (meth in c("REML", "ML")) {
  reml <- meth == "REML"
  lmm[[paste("sleepstudy", "intercept", meth, sep = "|")]] <-
    lmm_ref(lmerTest::lmer(Reaction ~ Days + (1 | Subject), data = sleep, REML = reml))
  lmm[[paste("sleepstudy", "slope", meth, sep = "|")]] <-
    lmm_ref(lmerTest::lmer(Reaction ~ Days + (Days | Subject), data = sleep, REML = reml))
  lmm[[paste("sleep_unbal", "intercept", meth, sep = "|")]] <-
    lmm_ref(lmerTest::lmer(Reaction ~ Days + block + (1 | Subject), data = sleep_unbal, REML = reml))
  lmm[[paste("sleep_unbal", "slope", meth, sep = "|")]] <-
    lmm_ref(lmerTest::lmer(Reaction ~ Days + block + (Days | Subject), data = sleep_unbal, REML = reml))
  lmm[[paste("dyestuff", "intercept", meth, sep = "|")]] <-
    lmm_ref(lmerTest::lmer(Yield ~ 1 + (1 | Batch), data = dye, REML = reml))
}
# Random-slope models again with tight optimiser tolerances: lme4's default nloptwrap/bobyqa stops
# ~1e-5 (REML) to ~4e-5 (ML) from the optimum in theta; these cells locate the optimum to ~1e-9.
ctl_tight <- lmerControl(optimizer = "nloptwrap",
                         optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14,
                                        ftol_rel = 1e-16, maxeval = 1e5))
for (meth in c("REML", "ML")) {
  reml <- meth == "REML"
  lmm[[paste("sleepstudy", "slope", meth, "tight", sep = "|")]] <-
    lmm_ref(lmerTest::lmer(Reaction ~ Days + (Days | Subject), data = sleep, REML = reml,
                           control = ctl_tight))
  lmm[[paste("sleep_unbal", "slope", meth, "tight", sep = "|")]] <-
    lmm_ref(lmerTest::lmer(Reaction ~ Days + block + (Days | Subject), data = sleep_unbal, REML = reml,
                           control = ctl_tight))
}
# singular fit (boundary): batch variance 0
lmm[["dyestuff2|intercept|REML"]] <- lmm_ref(lmerTest::lmer(Yield ~ 1 + (1 | Batch), data = dye2))

# ---------------------------------------------------------------- binomial GLMM --------------------
# "default": glmer's default controls (PIRLS tolPwrss = 1e-7: its Laplace deviance evaluates log|L| with the
# weights of the last-but-one PIRLS iterate, ~5e-4 away from the exact Laplace deviance here);
# "tight": tolPwrss = 1e-12 and a tight bobyqa, i.e. the exact Laplace approximation at its optimum.
glmm_ref <- function(g) {
  gs <- summary(g)$coefficients
  gre <- ranef(g, condVar = TRUE)$herd
  tau2 <- as.data.frame(VarCorr(g))$vcov[1]
  list(
    fixef = as.list(fixef(g)),
    se = as.list(setNames(gs[, "Std. Error"], rownames(gs))),      # vcov(g): Hessian-based (lme4 default)
    z = as.list(setNames(gs[, "z value"], rownames(gs))),
    p = as.list(setNames(gs[, "Pr(>|z|)"], rownames(gs))),
    tau2 = tau2,
    theta = unname(getME(g, "theta")),
    logLik = as.numeric(logLik(g)),
    deviance = unname(deviance(g)),
    AIC = AIC(g), BIC = BIC(g),
    MOR = exp(sqrt(2 * tau2) * qnorm(0.75)),
    icc_latent = tau2 / (tau2 + pi^2 / 3),
    ranef_groups = rownames(gre),
    ranef = unname(gre[, 1]),
    ranef_condsd = sqrt(attr(gre, "postVar")[1, 1, ])
  )
}
glmm <- list()
glmm[["cbpp|intercept|default"]] <- glmm_ref(
  glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cb, family = binomial, nAGQ = 1))
glmm[["cbpp|intercept|tight"]] <- glmm_ref(
  glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cb, family = binomial, nAGQ = 1,
        control = glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa",
                               optCtrl = list(rhobeg = 0.2, rhoend = 1e-10, maxfun = 1e5))))

# Binary outcome with a random slope: simulated (seeded) 0/1 data, 30 sites of 20-60 patients,
# y ~ Bernoulli(plogis(-0.5 + 0.8 x + b0 + b1 x)), sd(b0) = 0.8, sd(b1) = 0.5, cor = 0.3.
set.seed(20261124)
n_site <- sample(20:60, 30, replace = TRUE)
simbin <- data.frame(site = sprintf("s%02d", rep(1:30, n_site)), x = round(rnorm(sum(n_site)), 4))
S <- matrix(c(0.64, 0.3 * 0.8 * 0.5, 0.3 * 0.8 * 0.5, 0.25), 2)
B <- matrix(rnorm(60), 30) %*% chol(S)
sid <- rep(1:30, n_site)
simbin$y <- rbinom(nrow(simbin), 1, plogis(-0.5 + 0.8 * simbin$x + B[sid, 1] + B[sid, 2] * simbin$x))
glmm_ref_slope <- function(g) {
  gs <- summary(g)$coefficients
  gre <- ranef(g, condVar = TRUE)$site
  pv <- attr(gre, "postVar")
  vc <- as.data.frame(VarCorr(g))
  list(
    fixef = as.list(fixef(g)),
    se = as.list(setNames(gs[, "Std. Error"], rownames(gs))),
    z = as.list(setNames(gs[, "z value"], rownames(gs))),
    p = as.list(setNames(gs[, "Pr(>|z|)"], rownames(gs))),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = ifelse(is.na(vc$var2), "", vc$var2),
                   vcov = vc$vcov, sdcor = vc$sdcor),
    theta = unname(getME(g, "theta")),
    logLik = as.numeric(logLik(g)), AIC = AIC(g), BIC = BIC(g),
    ranef_groups = rownames(gre),
    ranef = lapply(as.list(gre), unname),
    ranef_condsd = lapply(seq_len(ncol(gre)), function(j) sqrt(pv[j, j, ]))
  )
}
glmm[["simbin|slope|default"]] <- glmm_ref_slope(
  glmer(y ~ x + (1 + x | site), data = simbin, family = binomial, nAGQ = 1))
glmm[["simbin|slope|tight"]] <- glmm_ref_slope(
  glmer(y ~ x + (1 + x | site), data = simbin, family = binomial, nAGQ = 1,
        control = glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa",
                               optCtrl = list(rhobeg = 0.2, rhoend = 1e-10, maxfun = 1e5))))

# ---------------------------------------------------------------- multilevel meta-analysis ---------
mlma <- list()
for (meth in c("REML", "ML")) {
  r <- rma.mv(yi, vi, random = ~ 1 | district/school, data = kon, method = meth)
  W <- diag(1 / kon$vi)
  X <- model.matrix(r)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  typical_v <- (r$k - r$p) / sum(diag(P))
  mlma[[paste("konstantopoulos2011", meth, sep = "|")]] <- list(
    estimate = unname(r$b[, 1]), se = r$se, zval = r$zval, pval = r$pval,
    ci_lb = r$ci.lb, ci_ub = r$ci.ub,
    sigma2 = r$sigma2, QE = r$QE, QEp = r$QEp, k = r$k,
    logLik = unname(fitstats(r)["logLik:", 1]), deviance = unname(fitstats(r)["deviance:", 1]),
    AIC = unname(fitstats(r)["AIC:", 1]), BIC = unname(fitstats(r)["BIC:", 1]),
    typical_v = typical_v,
    I2 = 100 * r$sigma2 / (sum(r$sigma2) + typical_v)   # multilevel I2 (metafor FAQ / Nakagawa & Santos 2012)
  )
  # profile-likelihood CIs of the variance components (uniroot tolerance tightened from 1e-4 to 1e-12)
  ci <- confint(r, control = list(tol = 1e-12))
  mlma[[paste("konstantopoulos2011", meth, sep = "|")]]$sigma2_ci_lb <- c(ci[[1]]$random[1, "ci.lb"],
                                                                          ci[[2]]$random[1, "ci.lb"])
  mlma[[paste("konstantopoulos2011", meth, sep = "|")]]$sigma2_ci_ub <- c(ci[[1]]$random[1, "ci.ub"],
                                                                          ci[[2]]$random[1, "ci.ub"])
  # t-test (test = "t"): df = k - p (test = "t"): df = k - p
  rt <- rma.mv(yi, vi, random = ~ 1 | district/school, data = kon, method = meth, test = "t")
  mlma[[paste("konstantopoulos2011", meth, sep = "|")]]$t <- list(
    se = rt$se, tval = rt$zval, df = rt$ddf, pval = rt$pval, ci_lb = rt$ci.lb, ci_ub = rt$ci.ub)
}

# Three nested levels with unbalanced nesting (simulated, seeded): effect sizes within sites within
# regions, random = ~ 1 | region/site/es (es = one row, i.e. within-site heterogeneity).
set.seed(20261125)
n_sites <- sample(2:4, 8, replace = TRUE)
ml3 <- do.call(rbind, lapply(seq_along(n_sites), function(r) {
  u_r <- rnorm(1, 0, sqrt(0.03))
  do.call(rbind, lapply(seq_len(n_sites[r]), function(s) {
    n_es <- sample(1:3, 1)
    u_s <- rnorm(1, 0, sqrt(0.02))
    vi <- round(runif(n_es, 0.005, 0.03), 5)
    data.frame(region = sprintf("%02d", r), site = paste0("site", s), vi = vi,
               yi = round(0.2 + u_r + u_s + rnorm(n_es, 0, sqrt(0.01)) + rnorm(n_es, 0, sqrt(vi)), 5))
  }))
}))
ml3$es <- as.character(seq_len(nrow(ml3)))
for (meth in c("REML", "ML")) {
  r3 <- rma.mv(yi, vi, random = ~ 1 | region/site/es, data = ml3, method = meth)
  mlma[[paste("sim3level", meth, sep = "|")]] <- list(
    estimate = unname(r3$b[, 1]), se = r3$se, zval = r3$zval, pval = r3$pval,
    ci_lb = r3$ci.lb, ci_ub = r3$ci.ub, sigma2 = r3$sigma2, QE = r3$QE, QEp = r3$QEp, k = r3$k,
    logLik = unname(fitstats(r3)["logLik:", 1]), deviance = unname(fitstats(r3)["deviance:", 1]),
    AIC = unname(fitstats(r3)["AIC:", 1]), BIC = unname(fitstats(r3)["BIC:", 1]))
}

# one level with one effect size per unit: rma.mv(random = ~ 1 | study) is rma.uni(yi, vi)
uni <- list()
for (meth in c("REML", "ML")) {
  ru <- rma(yi, vi, data = kon, method = meth)
  uni[[meth]] <- list(estimate = unname(ru$b[, 1]), se = ru$se, tau2 = ru$tau2,
                      logLik = unname(fitstats(ru)["logLik:", 1]))
}

out <- list(
  meta = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
              lmerTest = as.character(packageVersion("lmerTest")),
              metafor = as.character(packageVersion("metafor"))),
  data = list(sleepstudy = sleep, sleep_unbal = sleep_unbal, dyestuff = dye, dyestuff2 = dye2,
              cbpp = cb, simbin = simbin, konstantopoulos2011 = kon,
              sim3level = ml3),
  lmm = lmm, glmm = glmm, multilevel = mlma, rma_uni = uni
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE), "mixed.json")
