# Reference for tests/test_datasets.py: the bundled study-level datasets must equal the copies
# distributed in the `metadat` R package (cell by cell), and the 18 Quebec RSS codes must be "01".."18".
# Run from tests/reference/:  Rscript ref_datasets.R   -> writes datasets.json
library(metadat)
library(jsonlite)

bask <- metadat::dat.baskerville2012      # Baskerville, Liddy & Hogg (2012), Ann Fam Med 10(1):63-74
land <- metadat::dat.landenberger2005     # Landenberger & Lipsey (2005), J Exp Criminol 1:451-476

describe <- function(d) {
  list(
    nrow = nrow(d),                                  # nrow()
    ncol = ncol(d),                                  # ncol()
    columns = names(d),                              # names()
    column_class = lapply(d, class),                 # class() of each column
    n_missing = lapply(d, function(x) sum(is.na(x))),# sum(is.na(x)) per column
    data = d                                         # every cell (NA -> null), full precision
  )
}

out <- list(
  metadat_version = as.character(packageVersion("metadat")),
  baskerville2012 = describe(bask),
  landenberger2005 = describe(land),
  quebec_regions = list(rss_code = sprintf("%02d", 1:18))  # sprintf("%02d", 1:18)
)
write_json(out, "datasets.json", auto_unbox = TRUE, dataframe = "columns", digits = NA,
           na = "null", pretty = TRUE)
