# The benchmark API: the example app's /parity and /wait, plus a JSON endpoint.
#* @serializer text
#* @get /parity
function(int) {
  future({
    if (as.integer(int) %% 2 == 0) "even" else "odd"
  })
}

#* @get /summary
function(n = 10) {
  x <- seq_len(as.integer(n))
  list(n = length(x), mean = mean(x), values = x, label = "summary")
}

#* @serializer json
#* @get /wait
function() {
  future({
    Sys.sleep(5)
    list(time = Sys.time())
  })
}
