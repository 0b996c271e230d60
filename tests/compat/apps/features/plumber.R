# Features the shipped examples do not exercise: serializers, response headers and statuses,
# parsers, values jsonlite has opinions about, and errors raised in odd places.

#* @serializer csv
#* @get /csv
function() {
  data.frame(id = 1:3, name = c("a", "b,c", NA), score = c(1.5, NA, 3))
}

#* @serializer tsv
#* @get /tsv
function() {
  data.frame(id = 1:2, name = c("x\ty", "z"))
}

#* @serializer svg list(width = 3, height = 3)
#* @get /svg
function() {
  plot(1:3)
}

#* @serializer jpeg list(width = 300, height = 300)
#* @get /jpeg
function() {
  plot(1:3)
}

#* @serializer html
#* @get /html
function() {
  "<p>caf\u00e9</p>"
}

#* @serializer json list(digits = 10, na = "string", auto_unbox = TRUE)
#* @get /json-options
function() {
  list(pi = pi, missing = NA, many = c(1.5, NA))
}

#* @serializer unboxedJSON
#* @get /values
function() {
  list(
    int = 1L, dbl = 1 / 3, big = 1e20, neg_inf = -Inf, nan = NaN, na = NA, na_chr = NA_character_,
    true = TRUE, null = NULL, empty = list(), empty_chr = character(), date = as.Date("2024-02-29"),
    factor = factor(c("lo", "hi")), nested = list(a = list(b = 1:3)),
    df = data.frame(x = c(1, NA), y = c("p", NA)), matrix = matrix(1:4, 2),
    named_vec = c(a = 1, b = 2), utf8 = "\u00e9\u4e2d\U0001F600", quote = "a\"b\\c\n"
  )
}

#* @get /json-default
function() {
  list(a = 1, b = "x", c = c(TRUE, FALSE), d = NULL)
}

#* @get /vector
function() {
  1:5
}

#* @get /null
function() {
  NULL
}

#* @serializer text
#* @get /text-vector
function() {
  c("one", "two")
}

#* @get /status
function(res, code = "201") {
  res$status <- as.integer(code)
  list(status = res$status)
}

#* @get /headers
function(res) {
  res$setHeader("X-One", "1")
  res$setHeader("X-Two", "two words")
  res$setHeader("Cache-Control", "no-store")
  res$setCookie("first", "1", path = "/")
  res$setCookie("second", "two words", path = "/", http = TRUE)
  list(ok = TRUE)
}

#* @get /redirect
function(res) {
  res$status <- 302
  res$setHeader("Location", "/json-default")
  list(moved = TRUE)
}

#* @get /raw-response
function(res) {
  res$status <- 202
  res$body <- "built by hand"
  res$setHeader("Content-Type", "text/x-custom")
  res
}

#* @serializer contentType list(type = "application/octet-stream")
#* @get /bytes
function() {
  as.raw(c(0, 1, 2, 255))
}

#* @serializer text
#* @parser text
#* @post /parse-text
function(req) {
  paste("got:", req$body)
}

#* @parser json
#* @post /parse-json-only
function(req) {
  list(body = req$body)
}

#* @parser form
#* @post /parse-form-only
function(req) {
  list(body = req$body)
}

#* @parser octet
#* @post /parse-octet
function(req) {
  list(length = length(req$body), class = class(req$body))
}

#* @get /error-status
function(res) {
  res$status <- 418
  stop("teapot")
}

#* @get /warning
function() {
  warning("careful")
  list(ok = TRUE)
}

#* @get /args/<a:int>/<b:double>/<c:bool>/<d:logical>/<e>
function(a, b, c, d, e) {
  list(a = a, b = b, c = c, d = d, e = e, classes = c(class(a), class(b), class(c), class(d), class(e)))
}

#* @param n:int A number
#* @param flags:[bool] Some flags
#* @get /typed-query
function(n, flags = NULL) {
  list(n = n, n_class = class(n), flags = flags, flags_class = class(flags))
}

#* @get /multi-verb
#* @post /multi-verb
#* @put /multi-verb
function(req) {
  req$REQUEST_METHOD
}

#* Files read at request time, relative to plumber.R's folder (pr_run serves from there).
#* @serializer text
#* @get /read-relative
function() {
  readLines("note.txt")
}

#* @get /include
function(res) {
  include_file("note.txt", res, content_type = "text/plain")
}

#* @serializer rds
#* @get /rds
function() {
  list(a = 1:3, b = "x")
}

#* @get /header-utf8
function(res) {
  res$setHeader("X-Name", "caf\u00e9")
  res$setHeader("Content-Disposition", "attachment; filename=\"r\u00e9sum\u00e9.txt\"")
  list(ok = TRUE)
}

#* @get /big
function(n = "100000") {
  seq_len(as.integer(n)) / 7
}
