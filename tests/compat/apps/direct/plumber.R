# Endpoints that plumbline's workers call directly (runtime/r/direct.R): functions without
# req, res or `...`, plumber's serializers, plumber's default filters and error handler.

#* @serializer text
#* @get /parity
function(int) {
  if (as.integer(int) %% 2 == 0) "even" else "odd"
}

#* @get /echo
function(a = "none", b = "none", n = "0") list(a = a, b = b, n = n)

#* @get /frame
function(n = 20) {
  n <- as.integer(n)
  data.frame(id = seq_len(n), x = sqrt(seq_len(n)), label = paste0("row", seq_len(n)),
             flag = seq_len(n) %% 2 == 0)
}

#* @serializer unboxedJSON
#* @get /unboxed
function(x = "1") list(x = x, n = nchar(x))

#* @get /items/<id:int>/<name>
function(id, name, extra = "") list(id = id, class = class(id), name = name, extra = extra)

#* @get /flags/<on:bool>
function(on) list(on = on)

#* @get /many/<ids:[int]>
function(ids) list(ids = ids, total = sum(ids))

#* @get /ratio/<x:double>
function(x) list(x = x)

#* @post /model
function(rows) {
  frame <- as.data.frame(rows)
  fit <- lm(y ~ x, data = data.frame(x = 1:10, y = c(2.1, 3.9, 6.2, 8.1, 9.8, 12.2, 13.8, 16.1, 18, 20.2)))
  list(prediction = unname(predict(fit, newdata = frame)))
}

#* @post /sum
function(a, b = 0) list(sum = as.numeric(a) + as.numeric(b))

#* @get /fails
function() stop("direct failure")

#* @serializer text
#* @get /warns
function() {
  warning("careful")
  "warned"
}

#* @get /unserializable
function() list(f = function() 1)

#* @serializer csv
#* @get /csv
function() data.frame(a = 1:3, b = c("x", "y", "z"))

#* @serializer html
#* @get /html
function() "<p>hi</p>"

#* @get /attachment
function() as_attachment("a,b\n1,2\n", "data.csv")

#* @serializer text
#* @get /vector
function() c("first", "second")

#* @serializer text
#* @get /empty
function() character()

#* @get /null
function() NULL

#* @get /na
function() list(x = NA, y = c(1.5, NA))

#* @serializer text
#* @get /shadow/<int>
function(int) paste("path", int)

#* @get /promise
function() promises::promise_resolve(list(resolved = TRUE))

# plumber's JSON serializers with their own arguments (runtime/r/direct.R resolves toJSON's
# arguments once per endpoint).
#* @serializer json list(digits = NA, na = "string")
#* @get /json-args
function() list(x = c(pi, NA), when = as.Date("2024-02-29"), f = factor("b", levels = c("a", "b")))

#* @serializer json list(pretty = TRUE)
#* @get /json-pretty
function() list(a = 1:2, b = list(c = "d"))

#* @serializer unboxedJSON list(dataframe = "columns", rownames = TRUE)
#* @get /json-columns
function() head(mtcars, 3)

#* @serializer json list(pretty = 2)
#* @get /json-indent
function() list(a = 1:2)

#* @serializer json list(matrix = "columnmajor", raw = "hex", null = "null")
#* @get /json-matrix
function() list(m = matrix(1:6, 2), r = as.raw(c(1, 255)), n = NULL, e = list())

# Plain values runtime/r/json_writer.R writes without asJSON()'s dispatch (jsonlite's bytes):
# missing values, special numbers, escapes, non-ASCII text, nesting, names.
#* @get /plain-values
function() {
  list(ints = c(1L, NA, -3L), nums = c(pi, NA, NaN, Inf, -Inf, 1e10, -1e-7, 2.675),
       text = c("a\"\\\n\t\u00e9\u4e2d", NA, ""), flags = c(TRUE, NA), empty = list(), one = 1,
       named = c(k = 1), list(list("x", 2)),
       frame = data.frame(a = c(1.5, NA), b = c(NA, "y")))
}

#* @get /frame-missing
function() {
  data.frame(id = 1:3, x = c(NA, NaN, 0.1 + 0.2), s = c("\u00e9", NA, "q\"q"),
             b = c(NA, NA, TRUE), `a b` = -1e15, check.names = FALSE)
}

#* @serializer unboxedJSON
#* @get /unboxed-values
function() list(a = 1, b = "x", c = NA, d = c(1, 2), e = list(f = TRUE), g = character())

#* @serializer json list(digits = I(3))
#* @get /signif
function() list(x = c(pi, 123456.789, 1e-8), frame = data.frame(v = c(2 / 3, 1e6 / 7)))

# Through plumber's pipeline (it takes `res`): its serializer writes plain values with
# runtime/r/json_writer.R too.
#* @get /frame-res
function(res) {
  res$status <- 201L
  data.frame(id = 1:3, x = c(NA, 2.5, Inf), s = c("a", NA, "\u00e9"))
}

#* @serializer unboxedJSON
#* @get /unboxed-res
function(req, res) list(path = req$PATH_INFO, n = 1L, missing = NA)
