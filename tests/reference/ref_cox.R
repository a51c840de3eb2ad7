# Reference values for scaleup_analysis.sustainment.cox (tests/test_cox.py).
# Run from tests/reference/:  Rscript ref_cox.R   (needs r-cran-survival, r-cran-jsonlite)
#
# Grid: dataset x ties (efron, breslow) x variance (none; cluster = robust sandwich; frailty =
# shared gamma frailty) where the dataset has a grouping column:
#   lung    (status recoded 0/1; age + sex + ph.ecog; rows with a missing covariate dropped;
#            grouping: inst, 1 missing value, dropped by coxph in the cluster / frailty cells),
#   veteran (celltype factor with its levels in alphabetical order, so that the reference level is
#            the one patsy picks, + karno),
#   rats    (rx; grouping: litter, 100 litters),
#   ovarian (age + resid.ds + rx + ecog.ps),
#   sites   (built below: de-adoption of an innovation by 72 sites in 4 regions, times in whole
#            quarters so that many event times are tied; psat_score + fidelity + rurality factor).
# and two counting-process data sets, Surv(start, stop, event) (time-varying covariates):
#   heart   (survival::heart, the Stanford heart transplant data in counting-process form: 172 rows
#            of 103 patients (survival's jasa1 is the variant with 170 rows); transplant as 0/1;
#            age + year + surgery + transplant, transplant switching on at the transplant;
#            cluster: id (the patients, 1 or 2 rows each); no frailty cells),
#   sites_tv (built below: 80 sites in 4 regions, de-adoption in whole quarters (tied times); support
#            withdrawn at a quarter w: rows (0, w] with support_withdrawn = 0 and (w, T] with 1 (one
#            row when w = 0 or w >= T); psat_score (fixed) + support_withdrawn (time-varying);
#            cluster: site_id, shared gamma frailty: rss_code).
# Every data set used is written into cox.json, so the Python tests run without R.
#
# Convergence: coxph's default stops when the log partial likelihood changes by less than 1e-9
# (relative), a few 1e-9 away from the optimum in the coefficients. All fits here use
# coxph.control(eps = 1e-12, iter.max = 100, outer.max = 100) so that R is at the optimum to ~1e-12
# too (toler.chol keeps its default, .Machine$double.eps^0.75: it decides which directions of a
# singular robust variance coxph.wtest drops; coxph.control warns that eps is below it, harmlessly).
# The frailty variance theta is given three ways:
#   em_*     : survival's own search (method "em", frailty(g, eps = 1e-10)): theta of the last fit of
#              the history (the one the printed coefficients belong to);
#   opt_*    : theta maximising R's own integrated likelihood (fit$history[[1]]$c.loglik of
#              fixed-theta fits, frailty(g, theta = th)) with optimize() on log(theta), tol 1e-10;
#   fixed    : complete fits at fixed theta values (0.5 and opt_theta), compared exactly.
# With more than 5 groups survival's frailty is "sparse": its Newton steps use the diagonal of the
# frailty block of the information and stop on the log-likelihood, a few 1e-7 short of the optimum
# in the frailties (see tests/test_cox.py), and basehaz() leaves the frailties out of the risk scores;
# basehaz_frail is the baseline with them (survfit of the model whose offset is the fitted linear
# predictor), which is what survival gives with at most 5 groups.
library(survival)
library(jsonlite)

ctl <- suppressWarnings(coxph.control(eps = 1e-12, iter.max = 100, outer.max = 100))
# a dataset's cluster column (robust variance) and frailty column are "group" unless it says otherwise
cluster_of <- function(ds) if (is.null(ds$cluster)) ds$group else ds$cluster

# ---- data sets ---------------------------------------------------------------------------------
lung0 <- survival::lung
lung0$status <- lung0$status - 1                      # 1 = censored, 2 = dead  ->  0 / 1
lung0 <- lung0[complete.cases(lung0[, c("time", "status", "age", "sex", "ph.ecog")]),
               c("time", "status", "age", "sex", "ph.ecog", "inst")]

vet <- survival::veteran[, c("time", "status", "celltype", "karno")]
vet$celltype <- factor(as.character(vet$celltype), levels = sort(levels(vet$celltype)))

rats0 <- survival::rats[, c("time", "status", "rx", "litter")]
ovarian0 <- survival::ovarian[, c("futime", "fustat", "age", "resid.ds", "rx", "ecog.ps")]

set.seed(20240611)
n_sites <- 72
regions <- c("03", "05", "06", "13")
rss <- rep(regions, each = n_sites / 4)
u <- c(-0.9, 0.1, 0.6, 0.3)[match(rss, regions)]          # region log-frailties
psat <- round(runif(n_sites, 2, 7), 1)
fid <- round(runif(n_sites, 0.4, 1), 2)
rur <- sample(c("rural", "remote", "urban"), n_sites, replace = TRUE)
lp <- -0.45 * (psat - 4.5) - 1.2 * (fid - 0.7) + ifelse(rur == "remote", 0.5, ifelse(rur == "rural", 0.2, 0)) + u
t_true <- rexp(n_sites, 0.08 * exp(lp))
cens <- sample(8:16, n_sites, replace = TRUE)
sites <- data.frame(quarters = pmax(1, ceiling(pmin(t_true, cens))), deadopted = as.integer(t_true <= cens),
                    psat_score = psat, fidelity = fid, rurality = rur, rss_code = rss, stringsAsFactors = FALSE)

# counting-process data: survival::heart (transplant as 0/1)
heart0 <- survival::heart[, c("start", "stop", "event", "age", "year", "surgery", "transplant", "id")]
heart0$transplant <- as.numeric(as.character(heart0$transplant))

# sites_tv: support withdrawn at quarter w (0 = from the start, >= T = not during follow-up); the
# hazard of de-adoption in quarter q is higher once q > w
set.seed(20240612)
n_tv <- 80
rss_tv <- rep(regions, each = n_tv / 4)
u_tv <- c(-0.7, 0.1, 0.6, 0.2)[match(rss_tv, regions)]
psat_tv <- round(runif(n_tv, 2, 7), 1)
w_tv <- sample(0:10, n_tv, replace = TRUE)
cens_tv <- sample(6:16, n_tv, replace = TRUE)
tv_rows <- list()
for (i in seq_len(n_tv)) {
  stop_i <- cens_tv[i]
  ev_i <- 0L
  for (q in seq_len(cens_tv[i])) {
    h <- 0.05 * exp(-0.4 * (psat_tv[i] - 4.5) + 0.9 * (q > w_tv[i]) + u_tv[i])
    if (runif(1) < 1 - exp(-h)) { stop_i <- q; ev_i <- 1L; break }
  }
  row <- function(a, b, e, wd) data.frame(site_id = sprintf("S%02d", i), q_start = a, q_stop = b, deadopted = e,
                                          psat_score = psat_tv[i], support_withdrawn = wd, rss_code = rss_tv[i],
                                          stringsAsFactors = FALSE)
  tv_rows[[i]] <- if (w_tv[i] == 0) row(0, stop_i, ev_i, 1L)
                  else if (w_tv[i] >= stop_i) row(0, stop_i, ev_i, 0L)
                  else rbind(row(0, w_tv[i], 0L, 0L), row(w_tv[i], stop_i, ev_i, 1L))
}
sites_tv <- do.call(rbind, tv_rows)
rownames(sites_tv) <- NULL

datasets <- list(
  lung = list(data = lung0, time = "time", event = "status", rhs = "age + sex + ph.ecog",
              py = c("age", "sex", "ph.ecog"), group = "inst"),
  veteran = list(data = vet, time = "time", event = "status", rhs = "celltype + karno",
                 py = "C(celltype) + karno", group = NULL),
  rats = list(data = rats0, time = "time", event = "status", rhs = "rx", py = "rx", group = "litter"),
  ovarian = list(data = ovarian0, time = "futime", event = "fustat", rhs = "age + resid.ds + rx + ecog.ps",
                 py = c("age", "resid.ds", "rx", "ecog.ps"), group = NULL),
  sites = list(data = sites, time = "quarters", event = "deadopted",
               rhs = "psat_score + fidelity + rurality", py = "psat_score + fidelity + C(rurality)",
               group = "rss_code"),
  heart = list(data = heart0, start = "start", time = "stop", event = "event",
               rhs = "age + year + surgery + transplant", py = c("age", "year", "surgery", "transplant"),
               group = NULL, cluster = "id"),
  sites_tv = list(data = sites_tv, start = "q_start", time = "q_stop", event = "deadopted",
                  rhs = "psat_score + support_withdrawn", py = c("psat_score", "support_withdrawn"),
                  group = "rss_code", cluster = "site_id")
)

# ---- helpers -----------------------------------------------------------------------------------
surv_lhs <- function(ds) {
  if (is.null(ds$start)) paste0("Surv(`", ds$time, "`, `", ds$event, "`)")
  else paste0("Surv(`", ds$start, "`, `", ds$time, "`, `", ds$event, "`)")
}
surv_formula <- function(ds, extra = NULL) {
  rhs <- paste(c(ds$rhs, extra), collapse = " + ")
  as.formula(paste0(surv_lhs(ds), " ~ ", rhs))
}
mat <- function(m) unname(lapply(seq_len(nrow(m)), function(i) unname(m[i, ])))
horizons_of <- function(d, ds) {
  tt <- sort(unique(d[[ds$time]][d[[ds$event]] == 1]))
  unname(c(tt[1] / 2, quantile(tt, c(0.25, 0.5, 0.9), type = 1), max(d[[ds$time]])))
}
newdata_of <- function(d) d[c(1, nrow(d) %/% 2, nrow(d)), , drop = FALSE]

standard_cell <- function(name, ds, ties, variance) {
  d <- ds$data
  if (variance == "cluster") {
    d$cl_ <- d[[cluster_of(ds)]]
    fit <- coxph(surv_formula(ds), data = d, ties = ties, cluster = cl_, control = ctl, model = TRUE)
  } else {
    fit <- coxph(surv_formula(ds), data = d, ties = ties, control = ctl, model = TRUE)
  }
  s <- summary(fit)
  out <- list(dataset = name, ties = ties, variance = variance,
              terms = I(names(coef(fit))), coef = unname(coef(fit)),
              var = mat(fit$var), se = unname(sqrt(diag(fit$var))),
              loglik = fit$loglik, n = fit$n, nevent = fit$nevent,
              score = unname(fit$score), wald = unname(fit$wald.test),
              logtest = unname(s$logtest), sctest = unname(s$sctest),
              waldtest_pvalue = unname(s$waldtest["pvalue"]),
              conf_int = mat(s$conf.int), pvalue = unname(s$coefficients[, ncol(s$coefficients)]),
              z = unname(s$coefficients[, "z"]))
  if (variance == "cluster") {
    out$naive_var <- mat(fit$naive.var)
    out$naive_se <- unname(sqrt(diag(fit$naive.var)))
    out$rscore <- unname(fit$rscore)
    out$robscore <- unname(s$robscore)
    cl <- d[[cluster_of(ds)]]
    out$n_clusters <- length(unique(cl[!is.na(cl)]))
  }
  bh <- basehaz(fit, centered = FALSE)
  out$basehaz <- list(time = bh$time, hazard = bh$hazard)
  hz <- horizons_of(d, ds)
  nd <- newdata_of(d)
  sf <- summary(survfit(fit, newdata = nd), times = hz, extend = TRUE)
  out$survfit <- list(horizons = hz, rows = c(1L, nrow(d) %/% 2L, nrow(d)) - 1L,
                      surv = mat(t(matrix(sf$surv, ncol = nrow(nd)))),
                      cumhaz = mat(t(matrix(sf$cumhaz, ncol = nrow(nd)))))
  out
}

frail_fit <- function(ds, ties, theta = NULL, eps = 1e-10) {
  term <- if (is.null(theta)) sprintf("frailty(`%s`, eps = %g)", ds$group, eps)
          else sprintf("frailty(`%s`, theta = %.17g)", ds$group, theta)
  coxph(surv_formula(ds, term), data = ds$data, ties = ties, control = ctl, model = TRUE)
}

frail_values <- function(fit, ds) {
  h <- fit$history[[1]]
  nb <- length(ds$py_terms)
  cf <- fit$coefficients
  sparse <- !is.null(fit$frail)
  frail <- if (sparse) fit$frail else unname(cf[grep("^gamma:", names(cf))])
  beta <- unname(cf[seq_len(nb)])
  var <- fit$var[seq_len(nb), seq_len(nb), drop = FALSE]
  var2 <- fit$var2[seq_len(nb), seq_len(nb), drop = FALSE]
  fvar <- if (sparse) fit$fvar else diag(fit$var)[-seq_len(nb)]
  g <- ds$data[[ds$group]]
  keep <- !is.na(g)
  lev <- levels(factor(g[keep]))
  bh <- basehaz(fit, centered = FALSE)
  # the baseline with the frailties in the risk scores: survfit of the model whose offset is the
  # fitted linear predictor (basehaz leaves the frailties out when they are sparse, > 5 groups)
  d <- ds$data[keep, ]
  X <- model.matrix(as.formula(paste("~", ds$rhs)), d)[, -1, drop = FALSE]
  d$lp_ <- as.vector(X %*% beta) + frail[match(as.character(g[keep]), lev)]
  off <- coxph(as.formula(paste0(surv_lhs(ds), " ~ offset(lp_)")), data = d,
               ties = fit$method, model = TRUE)
  sf <- survfit(off, newdata = data.frame(lp_ = 0))
  list(theta = if (is.null(h$history)) h$theta else unname(h$history[nrow(h$history), 1]),
       c_loglik = h$c.loglik, coef = beta, se = sqrt(diag(var)), se2 = sqrt(diag(var2)),
       var = mat(var), var2 = mat(var2), frail = unname(frail), frail_group = lev, fvar = unname(fvar),
       df = unname(fit$df), loglik = fit$loglik, penalty = unname(fit$penalty),
       wald = unname(fit$wald.test),
       # covariates only (R's wald.test also holds the frailty coefficients when not sparse)
       wald_beta = unname(coxph.wtest(var, beta)$test),
       # the frailty line of print(fit): Chisq, DF, p
       frail_test = unname(summary(fit)$coefficients[nb + 1, c("Chisq", "DF", "p")]),
       sparse = sparse, n = fit$n, nevent = fit$nevent,
       basehaz = list(time = bh$time, hazard = bh$hazard),
       basehaz_frail = list(time = sf$time, hazard = sf$cumhaz))
}

frailty_cell <- function(name, ds, ties) {
  em <- frail_fit(ds, ties)
  h <- em$history[[1]]$history
  closs <- function(lt) -frail_fit(ds, ties, theta = exp(lt))$history[[1]]$c.loglik
  opt <- optimize(closs, interval = c(log(1e-3), log(50)), tol = 1e-10)
  theta_opt <- exp(opt$minimum)
  out <- list(dataset = name, ties = ties, variance = "frailty", terms = I(ds$py_terms),
              em = frail_values(em, ds), em_history = list(theta = unname(h[, 1]), c_loglik = unname(h[, 3])),
              opt_theta = theta_opt, opt_c_loglik = -opt$objective,
              fixed = list(frail_values(frail_fit(ds, ties, theta = 0.5), ds),
                           frail_values(frail_fit(ds, ties, theta = theta_opt), ds)))
  out$fixed[[1]]$theta_given <- 0.5
  out$fixed[[2]]$theta_given <- theta_opt
  out
}

# ---- the grid ----------------------------------------------------------------------------------
cells <- list()
for (name in names(datasets)) {
  ds <- datasets[[name]]
  ds$py_terms <- names(coef(coxph(surv_formula(ds), data = ds$data)))
  for (ties in c("efron", "breslow")) {
    message(name, " / ", ties)
    cells[[length(cells) + 1]] <- standard_cell(name, ds, ties, "none")
    if (!is.null(cluster_of(ds)))
      cells[[length(cells) + 1]] <- standard_cell(name, ds, ties, "cluster")
    if (!is.null(ds$group))
      cells[[length(cells) + 1]] <- frailty_cell(name, ds, ties)
  }
}

# ---- a monotone likelihood: coxph's warning ----------------------------------------------------
mono <- data.frame(time = c(1, 2, 3, 4, 5, 6, 7, 8), status = c(1, 1, 1, 1, 0, 1, 0, 0),
                   x = c(1, 1, 1, 1, 0, 0, 0, 0), z = c(0.3, -0.2, 0.8, 0.1, 0.5, -0.4, 0.9, 0.2))
mono_warning <- ""
invisible(withCallingHandlers(coxph(Surv(time, status) ~ x + z, data = mono),
                    warning = function(w) { mono_warning <<- conditionMessage(w); invokeRestart("muffleWarning") }))

# ---- no heterogeneity between 4 groups: the integrated likelihood is largest at theta = 0 -------
set.seed(1)
flat <- data.frame(time = c(1, 1, 2, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 9, 9, 10),
                   status = c(1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0), x = rnorm(16), g = rep(1:4, 4))
# survival's search walks theta down towards 0 and warns that its inner loop, with the penalty growing
# as 1/theta, does not converge ("Inner loop failed to coverge for iterations ..."): kept in r_warning
flat_warning <- ""
flat_fit <- withCallingHandlers(
  coxph(Surv(time, status) ~ x + frailty(g, eps = 1e-10), data = flat, control = ctl),
  warning = function(w) { flat_warning <<- conditionMessage(w); invokeRestart("muffleWarning") })
flat_cox <- coxph(Surv(time, status) ~ x, data = flat, control = ctl)
boundary <- list(data = as.list(flat), theta = unname(flat_fit$history[[1]]$theta),
                 coef = unname(coef(flat_fit)["x"]), cox_coef = unname(coef(flat_cox)),
                 cox_loglik = flat_cox$loglik, c_loglik = flat_fit$history[[1]]$c.loglik,
                 r_warning = flat_warning)

out <- list(
  r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
  control = list(eps = ctl$eps, toler_chol = ctl$toler.chol, iter_max = ctl$iter.max,
                 outer_max = ctl$outer.max, frailty_eps = 1e-10, optimize_tol = 1e-10),
  datasets = lapply(datasets, function(ds) {
    x <- list(data = as.list(ds$data), time = ds$time, event = ds$event,
              formula = ds$py, group = if (is.null(ds$group)) NA else ds$group, r_formula = ds$rhs)
    if (!is.null(ds$start)) x$start <- ds$start          # counting-process data sets only
    if (!is.null(ds$cluster)) x$cluster <- ds$cluster
    x
  }),
  cells = cells,
  monotone = list(data = as.list(mono), warning = mono_warning),
  boundary = boundary
)
write_json(out, "cox.json", digits = NA, auto_unbox = TRUE, na = "null", null = "null")
message("wrote cox.json with ", length(cells), " cells")
