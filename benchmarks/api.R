# The benchmark API: plain endpoints (no future), the example app's future() endpoints, a
# JSON data frame, and a model endpoint.

# A model fitted once at start, as a model-serving app loads one.
fit <- lm(mpg ~ wt + hp, data = mtcars)

#* Plain text endpoint
#* @serializer text
#* @get /parity
function(int) {
  if (as.integer(int) %% 2 == 0) "even" else "odd"
}

#* The example app's /parity: the body wrapped in future()
#* @serializer text
#* @get /parity-future
function(int) {
  future({
    if (as.integer(int) %% 2 == 0) "even" else "odd"
  })
}

#* A JSON data frame of n rows
#* @get /frame
function(n = 20) {
  n <- as.integer(n)
  data.frame(id = seq_len(n), value = round(sqrt(seq_len(n)), 4),
             label = paste0("item-", seq_len(n)), even = seq_len(n) %% 2 == 0)
}

#* predict() of an lm on the rows of a JSON body
#* @post /predict
function(rows) {
  list(mpg = unname(predict(fit, newdata = as.data.frame(rows))))
}

#* @serializer json
#* @get /wait
function() {
  future({
    Sys.sleep(5)
    list(time = Sys.time())
  })
}
