# Filters run in file order, after plumber's default filters; an endpoint that @preempts a
# filter runs just before it (and after the filters above it). A filter can answer itself,
# also for a path no endpoint has, and may carry a @serializer of its own.

#* @filter first
function(req, res) {
  req$trail <- c(req$trail, "first")
  res$setHeader("X-First", "1")
  forward()
}

#* @filter second
#* @serializer text
function(req, res) {
  req$trail <- c(req$trail, "second")
  if (identical(req$PATH_INFO, "/blocked") || identical(req$PATH_INFO, "/filter-only")) {
    res$status <- 403
    return(paste("answered by the second filter for", req$PATH_INFO))
  }
  forward()
}

#* @filter third
function(req, res) {
  req$trail <- c(req$trail, "third")
  if (!is.null(req$HTTP_X_DENY)) {
    res$status <- 401
    return(list(error = "denied by the third filter"))
  }
  forward()
}

#* @get /trail
function(req) list(trail = req$trail)

#* @preempt second
#* @get /pre-second
function(req) list(trail = req$trail)

#* @preempt first
#* @get /pre-first
function(req) list(trail = req$trail, first_header = FALSE)

#* @preempt __first__
#* @get /pre-very-first
function(req) list(trail = req$trail, args = req$args)

#* @preempt queryString
#* @get /pre-query
function(req) list(args = req$args, query = req$QUERY_STRING)

#* @get /blocked
function() "never reached"

#* @post /post-trail
function(req) list(trail = req$trail, body = req$body)
