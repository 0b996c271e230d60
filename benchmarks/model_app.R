# A model-serving app that loads a large object at start (500 MB: a stand-in for a model
# read from disk), for benchmarks/compare.py's memory measurement.
model <- rep(c(0.25, 0.75), length.out = 500e6 / 8)

#* @get /predict
function(x = "1") list(y = as.numeric(x) * model[[2]])

#* A full garbage collection in this worker (holds it a second, so concurrent calls spread)
#* @get /gc
function() {
  invisible(gc(full = TRUE))
  Sys.sleep(1)
  list(pid = Sys.getpid())
}
