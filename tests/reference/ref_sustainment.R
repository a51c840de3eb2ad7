# Reference values for the rate ratio of the sustainment section (tests/test_sustainment.py):
# R's exact conditional test of two Poisson rates, poisson.test(c(x1, x2), c(t1, t2)) (stats package).
# Run from tests/reference/: Rscript ref_sustainment.R
library(jsonlite)

grid <- expand.grid(x1 = c(0, 1, 4, 11, 30), x2 = c(0, 2, 9, 25), t1 = c(12, 140.5), t2 = c(60, 311),
                    level = c(0.95, 0.9))
grid <- grid[grid$x1 + grid$x2 > 0, ]
cells <- lapply(seq_len(nrow(grid)), function(i) {
  g <- grid[i, ]
  r <- poisson.test(c(g$x1, g$x2), c(g$t1, g$t2), conf.level = g$level)
  list(x1 = g$x1, x2 = g$x2, t1 = g$t1, t2 = g$t2, level = g$level,
       estimate = unname(r$estimate), ci_low = r$conf.int[1], ci_high = r$conf.int[2], pvalue = r$p.value)
})
writeLines(toJSON(list(r_version = R.version.string, rate_ratio = cells), auto_unbox = TRUE, digits = NA,
                  pretty = TRUE), "sustainment.json")
