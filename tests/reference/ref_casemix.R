# Reference values for scaleup_analysis.monitoring.casemix (case-mix adjustment: indirect
# standardisation and reliability-adjusted unit values).
# Run from tests/reference/:  Rscript ref_casemix.R   -> writes casemix.json
# Needs lme4, jsonlite (glm is base R). The data are simulated here (set.seed) and stored in the JSON.
#
# Data sets:
#   sim_binom: 14 units of 4 to 160 patients (set.seed(20261204)), age ~ N(60, 12), female 0/1,
#              x a 3-level text covariate ("a", "b", "c"), a planted unit effect N(0, 0.7^2), 0/1 event;
#              `ref` = TRUE for the rows of the first 7 units (a reference group of units).
#   sim_pois:  10 units, person-time `time` ~ U(0.2, 3), count `y` ~ Poisson(time exp(lp + u)).
#   hand:      a hand-built study: 4 units x 20 patients, event by a fixed pattern, integer ages.
# Models (tight convergence: glm.control(epsilon = 1e-14, maxit = 100)):
#   glm(event ~ age + female + factor(x), binomial) on all rows ("all") and on the ref rows ("ref",
#   predicted on every row); glm(y ~ age + female + offset(log(time)), poisson); the hand study
#   glm(event ~ age + female, binomial).
# Per unit: O = sum of outcomes, E = sum of fitted probabilities / rates (predict(type = "response")),
#   O/E, exact (Garwood) interval qchisq(a/2, 2O)/2 / E, qchisq(1-a/2, 2(O+1))/2 / E (E fixed), crude
#   rate of the model rows (sum(y) / n or / person-time), risk-adjusted rate = (O/E) x crude rate,
#   O - E, z = (O - E) / sqrt(V) with V = sum p(1-p) (binomial) or E (Poisson).
# Coefficient table as summary.glm (Estimate, Std. Error, z value, Pr(>|z|)); c-statistic (AUC) by
#   the Mann-Whitney formula with average ranks for ties (fitted values rounded to 10 decimals first).
# Reliability: glmer(event ~ age + female + factor(x) + (1 | unit), binomial, nAGQ = 1) with a tight
#   PIRLS / bobyqa; ranef(condVar = TRUE) conditional modes and SDs, tau2.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out <- list(meta = list(R_version = R.version.string, lme4_version = as.character(packageVersion("lme4"))))
ctl <- glm.control(epsilon = 1e-14, maxit = 100)

auc <- function(p, y) {
  r <- rank(round(p, 10))  # fitted values equal to 1e-10 are ties (covariate patterns shared by several rows)
  n1 <- sum(y == 1)
  n0 <- sum(y == 0)
  (sum(r[y == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)
}

per_unit <- function(d, unit, y, mu, crude, family, level = 0.95) {
  a <- 1 - level
  O <- tapply(y, unit, sum)
  E <- tapply(mu, unit, sum)
  V <- if (family == "binomial") tapply(mu * (1 - mu), unit, sum) else E
  lo <- ifelse(O == 0, 0, qchisq(a / 2, 2 * O) / 2) / E
  hi <- qchisq(1 - a / 2, 2 * (O + 1)) / 2 / E
  list(unit = names(O), n = as.numeric(table(unit)[names(O)]), events = unname(as.numeric(O)),
       expected = unname(as.numeric(E)), ratio = unname(as.numeric(O / E)),
       ratio_ci_low = unname(as.numeric(lo)), ratio_ci_high = unname(as.numeric(hi)),
       adjusted_rate = unname(as.numeric(O / E * crude)),
       adjusted_rate_ci_low = unname(as.numeric(lo * crude)),
       adjusted_rate_ci_high = unname(as.numeric(hi * crude)),
       excess = unname(as.numeric(O - E)), z = unname(as.numeric((O - E) / sqrt(V))))
}

coef_table <- function(fit) {
  s <- summary(fit)$coefficients
  list(term = rownames(s), estimate = unname(s[, 1]), se = unname(s[, 2]), statistic = unname(s[, 3]),
       pvalue = unname(s[, 4]))
}

# ------------------------------------------------------------------ sim_binom -----------------------
set.seed(20261204)
sizes <- c(4, 12, 25, 40, 60, 80, 100, 160, 30, 8, 50, 70, 120, 15)
units <- sprintf("U%02d", seq_along(sizes))
u_eff <- rnorm(length(sizes), 0, 0.7)
unit <- rep(units, sizes)
n <- length(unit)
age <- round(rnorm(n, 60, 12), 1)
female <- rbinom(n, 1, 0.55)
x <- sample(c("a", "b", "c"), n, replace = TRUE, prob = c(0.5, 0.3, 0.2))
lp <- -1.2 + 0.03 * (age - 60) - 0.3 * female + ifelse(x == "b", 0.4, ifelse(x == "c", -0.5, 0)) +
  u_eff[match(unit, units)]
event <- rbinom(n, 1, plogis(lp))
ref <- unit %in% units[1:7]
sb <- data.frame(unit = unit, age = age, female = female, x = x, event = event, ref = ref)

fit_all <- glm(event ~ age + female + factor(x), family = binomial, data = sb, control = ctl)
mu_all <- predict(fit_all, newdata = sb, type = "response")
fit_ref <- glm(event ~ age + female + factor(x), family = binomial, data = sb[sb$ref, ], control = ctl)
mu_ref <- predict(fit_ref, newdata = sb, type = "response")
crude_all <- mean(sb$event)
crude_ref <- mean(sb$event[sb$ref])

g <- glmer(event ~ age + female + factor(x) + (1 | unit), data = transform(sb, age = age), family = binomial,
           nAGQ = 1, control = glmerControl(tolPwrss = 1e-12, optimizer = "bobyqa",
                                            optCtrl = list(rhobeg = 0.2, rhoend = 1e-10, maxfun = 1e5)))
gre <- ranef(g, condVar = TRUE)$unit
out$sim_binom <- list(
  data = as.list(sb),
  all = list(coef = coef_table(fit_all), deviance = deviance(fit_all), aic = AIC(fit_all),
             auc = auc(fitted(fit_all), sb$event), crude_rate = crude_all,
             units = per_unit(sb, sb$unit, sb$event, mu_all, crude_all, "binomial"),
             units90 = per_unit(sb, sb$unit, sb$event, mu_all, crude_all, "binomial", level = 0.90)),
  ref = list(coef = coef_table(fit_ref), crude_rate = crude_ref, auc = auc(fitted(fit_ref), sb$event[sb$ref]),
             units = per_unit(sb, sb$unit, sb$event, mu_ref, crude_ref, "binomial")),
  glmer = list(fixef = as.list(fixef(g)), tau2 = as.data.frame(VarCorr(g))$vcov[1],
               ranef_groups = rownames(gre), ranef = unname(gre[, 1]),
               ranef_condsd = sqrt(attr(gre, "postVar")[1, 1, ]))
)

# ------------------------------------------------------------------ sim_pois ------------------------
set.seed(20261205)
psizes <- c(10, 25, 40, 15, 60, 30, 80, 20, 50, 35)
punits <- sprintf("P%02d", seq_along(psizes))
pu <- rnorm(length(psizes), 0, 0.3)
unit <- rep(punits, psizes)
n <- length(unit)
age <- round(rnorm(n, 50, 15))
female <- rbinom(n, 1, 0.5)
time <- round(runif(n, 0.2, 3), 3)
y <- rpois(n, time * exp(-0.5 + 0.02 * (age - 50) + 0.2 * female + pu[match(unit, punits)]))
sp <- data.frame(unit = unit, age = age, female = female, time = time, y = y)
fit_p <- glm(y ~ age + female + offset(log(time)), family = poisson, data = sp, control = ctl)
mu_p <- fitted(fit_p)
crude_p <- sum(sp$y) / sum(sp$time)
out$sim_pois <- list(
  data = as.list(sp),
  all = list(coef = coef_table(fit_p), deviance = deviance(fit_p), aic = AIC(fit_p), crude_rate = crude_p,
             units = per_unit(sp, sp$unit, sp$y, mu_p, crude_p, "poisson"))
)

# ------------------------------------------------------------------ hand ----------------------------
# 4 units (A-D) x 20 patients; ages by 2 from 30 (A), 40 (B), 50 (C), 45 (D), female alternating; events by a fixed
# pattern (more events in older patients and in unit D).
hunit <- rep(c("A", "B", "C", "D"), each = 20)
hage <- seq(40, 78, by = 2) + rep(c(-10, 0, 10, 5), each = 20)
hfemale <- rep(c(0, 1), 40)
pattern <- list(A = c(2, 7, 13, 16, 19), B = c(5, 11, 17, 18), C = c(1, 9, 14, 15, 18, 20),
                D = c(3, 6, 8, 12, 14, 16, 17, 19, 20))
hevent <- unlist(lapply(c("A", "B", "C", "D"), function(u) as.integer(seq_len(20) %in% pattern[[u]])))
hd <- data.frame(unit = hunit, age = hage, female = hfemale, event = hevent)
fit_h <- glm(event ~ age + female, family = binomial, data = hd, control = ctl)
mu_h <- fitted(fit_h)
crude_h <- mean(hd$event)
out$hand <- list(
  data = as.list(hd),
  all = list(coef = coef_table(fit_h), deviance = deviance(fit_h), auc = auc(mu_h, hd$event), crude_rate = crude_h,
             units = per_unit(hd, hd$unit, hd$event, mu_h, crude_h, "binomial"))
)

writeLines(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "casemix.json")
message("wrote casemix.json")
