# Install exact versions of R packages into a new library, from CRAN-like repositories.
# Called as: Rscript install.R PLAN REPOS LIBRARY
#   PLAN     DCF records: Package, Version, Repository (the package's own, may be empty)
#   REPOS    one repository URL a line, in order of preference
#   LIBRARY  the (empty) library folder to install into
# Everything comes in as data; nothing read here is evaluated. A version the repository no
# longer lists is taken from its Archive/ folder, as CRAN keeps old versions. The last lines
# say which packages failed and why (R's own messages); the exit status is 1 then.
options(warn = 1, timeout = max(600, getOption("timeout")))
args <- commandArgs(trailingOnly = TRUE)
plan <- as.data.frame(read.dcf(args[[1]], fields = c("Package", "Version", "Repository")),
                      stringsAsFactors = FALSE)
repos <- readLines(args[[2]])
lib <- args[[3]]
.libPaths(c(lib, .libPaths()))
names(repos) <- paste0("repo", seq_along(repos))

problems <- character()
note <- function(w) {
  problems <<- c(problems, conditionMessage(w))
  message("Warning: ", conditionMessage(w))
  invokeRestart("muffleWarning")
}

db <- withCallingHandlers(
  available.packages(repos = repos, type = "source",
                     filters = c("R_version", "OS_type", "subarch")),
  warning = note)
rows <- list()
for (i in seq_len(nrow(plan))) {
  pkg <- plan$Package[i]; version <- plan$Version[i]; own <- plan$Repository[i]
  same <- db[db[, "Package"] == pkg, , drop = FALSE]
  exact <- same[same[, "Version"] == version, , drop = FALSE]
  if (nrow(exact) > 0) {
    preferred <- !is.na(own) & startsWith(exact[, "Repository"], paste0(own, "/"))
    rows[[pkg]] <- exact[if (any(preferred)) which(preferred)[1] else 1, ]
  } else if (nrow(same) > 0) {
    # Another version is current: the wanted one lives in the repository's archive.
    row <- same[1, ]
    cat(sprintf("%s %s is not current in %s (it has %s): trying its archive\n", pkg, version,
                sub("/src/contrib$", "", row[["Repository"]]), row[["Version"]]))
    row[["Version"]] <- version
    row[["Repository"]] <- paste0(row[["Repository"]], "/Archive/", pkg)
    rows[[pkg]] <- row
  }
}
available <- if (length(rows)) do.call(rbind, rows) else db[0, , drop = FALSE]
if (length(rows)) rownames(available) <- names(rows)

withCallingHandlers(
  install.packages(plan$Package, lib = lib, repos = repos, available = available,
                   dependencies = FALSE, type = "source", Ncpus = 1L),
  warning = note)

failed <- character()
for (i in seq_len(nrow(plan))) {
  found <- suppressWarnings(packageDescription(plan$Package[i], lib.loc = lib, fields = "Version"))
  if (!identical(found, plan$Version[i])) {
    failed <- c(failed, sprintf("%s %s", plan$Package[i], plan$Version[i]))
  }
}
if (length(failed)) {
  for (p in unique(problems)) cat("plumbline-install-problem: ", gsub("\n", " ", p), "\n", sep = "")
  cat("plumbline-install-failed: ", paste(failed, collapse = ", "), "\n", sep = "")
  quit(status = 1)
}
cat("plumbline-install-ok\n")
