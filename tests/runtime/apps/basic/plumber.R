# A small app exercising plumber's semantics through the pool (tests/runtime).
loaded_at <- Sys.time()

#* @serializer text
#* @get /text
function() "hello"

#* @get /json
function() list(a = 1)

#* @get /items/<id:int>
function(id) list(id = id, class = class(id))

#* @get /echo
function(msg = "none", n = "0") list(msg = msg, n = n)

#* @post /sum
function(a, b) list(sum = a + b)

#* @get /req
#* @post /req
function(req) {
  list(
    method = req$REQUEST_METHOD, path = req$PATH_INFO, query = req$QUERY_STRING,
    custom = req$HTTP_X_CUSTOM, header = req$HEADERS[["x-custom"]],
    content_type = req$CONTENT_TYPE, body = req$postBody, raw_length = length(req$bodyRaw),
    scheme = req$rook.url_scheme, remote = req$REMOTE_ADDR
  )
}

#* @get /status
function(res) {
  res$status <- 201
  res$setHeader("X-Plumbline", "yes")
  list(created = TRUE)
}

#* @get /error
function() stop("kaboom")

#* @serializer text
#* @get /sleep
function(secs = "1") {
  Sys.sleep(as.numeric(secs))
  "slept"
}

#* @serializer text
#* @get /pid
function() Sys.getpid()

#* @get /noisy
function() {
  print("noise on stdout")
  cat("more noise\n")
  message("a message")
  list(ok = TRUE)
}

#* @serializer text
#* @get /bytes
function() rawToChar(as.raw(c(0x68, 0xc3, 0xa9)))

#* @post /quit
function(secs = 0) {
  Sys.sleep(as.numeric(secs))
  quit(save = "no")
}

#* @get /value
function(q) list(q = q)

#* @serializer octet
#* @post /mirror
function(req) req$bodyRaw

#* @serializer text
#* @get /text-vector
function() c("one", "two")

# as_attachment() unqualified: plumber is attached, as under library(plumber).
#* @serializer text
#* @get /attachment
function() as_attachment("hello", "hello.txt")

#* @get /payload
function(req) list(payload = req$HTTP_X_PAYLOAD)

#* @plumber
function(pr) {
  # Tests see the exit hook run when a worker is stopped gracefully.
  marker <- Sys.getenv("PLUMBLINE_TEST_EXIT_MARKER")
  if (nzchar(marker)) pr_hook(pr, "exit", function() cat("bye\n", file = marker, append = TRUE))
}

#* @post /rook-names
function(req) {
  names <- ls(req, all.names = TRUE)
  scalars <- vapply(names, function(n) {
    v <- get(n, envir = req)
    if (is.character(v) && length(v) == 1L && is.null(names(v))) "string" else class(v)[[1]]
  }, "")
  as.list(scalars)
}
