# What this R has: its version and platform, and every installed package as library()
# would find it (the first of .libPaths() that holds it). Lines are tab-separated records.
ip <- installed.packages(lib.loc = .libPaths(), fields = character(), noCache = TRUE)
ip <- ip[!duplicated(ip[, "Package"]), , drop = FALSE]
cat("R\t", as.character(getRversion()), "\t", R.version$platform, "\n", sep = "")
for (lib in .libPaths()) cat("L\t", lib, "\n", sep = "")
for (i in seq_len(nrow(ip))) {
  cat("P\t", ip[i, "Package"], "\t", ip[i, "Version"], "\t", ip[i, "LibPath"], "\n", sep = "")
}
