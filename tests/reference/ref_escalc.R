# Reference values for scaleup_analysis.effect_sizes (tests/test_effect_sizes.py).
# Run from this folder:  Rscript ref_escalc.R   -> writes escalc.json
# Every value is metafor::escalc(); the input data are stored in the JSON too, so the Python tests
# need no R data. Inputs are round-tripped through JSON first (15 significant digits) so that R and
# Python compute from bit-identical numbers.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

roundtrip <- function(d) as.data.frame(fromJSON(toJSON(d, digits = NA, na = "null", dataframe = "columns")))

# ---- 2x2 tables (ai = events group 1, bi = non-events group 1, ci/di likewise for group 2) ----
# Landenberger & Lipsey (2005): "success" = non-recidivism, group 1 = CBT, as in the package example.
land <- read.csv("../../scaleup_analysis/data/bundled/landenberger2005_cbt_offenders.csv",
                 check.names = FALSE)
landenberger <- data.frame(study = land$study,
                           ai = land[["n.cbt.non"]], bi = land[["n.cbt.rec"]],
                           ci = land[["n.ctrl.non"]], di = land[["n.ctrl.rec"]])
# metafor's dat.bcg (BCG vaccine trials): tpos, tneg, cpos, cneg.
bcg <- data.frame(study = as.character(dat.bcg$trial),
                  ai = dat.bcg$tpos, bi = dat.bcg$tneg, ci = dat.bcg$cpos, di = dat.bcg$cneg)
# Synthetic table (neither data set above has a zero cell): single zeros in each cell, double-zero
# rows (no events in either group: S2; only events in both groups: S5), an empty group 1 (S9)
# and a missing count (S7).
zerocells <- data.frame(
  study = paste0("S", 1:10),
  ai = c(0, 0, 5, 12, 10, 4, NA, 2, 0, 7),
  bi = c(20, 15, 10, 0, 0, 16, 10, 30, 0, 13),
  ci = c(3, 0, 7, 9, 8, 0, 3, 6, 4, 0),
  di = c(17, 15, 8, 3, 0, 25, 12, 26, 6, 0)
)
tables <- lapply(list(landenberger = landenberger, bcg = bcg, zerocells = zerocells), roundtrip)

# ---- means / SDs ----
normand <- data.frame(study = as.character(dat.normand1999$source),
                      m1i = dat.normand1999$m1i, sd1i = dat.normand1999$sd1i, n1i = dat.normand1999$n1i,
                      m2i = dat.normand1999$m2i, sd2i = dat.normand1999$sd2i, n2i = dat.normand1999$n2i)
curtis <- data.frame(study = as.character(dat.curtis1998$id),
                     m1i = dat.curtis1998$m1i, sd1i = dat.curtis1998$sd1i, n1i = dat.curtis1998$n1i,
                     m2i = dat.curtis1998$m2i, sd2i = dat.curtis1998$sd2i, n2i = dat.curtis1998$n2i)
# Synthetic edge cases: a missing mean (C3), SD of 0 in one group (C4), n = 2 per group (C5: mi = 2),
# both SDs 0 with different means (C6: d = Inf -> NA), n1 = n2 = 1 (C7: mi = 0, c(mi) undefined -> NA).
continuous_edge <- data.frame(
  study = paste0("C", 1:7),
  m1i = c(10.2, 3.5, NA, 7, 5.5, 4, 1.5),
  sd1i = c(2.1, 1.2, 1, 0, 1.1, 0, 1),
  n1i = c(20, 8, 12, 15, 2, 10, 1),
  m2i = c(9.1, 4.25, 6, 6.2, 4.9, 3, 1),
  sd2i = c(2.4, 1.0, 1.5, 1.3, 0.8, 0, 1),
  n2i = c(22, 9, 12, 14, 2, 10, 1)
)
means <- lapply(list(normand1999 = normand, curtis1998 = curtis, continuous_edge = continuous_edge),
                roundtrip)

cells <- list()
k <- 0L
put <- function(cell) { k <<- k + 1L; cells[[k]] <<- cell }

# ---- grid 1: OR / RR / RD x to x add x drop00 (x vtype for RD) x 2x2 data sets (cell input) ----
for (ds in names(tables)) {
  d <- tables[[ds]]
  for (measure in c("OR", "RR", "RD")) {
    vtypes <- if (measure == "RD") c("LS", "UB", "AV") else "LS"
    for (to in c("only0", "all", "if0all", "none")) for (add in c(0.5, 0)) for (drop00 in c(TRUE, FALSE))
      for (vtype in vtypes) {
        es <- suppressWarnings(escalc(measure = measure, ai = ai, bi = bi, ci = ci, di = di, data = d,
                                      add = add, to = to, drop00 = drop00, vtype = vtype))
        put(list(dataset = ds, input = "cells", measure = measure, to = to, add = add,
                 drop00 = drop00, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
      }
  }
}

# ---- grid 2: group sizes instead of the second cell (n1i/n2i), default zero-cell options ----
for (ds in names(tables)) {
  d <- tables[[ds]]
  d$n1i <- d$ai + d$bi
  d$n2i <- d$ci + d$di
  for (measure in c("OR", "RR", "RD")) {
    es <- suppressWarnings(escalc(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d))
    put(list(dataset = ds, input = "n", measure = measure, to = "only0", add = 0.5,
             drop00 = FALSE, vtype = "LS", yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
    # bi/di given but partly missing: metafor fills them with n1i - ai / n2i - ci (replmiss)
    d2 <- d
    d2$bi[seq(1, nrow(d2), by = 3)] <- NA
    d2$di[seq(2, nrow(d2), by = 3)] <- NA
    es <- suppressWarnings(escalc(measure = measure, ai = ai, bi = bi, ci = ci, di = di,
                                  n1i = n1i, n2i = n2i, data = d2))
    put(list(dataset = ds, input = "cells_partial_n", measure = measure, to = "only0", add = 0.5,
             drop00 = FALSE, vtype = "LS", yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
}

# ---- grid 3: SMD (Hedges' g) and MD x vtype x means data sets ----
for (ds in names(means)) {
  d <- means[[ds]]
  for (vtype in c("LS", "UB", "LS2", "AV")) {
    es <- suppressWarnings(escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i,
                                  m2i = m2i, sd2i = sd2i, n2i = n2i, data = d, vtype = vtype))
    put(list(dataset = ds, input = "means", measure = "SMD", to = "only0", add = 0.5,
             drop00 = FALSE, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
  for (vtype in c("LS", "UB", "HO")) {
    es <- suppressWarnings(escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i,
                                  m2i = m2i, sd2i = sd2i, n2i = n2i, data = d, vtype = vtype))
    put(list(dataset = ds, input = "means", measure = "MD", to = "only0", add = 0.5,
             drop00 = FALSE, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
}

# ==== measures added for issue 18 (appended after the cells above, which are unchanged) ====
# ---- single proportions: xi events out of ni (mi = ni - xi non-events) ----
# dat.pritz1997 (xi, ni), dat.debruin2009 (xi, ni). Synthetic edge cases: no events (P1), only events
# (P2: mi = 0), a missing count (P4), one subject (P5), a missing ni (P7).
pritz <- data.frame(study = as.character(dat.pritz1997$study), xi = dat.pritz1997$xi, ni = dat.pritz1997$ni)
debruin <- data.frame(study = as.character(dat.debruin2009$author), xi = dat.debruin2009$xi,
                      ni = dat.debruin2009$ni)
prop_edge <- data.frame(
  study = paste0("P", 1:8),
  xi = c(0, 12, 3, NA, 1, 40, 7, 0),
  ni = c(25, 12, 30, 20, 1, 200, NA, 3)
)
props <- lapply(list(pritz1997 = pritz, debruin2009 = debruin, prop_edge = prop_edge), roundtrip)
prop_vtypes <- list(PR = c("LS", "UB", "AV"), PLN = c("LS", "AV"), PLO = c("LS", "AV"), PAS = "LS", PFT = "LS")

# ---- grid 4: PR / PLN / PLO / PAS / PFT x to x add (x vtype) from xi and ni ----
for (ds in names(props)) {
  d <- props[[ds]]
  for (measure in names(prop_vtypes)) {
    for (to in c("only0", "all", "if0all", "none")) for (add in c(0.5, 0)) for (vtype in prop_vtypes[[measure]]) {
      es <- suppressWarnings(escalc(measure = measure, xi = xi, ni = ni, data = d, add = add, to = to,
                                    vtype = vtype))
      put(list(dataset = ds, input = "xn", measure = measure, to = to, add = add,
               drop00 = FALSE, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
    }
    # default add (1/2, but 0 for PAS and PFT) and to: add recorded as NA (null in the JSON)
    es <- suppressWarnings(escalc(measure = measure, xi = xi, ni = ni, data = d))
    put(list(dataset = ds, input = "xn", measure = measure, to = "only0", add = NA,
             drop00 = FALSE, vtype = "LS", yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
    # non-events mi instead of ni
    d2 <- d
    d2$mi <- d2$ni - d2$xi
    es <- suppressWarnings(escalc(measure = measure, xi = xi, mi = mi, data = d2))
    put(list(dataset = ds, input = "xm", measure = measure, to = "only0", add = NA,
             drop00 = FALSE, vtype = "LS", yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
    # mi given but partly missing, filled with ni - xi (replmiss)
    d2$mi[seq(1, nrow(d2), by = 3)] <- NA
    es <- suppressWarnings(escalc(measure = measure, xi = xi, mi = mi, ni = ni, data = d2))
    put(list(dataset = ds, input = "xm_partial_n", measure = measure, to = "only0", add = NA,
             drop00 = FALSE, vtype = "LS", yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
}

# ---- incidence rates: x1i, x2i events over t1i, t2i person-time ----
# dat.hart1999 (warfarin vs placebo/control, strokes per patient-years). Synthetic edge cases: a zero in
# group 1 (R1), in group 2 (R2), in both (R3: drop00), a missing count (R5), fractional person-time (R6).
hart <- data.frame(study = as.character(dat.hart1999$study), x1i = dat.hart1999$x1i, t1i = dat.hart1999$t1i,
                   x2i = dat.hart1999$x2i, t2i = dat.hart1999$t2i)
rate_edge <- data.frame(
  study = paste0("R", 1:6),
  x1i = c(0, 4, 0, 10, NA, 3),
  t1i = c(120, 80, 50, 400, 100, 12.5),
  x2i = c(5, 0, 0, 20, 7, 9),
  t2i = c(110, 95, 60, 380, 90, 30.25)
)
rates <- lapply(list(hart1999 = hart, rate_edge = rate_edge), roundtrip)

# ---- grid 5: IRR / IRD x to x add x drop00; IR / IRLN (group 1 only: xi = x1i, ti = t1i) x to x add ----
for (ds in names(rates)) {
  d <- rates[[ds]]
  for (measure in c("IRR", "IRD")) {
    for (to in c("only0", "all", "if0all", "none")) for (add in c(0.5, 0)) for (drop00 in c(TRUE, FALSE)) {
      es <- suppressWarnings(escalc(measure = measure, x1i = x1i, x2i = x2i, t1i = t1i, t2i = t2i, data = d,
                                    add = add, to = to, drop00 = drop00))
      put(list(dataset = ds, input = "rates", measure = measure, to = to, add = add,
               drop00 = drop00, vtype = "LS", yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
    }
  }
  for (measure in c("IR", "IRLN")) {
    for (to in c("only0", "all", "if0all", "none")) for (add in c(0.5, 0)) {
      es <- suppressWarnings(escalc(measure = measure, xi = x1i, ti = t1i, data = d, add = add, to = to))
      put(list(dataset = ds, input = "rate1", measure = measure, to = to, add = add,
               drop00 = FALSE, vtype = "LS", yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
    }
  }
}

# ---- correlations: ri with sample size ni ----
# dat.molloy2014 (conscientiousness and medication adherence). Synthetic edge cases: ni = 3 and ni = 2
# (variance not estimable: vi = NA, yi kept), r = 1 (Fisher z infinite), r = -1, a missing r, r = 0.
molloy <- data.frame(study = paste(dat.molloy2014$authors, dat.molloy2014$year),
                     ri = dat.molloy2014$ri, ni = dat.molloy2014$ni)
cor_edge <- data.frame(
  study = paste0("Q", 1:8),
  ri = c(0.3, 0.5, -0.2, 1, -1, NA, 0, 0.85),
  ni = c(40, 3, 2, 25, 30, 50, 10, 4)
)
cors <- lapply(list(molloy2014 = molloy, cor_edge = cor_edge), roundtrip)

# ---- grid 6: COR (LS, AV) and ZCOR ----
for (ds in names(cors)) {
  d <- cors[[ds]]
  for (vtype in c("LS", "AV")) {
    es <- suppressWarnings(escalc(measure = "COR", ri = ri, ni = ni, data = d, vtype = vtype))
    put(list(dataset = ds, input = "cor", measure = "COR", to = "only0", add = 0.5,
             drop00 = FALSE, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
  es <- suppressWarnings(escalc(measure = "ZCOR", ri = ri, ni = ni, data = d))
  put(list(dataset = ds, input = "cor", measure = "ZCOR", to = "only0", add = 0.5,
           drop00 = FALSE, vtype = "LS", yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
}

# ---- grid 7: ROM (log ratio of means) x vtype x means data sets ----
# Synthetic edge cases for ROM: a zero mean in group 2 (O2: infinite), a negative mean (O3: log of a
# negative ratio, undefined), both means negative (O4: defined), a missing SD (O5).
rom_edge <- data.frame(
  study = paste0("O", 1:6),
  m1i = c(12.5, 3, -2, -4, 6, 9.75),
  sd1i = c(3.1, 1, 1.5, 2, NA, 4.2),
  n1i = c(30, 10, 12, 15, 20, 8),
  m2i = c(10.25, 0, 5, -5, 5, 11),
  sd2i = c(2.9, 1.2, 1.4, 2.5, 1.8, 3.6),
  n2i = c(28, 11, 12, 14, 20, 9)
)
rom_means <- c(means, list(rom_edge = roundtrip(rom_edge)))
for (ds in names(rom_means)) {
  d <- rom_means[[ds]]
  for (vtype in c("LS", "HO", "AV", "AVHO")) {
    es <- suppressWarnings(escalc(measure = "ROM", m1i = m1i, sd1i = sd1i, n1i = n1i,
                                  m2i = m2i, sd2i = sd2i, n2i = n2i, data = d, vtype = vtype))
    put(list(dataset = ds, input = "means", measure = "ROM", to = "only0", add = 0.5,
             drop00 = FALSE, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
}

# ---- paired designs (issue 18): means m1i, m2i and SDs sd1i, sd2i of two measurements of the same ni units,
# correlated ri ----
# dat.lehmann2018, the 12 within-subject studies (red vs control colour, same participants: m1i = red).
# (dat.morris2008 is not in metadat 1.2.0, installed here.)
leh <- dat.lehmann2018[dat.lehmann2018$Design == "Within Subjects", ]
lehmann <- data.frame(study = leh$Short_Title, m1i = leh$Red_M, m2i = leh$Control_M, sd1i = leh$Red_SD,
                      sd2i = leh$Control_SD, ni = leh$Red_N, ri = leh$RM_r)
# Simulated pre-post summaries (seeded): sample sizes 5 to 400, correlations -0.3 to 0.95, positive means.
set.seed(18)
k_sim <- 15
prepost_sim <- data.frame(study = paste0("M", 1:k_sim), m1i = round(rnorm(k_sim, 52, 6), 2),
                          m2i = round(rnorm(k_sim, 48, 6), 2),
                          sd1i = round(runif(k_sim, 4, 14), 2), sd2i = round(runif(k_sim, 4, 14), 2),
                          ni = c(5, 6, 8, 12, 15, 20, 25, 30, 40, 60, 80, 120, 200, 300, 400),
                          ri = round(c(-0.3, runif(k_sim - 2, 0, 0.9), 0.95), 3))
# Synthetic edge cases: r = 1 with equal SDs (K2: SD of the change 0, SMCC infinite), r = -1 (K3), r = 0 (K4),
# ni = 1, 2, 3 (K5-K7: c(ni - 1) undefined for ni <= 2), missing sd2i (K8: SMCR, which reads sd1i only, is
# defined), missing ri (K9), m2i = 0 (K10: ROMC infinite), means of opposite signs (K11: ROMC undefined),
# sd1i = 0 (K12: SMCR and SMCRH infinite), r = 1 with unequal SDs (K13), a missing m1i (K14).
change_edge <- data.frame(
  study = paste0("K", 1:14),
  m1i = c(10.5, 6, 7.2, 5.1, 4, 4.4, 3.9, 8, 9.5, 2.5, -1.5, 6.5, 5, NA),
  m2i = c(8.25, 5, 6.1, 4.4, 3, 3.1, 3.2, 6.5, 7, 0, 2, 5.5, 4.25, 3),
  sd1i = c(3.2, 2, 1.8, 1.1, 1, 1.2, 0.9, 2.5, 2.2, 1, 1.4, 0, 1.5, 1),
  sd2i = c(2.9, 2, 1.6, 1.3, 1.1, 1, 1.1, NA, 2.4, 1.2, 1.1, 1.3, 2.5, 1.2),
  ni = c(25, 18, 30, 22, 1, 2, 3, 16, 20, 14, 12, 10, 15, 9),
  ri = c(0.6, 1, -1, 0, 0.5, 0.4, 0.7, 0.5, NA, 0.3, 0.2, 0.5, 1, 0.4)
)
changes <- lapply(list(lehmann2018 = lehmann, prepost_sim = prepost_sim, change_edge = change_edge), roundtrip)
change_vtypes <- list(MC = "LS", SMCC = c("LS", "LS2"), SMCR = c("LS", "LS2"), SMCRH = "LS", ROMC = "LS")

# ---- grid 8: MC / SMCC / SMCR / SMCRH / ROMC (x vtype) x paired data sets ----
for (ds in names(changes)) {
  d <- changes[[ds]]
  for (measure in names(change_vtypes)) for (vtype in change_vtypes[[measure]]) {
    es <- suppressWarnings(escalc(measure = measure, m1i = m1i, m2i = m2i, sd1i = sd1i, sd2i = sd2i, ni = ni,
                                  ri = ri, data = d, vtype = vtype))
    put(list(dataset = ds, input = "paired", measure = measure, to = "only0", add = 0.5,
             drop00 = FALSE, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
  # SMCR standardizes by sd1i alone: sd2i not given at all
  for (vtype in change_vtypes$SMCR) {
    es <- suppressWarnings(escalc(measure = "SMCR", m1i = m1i, m2i = m2i, sd1i = sd1i, ni = ni, ri = ri,
                                  data = d, vtype = vtype))
    put(list(dataset = ds, input = "paired_no_sd2i", measure = "SMCR", to = "only0", add = 0.5,
             drop00 = FALSE, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
}

# ---- bias-corrected correlation UCOR (Olkin & Pratt, 1958) with vtype LS / UB / AV ----
# metafor evaluates 2F1 with gsl::hyperg_2F1, which is wrong (errors up to 1e-2 relative) for x = 1 - r^2 in
# (0.995, 1) when c - a - b is an integer, i.e. an even ni >= 8 and |r| < 0.07 (checked below against the power
# series). The grid data sets avoid that region; ucor_gsl holds cases inside it, with metafor's values and exact
# ones from the power series sum_k (a)_k (b)_k / ((c)_k k!) x^k, summed here in R (independent of the Python code).
ucor_edge <- data.frame(
  study = paste0("U", 1:10),
  ri = c(0.2, 0.5, -0.45, 0.999, 0.35, -0.2, 1, 0, 0.3, 0.4),
  ni = c(5, 4, 6, 7, 1000, 5000, 12, 9, 4.5, 3)
)
hyp_series <- function(a, c, x) {
  vapply(seq_along(x), function(i) {
    if (is.na(x[i]) || is.na(c[i]) || c[i] <= 2 * a) return(NA_real_)
    if (x[i] == 1) return(exp(lgamma(c[i]) + lgamma(c[i] - 2 * a) - 2 * lgamma(c[i] - a)))  # Gauss
    term <- 1; s <- 1; j <- 0
    repeat {
      term <- term * (a + j)^2 / ((c[i] + j) * (j + 1)) * x[i]; s <- s + term; j <- j + 1
      if (term < 1e-18 * s || j > 5e6) break
    }
    s
  }, numeric(1))
}
ucor_exact <- function(d) {
  yi <- d$ri * hyp_series(1/2, (d$ni - 2) / 2, 1 - d$ri^2)
  ub <- yi^2 - (1 - (d$ni - 3) / (d$ni - 2) * (1 - d$ri^2) * hyp_series(1, d$ni / 2, 1 - d$ri^2))
  list(yi = yi, LS = (1 - yi^2)^2 / (d$ni - 1), UB = ub)
}
ucor_sets <- c(cors, list(ucor_edge = roundtrip(ucor_edge)))
for (ds in names(ucor_sets)) {
  d <- ucor_sets[[ds]]
  ex <- ucor_exact(d)
  for (vtype in c("LS", "UB", "AV")) {
    es <- suppressWarnings(escalc(measure = "UCOR", ri = ri, ni = ni, data = d, vtype = vtype))
    # the grid must stay where gsl is right (away from x = 1 the series and gsl agree to ~1e-14; the
    # fractional ni = 4.5 at r = 0.3 is far from x = 1 too)
    ok <- is.na(ex$yi) | abs(es$yi - ex$yi) <= 1e-12 * abs(ex$yi)
    if (!all(ok)) stop("gsl and the power series disagree in ", ds, ": ", paste(which(!ok), collapse = ", "))
    put(list(dataset = ds, input = "cor", measure = "UCOR", to = "only0", add = 0.5,
             drop00 = FALSE, vtype = vtype, yi = as.numeric(es$yi), vi = as.numeric(es$vi)))
  }
}
ucor_gsl <- roundtrip(data.frame(study = paste0("G", 1:6), ri = c(0.05, -0.03, 0.06, 0.01, -0.065, 0.02),
                                 ni = c(8, 10, 20, 12, 8, 30)))
ex <- ucor_exact(ucor_gsl)
ucor_gsl_ref <- list(
  data = ucor_gsl,
  metafor = lapply(c(LS = "LS", UB = "UB"), function(v) {
    es <- escalc(measure = "UCOR", ri = ri, ni = ni, data = ucor_gsl, vtype = v)
    list(yi = as.numeric(es$yi), vi = as.numeric(es$vi))
  }),
  series = list(yi = ex$yi, LS = ex$LS, UB = ex$UB)
)

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  datasets = c(tables, means, props, rates, cors, list(rom_edge = rom_means$rom_edge), changes,
               list(ucor_edge = ucor_sets$ucor_edge)),
  cells = cells,
  ucor_gsl = ucor_gsl_ref
)
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, dataframe = "columns", pretty = FALSE), "escalc.json")
message("escalc.json: ", length(cells), " cells")
