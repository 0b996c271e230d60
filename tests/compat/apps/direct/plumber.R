# Endpoints that plumbline's workers call directly (runtime/direct.R): functions without
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

# plumber's JSON serializers with their own arguments (runtime/direct.R resolves toJSON's
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
