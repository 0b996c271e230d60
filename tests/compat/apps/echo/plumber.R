# Echo app for the injection tests: every value a client can send comes back as data.

#* Echo what plumber parsed from the query, the path, the body, cookies and a header.
#* @serializer unboxedJSON
#* @get /echo/<word>
#* @post /echo/<word>
function(req) {
  list(
    path = req$argsPath,
    query = req$argsQuery,
    body = req$argsBody,
    cookies = req$cookies,
    header = req$HTTP_X_PAYLOAD
  )
}

#* A value R code converts, as R users write it.
#* @serializer unboxedJSON
#* @get /double
#* @post /double
function(n) {
  list(doubled = as.numeric(n) * 2)
}

#* A typed path parameter.
#* @serializer unboxedJSON
#* @get /item/<id:int>
function(id) {
  list(id = id)
}

#* The Rook fields R code reads from req (ports differ between the two servers).
#* @serializer unboxedJSON
#* @get /env
#* @post /env
#* @put /env
function(req) {
  fields <- c("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SCRIPT_NAME", "SERVER_NAME",
              "REMOTE_ADDR", "rook.url_scheme", "CONTENT_TYPE", "CONTENT_LENGTH",
              "HTTP_HOST", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_USER_AGENT",
              "HTTP_ACCEPT", "HTTP_X_CUSTOM_HEADER")
  out <- lapply(fields, function(name) req[[name]])
  names(out) <- fields
  out$header_names <- sort(names(req$HEADERS))
  out$postBody <- req$postBody
  out$bodyRaw_length <- length(req$bodyRaw)
  out$cookies <- req$cookies
  out$args <- names(req$args)
  out
}
