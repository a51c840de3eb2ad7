# Reference values for tests/test_multilevel.py (multilevel meta-regression, issue 18 item 3).
# Run from tests/reference/:  Rscript ref_multilevel.R   -> writes multilevel.json
#
# metafor::rma.mv(yi, vi, mods = ~ ..., random = ~ 1 | outer/inner, method, test) on a grid
#   dataset x method {REML, ML} x test {z, t} x moderators {continuous, categorical, two},
# plus a hand-built study (3 regions x 2-3 sites, two indicators per site, a site-level moderator).
# The intercept-only references stay in ref_mixed.R (mixed.json); this script only adds moderators.
#
# Convergence: every model is fitted with tight control, nlminb (rel.tol = 1e-10; 1e-12 ends in
# nlminb's "false convergence") and optim BFGS (reltol = 1e-14). Both stop where the criterion is flat
# to rounding (they differ by up to 1e-6 relative in sigma2, nlminb by 1.6e-4 on
# konstantopoulos2011 ~ period + year), so the variance components are then polished by Newton steps
# on the analytic score (function `polish`, to ~1e-12) and every reported quantity comes from rma.mv
# with sigma2 fixed at the polished values (fit statistics with the variance components counted as
# estimated, see fitstats_free). The script stops unless the polished logLik (computed without
# rounding noise, see loglik_exact) is at least as high as both optimisers' and the better optimiser
# is within 1e-6 of it; all three are recorded under `check`.
# The input data are stored in the JSON so the Python tests need no R.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctl_nlminb <- list(optimizer = "nlminb", rel.tol = 1e-10, iter.max = 10000, eval.max = 10000)
ctl_bfgs <- list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14, maxit = 10000)

# ---------------------------------------------------------------- datasets -------------------------
dk <- metadat::dat.konstantopoulos2011
kon <- data.frame(district = as.character(dk$district), school = as.character(dk$school),
                  year = as.numeric(dk$year), yi = as.numeric(dk$yi), vi = as.numeric(dk$vi))
# a categorical moderator for the grid: decade of the study (the dataset has only `year`)
kon$period <- ifelse(kon$year < 1980, "a_1970s", ifelse(kon$year < 1990, "b_1980s", "c_1990s"))

da <- metadat::dat.assink2016
ass <- data.frame(study = as.character(da$study), esid = as.character(da$esid), year = da$year,
                  deltype = da$deltype, yi = da$yi, vi = da$vi)

db <- escalc(measure = "OR", ai = waward, n1i = wtotal, ci = maward, n2i = mtotal,
             data = metadat::dat.bornmann2007)
bor <- data.frame(study = db$study, obs = as.character(db$obs), year = db$year, type = db$type,
                  yi = as.numeric(db$yi), vi = as.numeric(db$vi))

# hand-built: 8 sites in 3 regions, two indicators per site, site volume (1000s of patients)
hand <- data.frame(
  region = rep(c("A", "A", "A", "B", "B", "C", "C", "C"), each = 2),
  site = rep(c("s1", "s2", "s3", "s1", "s2", "s1", "s2", "s3"), each = 2),
  indicator = rep(c("readmission", "ed_visit"), 8),
  volume = rep(c(1.2, 3.5, 0.8, 2.6, 4.1, 0.5, 1.9, 3.0), each = 2),
  yi = c(0.079, 0.172, 0.636, 0.453, 0.272, 0.247, 0.07, 0.569, 0.425, 0.309, 0.855, 0.925, 0.662,
         0.24, 0.488, 0.54),
  vi = c(0.027, 0.013, 0.038, 0.03, 0.013, 0.024, 0.038, 0.03, 0.026, 0.028, 0.021, 0.013, 0.016,
         0.026, 0.014, 0.021)
)

datasets <- list(konstantopoulos2011 = kon, assink2016 = ass, bornmann2007 = bor, hand = hand)
levels <- list(konstantopoulos2011 = c("district", "school"), assink2016 = c("study", "esid"),
               bornmann2007 = c("study", "obs"), hand = c("region", "site"))
# moderator sets (column lists, as the Python calls give them); `btt`: 1-based coefficients of the
# subset test (the categorical moderator's dummies in the two-moderator model)
modsets <- list(
  konstantopoulos2011 = list(continuous = "year", categorical = "period", two = c("period", "year")),
  assink2016 = list(continuous = "year", categorical = "deltype", two = c("deltype", "year")),
  bornmann2007 = list(continuous = "year", categorical = "type", two = c("type", "year")),
  hand = list(continuous = "volume")
)
# profile-likelihood CIs of the variance components with moderators (confint, uniroot tol 1e-12)
with_ci <- c("konstantopoulos2011|REML|z|continuous", "konstantopoulos2011|ML|z|continuous",
             "assink2016|REML|z|categorical", "hand|REML|z|continuous")

# Newton polishing of the (RE)ML variance components on the analytic score (dense V; k <= 100 here):
#   REML: g_l = -tr(P G_l)/2 + y'P G_l P y/2,  H_lm = tr(P G_l P G_m)/2 - y'P G_l P G_m P y
#   ML:   the traces use V^-1 instead of P (Searle, Casella & McCulloch 1992, ch. 6)
# with G_l = Z_l Z_l' (same unit at level l), P = V^-1 - V^-1 X (X'V^-1 X)^-1 X'V^-1. Function-value
# optimisers stop where the (RE)ML criterion is flat to rounding (~1e-8 relative in sigma2); the score
# is still informative there, so Newton on it locates the optimum to ~1e-13.
polish <- function(d, X, lv, s2, reml) {
  k <- nrow(d)
  G <- lapply(seq_along(lv), function(l) {
    id <- do.call(paste, c(d[lv[seq_len(l)]], sep = "\r"))
    outer(id, id, "==") * 1
  })
  for (it in 1:100) {
    V <- diag(d$vi) + Reduce(`+`, Map(`*`, s2, G))
    Vi <- solve(V)
    P <- Vi - Vi %*% X %*% solve(t(X) %*% Vi %*% X, t(X) %*% Vi)
    Tr <- if (reml) P else Vi
    Py <- P %*% d$yi
    g <- sapply(G, function(Gl) -sum(diag(Tr %*% Gl)) / 2 + sum(Py * (Gl %*% Py)) / 2)
    H <- outer(seq_along(G), seq_along(G), Vectorize(function(a, b)
      sum(diag(Tr %*% G[[a]] %*% Tr %*% G[[b]])) / 2 - as.numeric(t(Py) %*% G[[a]] %*% P %*% G[[b]] %*% Py)))
    free <- !(s2 <= 0 & g < 0)
    step <- rep(0, length(s2))
    step[free] <- -solve(H[free, free, drop = FALSE], g[free])
    s2 <- pmax(s2 + step, 0)
    if (max(abs(step) / pmax(s2, 1e-12)) < 1e-12) break
  }
  list(sigma2 = s2, grad = g, iter = it)
}

# (RE)ML log-likelihood (metafor's, with the REML term + log|X'X|/2) evaluated with an orthonormal basis
# Q of the columns of X: the REML criterion is invariant to X -> X A, and Q avoids the ~1e-9 rounding
# noise that an uncentred moderator (year ~ 2000) puts into log|X'V^-1 X| - log|X'X|.
loglik_exact <- function(d, X, lv, s2, reml) {
  Q <- qr.Q(qr(X))
  G <- lapply(seq_along(lv), function(l) {
    id <- do.call(paste, c(d[lv[seq_len(l)]], sep = "\r"))
    outer(id, id, "==") * 1
  })
  V <- diag(d$vi) + Reduce(`+`, Map(`*`, s2, G))
  Vi <- solve(V)
  QVQ <- t(Q) %*% Vi %*% Q
  r <- d$yi - Q %*% solve(QVQ, t(Q) %*% Vi %*% d$yi)
  k <- nrow(X)
  p <- ncol(X)
  ld <- as.numeric(determinant(V)$modulus)
  q <- sum(r * (Vi %*% r))
  if (reml) -0.5 * ((k - p) * log(2 * pi) + ld + as.numeric(determinant(QVQ)$modulus) + q)
  else -0.5 * (k * log(2 * pi) + ld + q)
}

fit_both <- function(d, f, rnd, meth, test, lv) {
  fit <- function(ctl, s2 = NULL) {
    args <- list(yi = d$yi, V = d$vi, random = rnd, data = d, method = meth, test = test, control = ctl)
    if (!is.null(f)) args$mods <- f
    if (!is.null(s2)) args$sigma2 <- s2
    do.call(rma.mv, args)
  }
  a <- fit(ctl_nlminb)
  b <- fit(ctl_bfgs)
  X <- model.matrix(a)
  pol <- polish(d, X, lv, a$sigma2, meth == "REML")
  ex <- fit(ctl_nlminb, pol$sigma2)  # every other quantity at the polished variance components
  reml <- meth == "REML"
  la <- loglik_exact(d, X, lv, a$sigma2, reml)
  lb <- loglik_exact(d, X, lv, b$sigma2, reml)
  lx <- loglik_exact(d, X, lv, pol$sigma2, reml)
  rel <- max(abs(a$sigma2 / b$sigma2 - 1))
  relx <- max(abs(a$sigma2 / pol$sigma2 - 1))
  # the polished point is the optimum: no optimiser does better, and the better of the two lands
  # within 1e-6 of it (nlminb can stop further away, e.g. 1.6e-4 on konstantopoulos2011 ~ period + year)
  relb <- max(abs(b$sigma2 / pol$sigma2 - 1))
  if (lx < max(la, lb) - 1e-12 || min(relx, relb) > 1e-6)
    stop(sprintf("optimum check failed (%s, %s): logLik %.3e %.3e, sigma2 %.3e %.3e %.3e; polish: %d iterations, score %s", deparse(f), meth, lx - la, lx - lb, rel, relx, relb, pol$iter, paste(signif(pol$grad, 3), collapse = " ")))
  list(fit = ex, free = a, loglik = lx, check = list(logLik_rma_polished = as.numeric(logLik(ex)), logLik_nlminb = la, logLik_bfgs = lb, logLik_polished = lx,
                                        sigma2_nlminb = a$sigma2, sigma2_bfgs = b$sigma2,
                                        sigma2_polished = pol$sigma2, score_polished = pol$grad,
                                        sigma2_maxrel_nlminb = relx, sigma2_maxrel_bfgs = relb))
}

# fit statistics with the variance components counted as estimated (the polished fit holds them fixed):
# metafor's fitstats formulas (rma.mv), checked against the free fit's own values
fitstats_free <- function(ex, free, meth, ll, d) {
  k <- ex$k
  p <- ex$p
  parms <- p + length(ex$sigma2)
  n <- if (meth == "ML") k else k - p
  nn <- max(n, parms + 2)
  dev <- if (meth == "ML") -2 * (ll - sum(dnorm(d$yi, d$yi, sqrt(d$vi), log = TRUE))) else -2 * ll
  out <- c(logLik = ll, deviance = dev, AIC = -2 * ll + 2 * parms,
           BIC = -2 * ll + parms * log(n), AICc = -2 * ll + 2 * parms * nn / (nn - parms - 1))
  llf <- as.numeric(logLik(free))
  chk <- c(AIC = -2 * llf + 2 * parms, BIC = -2 * llf + parms * log(n),
           AICc = -2 * llf + 2 * parms * nn / (nn - parms - 1))
  fsf <- fitstats(free)
  if (max(abs(chk - fsf[c("AIC:", "BIC:", "AICc:"), 1])) > 1e-10) stop("fitstats formulas differ")
  out
}

typical_v <- function(r, d) {
  W <- diag(1 / d$vi)
  X <- model.matrix(r)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  (r$k - r$p) / sum(diag(P))
}

cells <- list()
for (ds in names(datasets)) {
  d <- datasets[[ds]]
  lv <- levels[[ds]]
  rnd <- as.formula(paste("~ 1 |", paste(lv, collapse = "/")))
  for (meth in c("REML", "ML")) {
    r0 <- fit_both(d, NULL, rnd, meth, "z", lv)$fit   # intercept-only model (for the pseudo-R2)
    for (test in c("z", "t")) {
      for (ms in names(modsets[[ds]])) {
        mods <- modsets[[ds]][[ms]]
        f <- as.formula(paste("~", paste(mods, collapse = " + ")))
        both <- fit_both(d, f, rnd, meth, test, lv)
        r <- both$fit
        fs <- fitstats_free(r, both$free, meth, both$loglik, d)
        tv <- typical_v(r, d)
        # pseudo-R2 per level and total: proportional reduction of each variance component
        # (Konstantopoulos 2011; metafor tip "pseudo-R^2 for rma.mv"), truncated at 0 as rma.uni's R2
        R2 <- 100 * pmax(0, (r0$sigma2 - r$sigma2) / r0$sigma2)
        R2_total <- 100 * max(0, (sum(r0$sigma2) - sum(r$sigma2)) / sum(r0$sigma2))
        pr <- predict(r, newmods = model.matrix(r)[1:3, -1, drop = FALSE])
        key <- paste(ds, meth, test, ms, sep = "|")
        cell <- list(
          mods = as.list(mods), k = r$k, p = r$p, terms = rownames(r$b),
          estimate = unname(r$b[, 1]), se = r$se, statistic = r$zval, pval = r$pval,
          ci_lb = r$ci.lb, ci_ub = r$ci.ub, ddf = if (test == "t") unname(r$ddf) else NULL,
          vcov = unname(r$vb),
          QM = r$QM, QMdf = r$QMdf, QMp = r$QMp, QE = r$QE, QEp = r$QEp,
          sigma2 = r$sigma2, sigma2_nomods = r0$sigma2, R2 = R2, R2_total = R2_total,
          typical_v = tv, I2 = 100 * r$sigma2 / (sum(r$sigma2) + tv),
          logLik = unname(fs["logLik"]), deviance = unname(fs["deviance"]), AIC = unname(fs["AIC"]),
          BIC = unname(fs["BIC"]), AICc = unname(fs["AICc"]),
          pred = list(pred = unname(pr$pred), se = unname(pr$se), ci_lb = unname(pr$ci.lb),
                      ci_ub = unname(pr$ci.ub), pi_lb = unname(pr$pi.lb), pi_ub = unname(pr$pi.ub)),
          check = both$check
        )
        if (ms == "two") {
          btt <- seq(2, r$p - 1)   # the categorical moderator's dummies (year is last)
          rb <- rma.mv(yi, vi, mods = f, random = rnd, data = d, method = meth, test = test,
                       sigma2 = r$sigma2, btt = btt)
          cell$btt <- list(mod = mods[1], coefs = btt, QM = rb$QM, QMdf = rb$QMdf, QMp = rb$QMp)
        }
        if (key %in% with_ci) {
          ci <- confint(both$free, control = list(tol = 1e-12))
          cell$sigma2_ci_lb <- c(ci[[1]]$random[1, "ci.lb"], ci[[2]]$random[1, "ci.lb"])
          cell$sigma2_ci_ub <- c(ci[[1]]$random[1, "ci.ub"], ci[[2]]$random[1, "ci.ub"])
        }
        cells[[key]] <- cell
      }
    }
  }
}

out <- list(
  meta = list(R = R.version.string, metafor = as.character(packageVersion("metafor"))),
  levels = levels, data = datasets, cells = cells
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE, null = "null"), "multilevel.json")
