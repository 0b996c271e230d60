# An app that loads a large object at start (a stand-in for a model) and uses it.
model <- rep(c(0.5, 2), length.out = 200 * 1024^2 / 8)  # 200 MiB of doubles
loaded_at <- format(Sys.time(), "%H:%M:%OS6")

#* @serializer text
#* @get /loaded
function() loaded_at

#* @get /predict
function(x = "1") list(y = as.numeric(x) * model[[2]], n = length(model))

#* @serializer text
#* @get /random
function() {
  Sys.sleep(0.2)
  paste(Sys.getpid(), paste(sample.int(1e9, 3), collapse = "-"))
}
