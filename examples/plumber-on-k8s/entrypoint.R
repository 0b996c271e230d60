# entrypoint.R: runs plumber.R with real plumber, as in the walkthrough (for comparison).
# plumbline reads the library() calls here and attaches the same packages in its workers.
library(plumber)
library(promises)
library(future)
future::plan("multiprocess")

port <- as.integer(Sys.getenv("PORT", "8000"))
pr("plumber.R") %>% pr_run(host = Sys.getenv("HOST", "0.0.0.0"), port = port)
