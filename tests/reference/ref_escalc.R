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

out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  r_version = R.version.string,
  datasets = c(tables, means),
  cells = cells
)
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, dataframe = "columns", pretty = FALSE), "escalc.json")
message("escalc.json: ", length(cells), " cells")
