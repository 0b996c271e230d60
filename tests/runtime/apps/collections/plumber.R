# Endpoints that run R's garbage collector: a full collection, or minor ones only.

#* @serializer text
#* @get /pid
function() as.character(Sys.getpid())

#* @serializer text
#* @get /full-gc
function() {
  invisible(gc(full = TRUE))
  as.character(Sys.getpid())
}

#* @serializer text
#* @get /minor-gc
function() {
  for (i in 1:3) invisible(gc(full = FALSE))
  as.character(Sys.getpid())
}

#* A data frame as JSON, through plumber's pipeline (it takes res)
#* @get /frame
function(res) data.frame(id = 1:20, x = seq(0.5, 10, by = 0.5))
