# Reference values for scaleup_analysis.prom.scale_omega (McDonald's omega of a PREM/PROM scale).
# Run from tests/reference/:  Rscript ref_omega.R   -> writes omega.json
# Needs psych, GPArotation, jsonlite.
#
# Each case is psych::omega(x, nfactors = nf, fm = fm, rotate = "oblimin", plot = FALSE) on raw item
# scores x (psych correlates them with cor(x, use = "pairwise")); default flip = TRUE (items whose
# general-factor loading is negative are flipped).  Two runs per case:
#   default: psych exactly as shipped.  psych's factor extraction (fa -> fac -> optim L-BFGS-B) stops at
#            optim's default tolerance (factr = 1e7) and GPArotation::oblimin at eps = 1e-5, so its
#            values sit a little short of the optimum (up to ~1e-5 in the loadings).
#   tight:   the same code with tighter stopping rules, patched in for the run only: fac's optim calls
#            get factr = 1, pgtol = 0, maxit = 1e5 (the 4 optim calls inside psych:::fac), and
#            GPArotation::oblimin gets eps = 1e-13, maxit = 1e5 (schmid calls it with no arguments;
#            it then runs until rounding stops its line search, a gradient norm near 1e-9).
#            These are the optimum the Python code is compared with at 1e-6 relative.
#
# Data sets (each with its data, items, reversed items and scale range):
#   bfi_agree: psych::bfi A1-A5 (2800 respondents, missing answers), A1 reversed by hand (7 - A1).
#   bfi_neuro: psych::bfi N1-N5 (missing answers).
#   attitude:  datasets::attitude, 7 columns (30 respondents, complete).
#   hand8x4:   hand-built 8 respondents x 4 items (1-5 scale), q3 reversed by hand (6 - q3), 2 cells missing.
#   bfi_ace:   psych::bfi A1-A5, C1-C5, E1-E5 (15 items), not reversed: psych's flip reverses the
#              items with a negative general loading.
# Values: omega_h, omega.lim, alpha, omega.tot, G6, ECV, the schmid$sl table (g, F1*.., h2, u2, p2),
# omega.group (total, general, group), key (flips), schmid$phi and gloading (oblique factors).
suppressPackageStartupMessages({
  library(psych)
  library(GPArotation)
  library(jsonlite)
})

out <- list(meta = list(R_version = R.version.string,
                        psych_version = as.character(packageVersion("psych")),
                        GPArotation_version = as.character(packageVersion("GPArotation"))))

hand <- data.frame(q1 = c(4, 5, 3, 2, 4, 5, 1, 3), q2 = c(3, 4, 4, 2, 5, 3, 2, 2),
                   q3 = c(2, 3, 3, 4, 2, 1, 4, 2), q4 = c(5, 3, 3, 1, 4, 3, 2, 5))
hand$q2[3] <- NA
hand$q4[7] <- NA
bfi <- psych::bfi
sets <- list(
  bfi_agree = list(data = bfi[, paste0("A", 1:5)], reverse = "A1", min = 1, max = 6),
  bfi_neuro = list(data = bfi[, paste0("N", 1:5)], reverse = character(0), min = NA, max = NA),
  attitude = list(data = datasets::attitude, reverse = character(0), min = NA, max = NA),
  hand8x4 = list(data = hand, reverse = "q3", min = 1, max = 5),
  bfi_ace = list(data = bfi[, c(paste0("A", 1:5), paste0("C", 1:5), paste0("E", 1:5))],
                 reverse = character(0), min = NA, max = NA)
)
cases <- list(
  list("bfi_agree", 1, "minres"), list("bfi_agree", 1, "ml"),
  list("bfi_neuro", 1, "minres"), list("bfi_neuro", 1, "ml"),
  list("attitude", 1, "minres"), list("attitude", 1, "ml"),
  list("hand8x4", 1, "minres"),
  list("attitude", 2, "minres"), list("bfi_ace", 2, "minres"),
  list("attitude", 3, "minres"), list("bfi_ace", 3, "minres"), list("bfi_ace", 3, "ml")
)

fac_default <- psych:::fac
oblimin_default <- GPArotation::oblimin
tighten <- function(on) {
  if (on) {
    src <- paste(deparse(fac_default), collapse = "\n")
    src <- gsub("rep\\(0\\.01,\\s*length\\(start\\)\\)",
                "rep(0.01, length(start)), factr = 1, pgtol = 0, maxit = 1e5", src)
    f <- eval(parse(text = src))
    environment(f) <- asNamespace("psych")
    ob <- oblimin_default
    formals(ob)$eps <- 1e-13
    formals(ob)$maxit <- 1e5
    environment(ob) <- asNamespace("GPArotation")
  } else {
    f <- fac_default
    ob <- oblimin_default
  }
  assignInNamespace("fac", f, "psych")
  assignInNamespace("oblimin", ob, "GPArotation")
}

run <- function(x, nf, fm) {
  om <- suppressMessages(suppressWarnings(
    psych::omega(x, nfactors = nf, fm = fm, rotate = "oblimin", plot = FALSE)))
  sl <- unclass(om$schmid$sl)
  cn <- colnames(sl)
  grp <- om$omega.group
  list(omega_h = om$omega_h, omega_lim = om$omega.lim, alpha = om$alpha, omega_tot = om$omega.tot,
       G6 = om$G6, ECV = unname(om$ECV), key = unname(om$key),
       g = unname(sl[, 1]), group = unname(sl[, 2:(nf + 1), drop = FALSE]),
       h2 = unname(sl[, "h2"]), u2 = unname(sl[, "u2"]), p2 = unname(sl[, ncol(sl)]),
       sl_names = cn,
       omega_group = list(total = grp$total, general = grp$general, group = grp$group),
       phi = if (nf > 1) unname(unclass(om$schmid$phi)) else NULL,
       gloading = unname(as.vector(om$schmid$gloading)))
}

out$data <- list()
for (nm in names(sets)) {
  s <- sets[[nm]]
  x <- s$data
  rownames(x) <- NULL
  out$data[[nm]] <- list(data = as.list(x), items = names(x), reverse = s$reverse,
                         scale_min = s$min, scale_max = s$max)
}
out$cases <- list()
for (cs in cases) {
  nm <- cs[[1]]; nf <- cs[[2]]; fm <- cs[[3]]
  s <- sets[[nm]]
  x <- s$data
  rownames(x) <- NULL
  for (r in s$reverse) x[[r]] <- (s$min + s$max) - x[[r]]
  tighten(FALSE)
  d <- run(x, nf, fm)
  tighten(TRUE)
  t <- run(x, nf, fm)
  tighten(FALSE)
  id <- paste(nm, nf, fm, sep = "_")
  out$cases[[id]] <- list(set = nm, nfactors = nf, fm = fm, default = d, tight = t)
  message(sprintf("%-22s omega_h %.10f / %.10f  omega_tot %.10f / %.10f", id, d$omega_h, t$omega_h,
                  d$omega_tot, t$omega_tot))
}

writeLines(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null"),
           "omega.json")
message("wrote omega.json")
