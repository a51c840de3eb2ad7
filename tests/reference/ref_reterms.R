# Reference values for tests/test_mixed_terms.py (random-effect terms written in the formula).
# Run from tests/reference/:  Rscript ref_reterms.R   -> writes reterms.json
# lme4::lmer + lmerTest (Satterthwaite df) with tight optimiser control (nloptwrap, xtol_rel = 1e-14),
# so that lme4's theta is the optimum to ~1e-9; REML and ML. The input data are stored in the JSON.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

ctl <- lmerControl(optimizer = "nloptwrap",
                   optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14,
                                  ftol_rel = 1e-16, maxeval = 1e5),
                   check.conv.singular = "ignore")

# ---------------------------------------------------------------- datasets -------------------------
data("Penicillin", package = "lme4")
pen <- data.frame(diameter = Penicillin$diameter, plate = as.character(Penicillin$plate),
                  sample = as.character(Penicillin$sample))
data("Pastes", package = "lme4")
pas <- data.frame(strength = Pastes$strength, batch = as.character(Pastes$batch),
                  cask = as.character(Pastes$cask))
data("sleepstudy", package = "lme4")
sleep <- data.frame(Reaction = sleepstudy$Reaction, Days = sleepstudy$Days,
                    Subject = as.character(sleepstudy$Subject))

# stepped wedge: 12 sites randomised to 4 steps over 5 periods, 8 patients per site-period,
# site, site-period and period effects (seeded)
set.seed(20261204)
S <- 12; P <- 5; m <- 8
step <- rep(2:5, each = 3)[sample(S)]
sw <- expand.grid(k = seq_len(m), period = seq_len(P), site = seq_len(S))
sw$treat <- as.integer(sw$period >= step[sw$site])
u_site <- rnorm(S, 0, 1.0); u_sp <- matrix(rnorm(S * P, 0, 0.5), S, P); u_per <- rnorm(P, 0, 0.6)
sw$y <- 10 + 0.8 * sw$treat + 0.3 * sw$period + u_site[sw$site] + u_sp[cbind(sw$site, sw$period)] +
  u_per[sw$period] + rnorm(nrow(sw), 0, 1.5)
sw$site <- sprintf("s%02d", sw$site)
sw <- sw[, c("site", "period", "treat", "y")]

# three levels: 6 regions, 5 sites per region (labels s1..s5 repeated in each region), 2-14 patients
set.seed(20261205)
nest <- do.call(rbind, lapply(1:6, function(r) do.call(rbind, lapply(1:5, function(s) {
  n_rs <- sample(2:14, 1)
  data.frame(region = paste0("r", r), site = paste0("s", s), x = round(rnorm(n_rs), 3))
}))))
ur <- rnorm(6, 0, 0.7); names(ur) <- paste0("r", 1:6)
us <- rnorm(nrow(unique(nest[, 1:2])), 0, 1.1)
names(us) <- apply(unique(nest[, 1:2]), 1, paste, collapse = "/")
nest$y <- round(2 + 0.5 * nest$x + ur[nest$region] + us[paste(nest$region, nest$site, sep = "/")] +
                  rnorm(nrow(nest)), 4)

# ---------------------------------------------------------------- helpers --------------------------
ref <- function(fit) {
  s <- summary(fit)
  cf <- s$coefficients
  vc <- as.data.frame(VarCorr(fit))
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  crit <- unname(if (isREML(fit)) getME(fit, "devcomp")$cmp[["REML"]] else getME(fit, "devcomp")$cmp[["dev"]])
  list(
    fixef = unname(fixef(fit)), fixef_names = names(fixef(fit)),
    se = unname(cf[, "Std. Error"]), df = unname(cf[, "df"]), t = unname(cf[, "t value"]),
    p = unname(cf[, "Pr(>|t|)"]),
    varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                   var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = vc$vcov, sdcor = vc$sdcor),
    sigma = sigma(fit), theta = unname(getME(fit, "theta")),
    criterion = crit, logLik = as.numeric(logLik(fit)), AIC = AIC(fit), BIC = BIC(fit),
    singular = isSingular(fit), ngrps = as.list(ngrps(fit)), nobs = nobs(fit),
    ranef = list(grpvar = as.character(re$grpvar), term = as.character(re$term), grp = as.character(re$grp),
                 condval = re$condval, condsd = re$condsd)
  )
}

# cell: dataset | model | method ; formula as written for Python (patsy: C(period) for factor(period))
models <- list(
  "penicillin|crossed" = list(d = "penicillin", r = diameter ~ 1 + (1 | plate) + (1 | sample),
                              py = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  "pastes|nested" = list(d = "pastes", r = strength ~ 1 + (1 | batch/cask),
                         py = "strength ~ 1 + (1 | batch/cask)"),
  "sleepstudy|uncorrelated" = list(d = "sleepstudy", r = Reaction ~ Days + (Days || Subject),
                                   py = "Reaction ~ Days + (Days || Subject)"),
  "sleepstudy|correlated" = list(d = "sleepstudy", r = Reaction ~ Days + (Days | Subject),
                                 py = "Reaction ~ Days + (Days | Subject)"),
  "stepped_wedge|site_period" = list(d = "stepped_wedge",
                                     r = y ~ treat + factor(period) + (1 | site) + (1 | site:period),
                                     py = "y ~ treat + C(period) + (1 | site) + (1 | site:period)"),
  "stepped_wedge|crossed" = list(d = "stepped_wedge", r = y ~ treat + (1 | site) + (1 | period),
                                 py = "y ~ treat + (1 | site) + (1 | period)"),
  "nested3|nested" = list(d = "nested3", r = y ~ x + (1 | region/site), py = "y ~ x + (1 | region/site)")
)
datasets <- list(penicillin = pen, pastes = pas, sleepstudy = sleep, stepped_wedge = sw, nested3 = nest)

out <- list()
for (nm in names(models)) {
  mdl <- models[[nm]]
  for (meth in c("REML", "ML")) {
    fit <- lmerTest::lmer(mdl$r, data = datasets[[mdl$d]], REML = meth == "REML", control = ctl)
    cell <- ref(fit)
    cell$formula <- mdl$py
    cell$dataset <- mdl$d
    out[[paste(nm, meth, sep = "|")]] <- cell
  }
}

write_json(list(lmm = out, data = datasets, R = R.version.string,
                lme4 = as.character(packageVersion("lme4")),
                lmerTest = as.character(packageVersion("lmerTest"))),
           "reterms.json", digits = NA, auto_unbox = TRUE, pretty = FALSE)
