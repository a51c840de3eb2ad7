# Reference values for scaleup_analysis.sustainment.survival (tests/test_survival.py).
# Everything below is computed by R's survival package (Therneau), the calls visible here:
#   survfit(Surv(time, event) ~ by, conf.type =, conf.int =)   Kaplan-Meier curves
#   summary(fit)$table, quantile(fit, probs)                    medians / quantiles and their CIs
#   summary(fit, times =)                                       risk table at given times
#   survdiff(Surv(time, event) ~ by)                            log-rank test
#   survfit(Surv(time, factor(event, c(censored, causes))) ~ by) Aalen-Johansen (multi-state)
#   concordance(Surv(time, event) ~ predictor, reverse =)       Harrell's C with its IJ variance
# Every dataset used is written into survival.json, so that the tests do not need R.
# Run from tests/reference/:  Rscript ref_survival.R
library(survival)
library(jsonlite)

# ---- datasets ---------------------------------------------------------------------------------
lung2 <- survival::lung[!is.na(survival::lung$ph.ecog), c("time", "status", "sex", "ph.ecog", "age")]
lung2$event <- lung2$status - 1L                      # 1 = death (status 2), 0 = censored (status 1)
lung2$status <- NULL
aml2 <- data.frame(time = survival::aml$time, event = survival::aml$status,
                   x = as.character(survival::aml$x),
                   maintained = as.integer(survival::aml$x == "Maintained"))
veteran2 <- data.frame(time = survival::veteran$time, event = survival::veteran$status,
                       trt = survival::veteran$trt, celltype = as.character(survival::veteran$celltype),
                       karno = survival::veteran$karno)
# hand-built: tied times, censoring at event times, an event at time 0, a stratum ending with n = d
# (survival 0, std.err Inf), an all-censored stratum (b), a single-row stratum (c), a curve flat at
# exactly 0.5 to the end (d: print's median 2, quantile()'s 3), a curve passing 0.5 exactly (e:
# median = midpoint 2.5), ties in the predictor x
hand <- data.frame(
  time  = c(0, 1, 1, 2, 2, 2, 3, 4, 4, 5, 6,   2, 3, 3,   7,   1, 2, 3, 4,   1, 2, 3, 4, 4),
  event = c(1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1,   0, 0, 0,   1,   1, 1, 0, 0,   1, 1, 1, 1, 0),
  g     = c(rep("a", 11), rep("b", 3), "c", rep("d", 4), rep("e", 5)),
  x     = c(3, 2, 3, 1, 1, 2, 5, 4, 2, 2, 1,   3, 3, 2,   1,   2, 2, 4, 1,   3, 3, 1, 5, 2))
# times closer than sqrt(.Machine$double.eps) are tied by aeqSurv (timefix = TRUE)
near <- data.frame(
  time  = c(1, 1 + 1e-10, 2, 2 * (1 + 1e-9), 3, 3, 3.5, 1 + 2e-10, 2, 4, 5, 5 * (1 - 1e-12)),
  event = c(1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1),
  g     = c(rep(1, 7), rep(2, 5)),
  x     = c(1.5, 2.5, 1.5, 0.5, 3, 2, 1, 2.5, 2, 0.5, 1, 1))
# competing causes: mgus2 (progression to plasma-cell malignancy vs death; Therneau's "compete"
# vignette), causes as text with censoring coded "censored"
mg <- survival::mgus2
mgus <- data.frame(time = ifelse(mg$pstat == 0, mg$futime, mg$ptime),
                   event = ifelse(mg$pstat == 0, ifelse(mg$death == 1, "death", "censored"), "pcm"),
                   sex = as.character(mg$sex))
# hand-built competing causes 1, 2, 3: ties between causes and with censoring, an all-censored
# stratum (b), a single-row stratum (c), a cause seen in one stratum only (3)
hand_cr <- data.frame(
  time  = c(1, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6,   2, 3,   4,   0, 1, 1, 2, 3, 3, 5),
  event = c(1, 2, 0, 1, 1, 2, 0, 1, 0, 2, 1, 3,   0, 0,   1,   2, 1, 0, 3, 1, 2, 0),
  g     = c(rep("a", 12), rep("b", 2), "c", rep("d", 7)))

datasets <- list(lung = lung2, aml = aml2, veteran = veteran2, hand = hand, near = near,
                 mgus = mgus, hand_cr = hand_cr)

# ---- helpers ------------------------------------------------------------------------------------
surv_formula <- function(lhs, by) {
  as.formula(paste(lhs, "~", if (length(by)) paste(sprintf("`%s`", by), collapse = " + ") else "1"))
}
# the stratum of each row, as survfit names it ("sex=1, ph.ecog=0"), and each stratum's by-values
strata_of <- function(d, by, fit_strata) {
  if (!length(by)) return(list(labels = "all", values = list(list()), row = rep("all", nrow(d))))
  row <- do.call(paste, c(lapply(by, function(b) paste0(b, "=", as.character(d[[b]]))), sep = ", "))
  labels <- names(fit_strata)
  stopifnot(all(labels %in% row), all(row %in% labels))
  values <- lapply(labels, function(l) as.list(d[match(l, row), by, drop = FALSE]))
  list(labels = labels, values = values, row = row)
}
per_row_stratum <- function(fit) {
  if (is.null(fit$strata)) rep(1L, length(fit$time)) else rep(seq_along(fit$strata), fit$strata)
}

km_cell <- function(name, by, conf_type, level, times, probs) {
  d <- datasets[[name]]
  fit <- survfit(surv_formula("Surv(time, event)", by), data = d, conf.type = conf_type, conf.int = level)
  st <- strata_of(d, by, fit$strata)
  tab <- summary(fit)$table
  if (!is.matrix(tab)) tab <- matrix(tab, nrow = 1, dimnames = list(NULL, names(tab)))
  q <- quantile(fit, probs = probs)
  qm <- function(m) matrix(m, nrow = length(st$labels))     # strata x probs, also without strata
  s <- summary(fit, times = times)
  s_stratum <- if (is.null(s$strata)) rep(1L, length(s$time)) else as.integer(s$strata)
  list(dataset = name, by = by, conf_type = conf_type, level = level,
       strata = st$labels, strata_values = st$values,
       curve = list(stratum = per_row_stratum(fit), time = fit$time, n_risk = fit$n.risk,
                    n_event = fit$n.event, n_censor = fit$n.censor, surv = fit$surv,
                    std_err = fit$std.err, lower = fit$lower, upper = fit$upper),
       table = list(records = unname(tab[, "records"]), events = unname(tab[, "events"]),
                    median = unname(tab[, "median"]),
                    lcl = unname(tab[, paste0(level, "LCL")]), ucl = unname(tab[, paste0(level, "UCL")])),
       quantile = list(probs = probs, quantile = qm(q$quantile), lower = qm(q$lower), upper = qm(q$upper)),
       risk = list(times = times, stratum = s_stratum, time = s$time, n_risk = s$n.risk,
                   n_event = s$n.event, n_censor = s$n.censor, surv = s$surv,
                   std_err = s$std.err, lower = s$lower, upper = s$upper))
}

logrank_cell <- function(name, by) {
  d <- datasets[[name]]
  sd <- survdiff(surv_formula("Surv(time, event)", by), data = d)
  fit <- survfit(surv_formula("Surv(time, event)", by), data = d)
  st <- strata_of(d, by, fit$strata)
  stopifnot(identical(names(sd$n), names(fit$strata)))
  list(dataset = name, by = by, strata = st$labels, strata_values = st$values,
       n = as.vector(sd$n), observed = sd$obs, expected = sd$exp, var = sd$var,
       chisq = sd$chisq, df = length(sd$n) - 1 - sum(sd$exp == 0), pvalue = sd$pvalue)
}

cif_cell <- function(name, by, level, censored, causes) {
  d <- datasets[[name]]
  d$state <- factor(d$event, levels = c(censored, causes))
  fit <- survfit(surv_formula("Surv(time, state)", by), data = d, conf.int = level)
  st <- strata_of(d, by, fit$strata)
  stopifnot(identical(fit$states, c("(s0)", as.character(causes))))
  k <- seq_along(causes) + 1                           # columns of the causes; 1 is "(s0)"
  list(dataset = name, by = by, level = level, censored = censored, causes = causes,
       strata = st$labels, strata_values = st$values,
       stratum = per_row_stratum(fit), time = fit$time, n_risk = fit$n.risk[, 1],
       n_event = fit$n.event[, k, drop = FALSE], pstate = fit$pstate[, k, drop = FALSE],
       std_err = fit$std.err[, k, drop = FALSE], lower = fit$lower[, k, drop = FALSE],
       upper = fit$upper[, k, drop = FALSE], event_free = fit$pstate[, 1],
       event_free_std_err = fit$std.err[, 1])
}

concordance_cell <- function(name, predictor, reverse) {
  d <- datasets[[name]]
  cf <- concordance(as.formula(sprintf("Surv(time, event) ~ `%s`", predictor)), data = d, reverse = reverse)
  list(dataset = name, predictor = predictor, reverse = reverse, concordance = cf$concordance,
       var = cf$var, n = cf$n, count = as.list(cf$count))
}

# ---- the grid -----------------------------------------------------------------------------------
km_by <- list(lung = list(character(0), "sex", c("sex", "ph.ecog")),
              aml = list(character(0), "x"),
              veteran = list("trt", "celltype"),
              hand = list(character(0), "g"),
              near = list("g"))
km_times <- list(lung = c(0, 100, 200.5, 365, 500, 1000), aml = c(0, 5, 10, 20, 40, 100, 200),
                 veteran = c(0, 30, 90, 180, 365, 1000), hand = c(0, 0.5, 1, 2, 2.5, 4, 6, 7, 10),
                 near = c(0, 1, 1.5, 2, 3, 5))
km_options <- list(list("log", 0.95), list("log-log", 0.95), list("plain", 0.95), list("log", 0.9))
probs <- c(0.1, 0.25, 0.5, 0.75)
km <- list()
logrank <- list()
for (name in names(km_by)) for (by in km_by[[name]]) {
  for (o in km_options) km[[length(km) + 1]] <- km_cell(name, by, o[[1]], o[[2]], km_times[[name]], probs)
  if (length(by)) logrank[[length(logrank) + 1]] <- logrank_cell(name, by)
}

cif <- list()
for (lv in c(0.95, 0.9)) {
  for (by in list(character(0), "sex"))
    cif[[length(cif) + 1]] <- cif_cell("mgus", by, lv, "censored", c("death", "pcm"))
  for (by in list(character(0), "g")) cif[[length(cif) + 1]] <- cif_cell("hand_cr", by, lv, 0, c(1, 2, 3))
}

conc_pred <- list(lung = c("age", "ph.ecog"), aml = "maintained", veteran = "karno", hand = "x", near = "x")
conc <- list()
for (name in names(conc_pred)) for (p in conc_pred[[name]]) for (rv in c(FALSE, TRUE))
  conc[[length(conc) + 1]] <- concordance_cell(name, p, rv)

out <- list(survival_version = as.character(packageVersion("survival")),
            datasets = lapply(datasets, as.list), km = km, logrank = logrank, cif = cif,
            concordance = conc)
# digits = NA: full precision; na = "string" keeps NA, NaN and Inf apart ("NA", "NaN", "Inf")
write_json(out, "survival.json", digits = NA, auto_unbox = TRUE, na = "string", null = "null",
           matrix = "columnmajor")
message("wrote survival.json: ", length(km), " Kaplan-Meier cells, ", length(logrank), " log-rank cells, ",
        length(cif), " cumulative-incidence cells, ", length(conc), " concordance cells")
