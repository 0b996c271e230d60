# Requests whose size or memory an attacker (or a careless app) controls.

#* Allocate `mb` MiB of doubles and answer their count
#* @serializer text
#* @get /allocate
function(mb = 1) {
  x <- numeric(as.numeric(mb) * 131072)
  length(x)
}

#* Allocate `mb` MiB and keep it reachable until the next call (memory stays high)
#* @serializer text
#* @get /hold
function(mb = 1) {
  held <<- numeric(as.numeric(mb) * 131072)
  length(held)
}

#* An answer with a header larger than a frame header may be
#* @serializer text
#* @get /big-header
function(res) {
  res$setHeader("X-Big", strrep("a", 2 * 1024 * 1024))
  "too big"
}

#* @serializer text
#* @get /ok
function() "ok"
