# Reference values for the scaleup_analysis test suite.
# Run from this folder:  Rscript make_reference.R   (or `make reference` from the repository root)
# Needs R with metafor, lme4, lmerTest, psych (Debian: r-base-core r-cran-metafor r-cran-lme4
# r-cran-lmertest r-cran-psych). Each ref_<topic>.R script writes <topic>.json beside it; the R call
# that produces each value is visible in that script. CI does not run R: it reads the JSON fixtures.
scripts <- sort(list.files(".", pattern = "^ref_.*\\.R$"))
for (s in scripts) {
  message("== ", s)
  source(s, local = new.env())
}
writeLines(capture.output(sessionInfo()), "R_sessionInfo.txt")
