# Reference values for scaleup_analysis.prom (internal consistency of a multi-item PREM/PROM scale).
# Run from tests/reference/:  Rscript ref_prom.R   -> writes prom.json
# Needs psych, jsonlite.
#
# Datasets written to prom.json (each with its data, items, reversed items and scale range):
#   bfi_agree: psych::bfi agreeableness items A1-A5 (2800 respondents, some items missing), A1 reversed
#              (keys = "A1", check.keys = FALSE; psych flips with the min + max of the data, 1 + 6);
#              psych's default use = "pairwise" for the covariances.
#   attitude:  datasets::attitude, all 7 columns (30 respondents, complete).
#   hand6x4:   a hand-built 6 respondents x 4 items set (1-5 scale), item q3 reversed.
#   hand6x4_na: the same with 3 cells missing (pairwise covariances).
#   two_items: attitude rating and complaints only (psych's special case of 2 items).
# Values: psych::alpha(x, keys = ...)$total (raw_alpha, std.alpha, G6(smc), average_r, S/N, ase, mean,
# sd), $feldt (psych::alpha.ci: lower.ci, upper.ci at p.val = 0.05, plus alpha.ci at p.val = 0.10 for
# level = 0.90), $item.stats (n, raw.r, std.r, r.cor, r.drop, mean, sd), $alpha.drop (raw_alpha,
# std.alpha, G6(smc), average_r, S/N).
suppressPackageStartupMessages({
  library(psych)
  library(jsonlite)
})

out <- list(meta = list(R_version = R.version.string,
                        psych_version = as.character(packageVersion("psych"))))

hand <- data.frame(q1 = c(4, 5, 3, 2, 4, 5), q2 = c(3, 5, 4, 2, 3, 4),
                   q3 = c(2, 1, 3, 4, 2, 1), q4 = c(5, 4, 3, 1, 4, 5))
hand_na <- hand
hand_na$q1[2] <- NA
hand_na$q2[4] <- NA
hand_na$q4[6] <- NA

sets <- list(
  bfi_agree = list(data = psych::bfi[, c("A1", "A2", "A3", "A4", "A5")], reverse = "A1", min = 1, max = 6),
  attitude = list(data = datasets::attitude, reverse = character(0), min = NA, max = NA),
  hand6x4 = list(data = hand, reverse = "q3", min = 1, max = 5),
  hand6x4_na = list(data = hand_na, reverse = "q3", min = 1, max = 5),
  two_items = list(data = datasets::attitude[, c("rating", "complaints")], reverse = character(0),
                   min = NA, max = NA)
)

for (nm in names(sets)) {
  s <- sets[[nm]]
  x <- s$data
  rownames(x) <- NULL
  keys <- if (length(s$reverse)) s$reverse else NULL
  a <- suppressWarnings(psych::alpha(x, keys = keys, check.keys = FALSE, warnings = FALSE))
  tot <- a$total
  f90 <- psych::alpha.ci(tot$raw_alpha, nrow(x), ncol(x), p.val = 0.10)
  out[[nm]] <- list(
    data = as.list(x), items = names(x), reverse = s$reverse, scale_min = s$min, scale_max = s$max,
    total = list(raw_alpha = tot$raw_alpha, std_alpha = tot$std.alpha, G6 = tot[["G6(smc)"]],
                 average_r = tot$average_r, signal_noise = tot[["S/N"]], ase = tot$ase,
                 mean = tot$mean, sd = tot$sd),
    feldt = list(lower = a$feldt$lower.ci[[1]], upper = a$feldt$upper.ci[[1]],
                 lower90 = f90$lower.ci[[1]], upper90 = f90$upper.ci[[1]]),
    item_stats = list(n = unname(a$item.stats$n), raw_r = unname(a$item.stats$raw.r),
                      std_r = unname(a$item.stats$std.r), r_cor = unname(a$item.stats$r.cor),
                      r_drop = unname(a$item.stats$r.drop), mean = unname(a$item.stats$mean),
                      sd = unname(a$item.stats$sd)),
    alpha_drop = list(raw_alpha = a$alpha.drop$raw_alpha, std_alpha = a$alpha.drop$std.alpha,
                      G6 = a$alpha.drop[["G6(smc)"]], average_r = a$alpha.drop$average_r,
                      signal_noise = a$alpha.drop[["S/N"]])
  )
}

writeLines(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "prom.json")
message("wrote prom.json")
