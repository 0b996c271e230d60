# bridge.R: the R side of a plumbline worker.
#
# Sourced once per worker into its own environment (never into the app's). The Python worker
# calls plumbline_load() once, then plumbline_handle() for every request. plumbline_handle()
# builds the same Rook environment httpuv would, runs plumber's own pipeline (pr$call), and
# flattens the response into vectors that cross to Python without per-element conversion.

plumbline <- new.env(parent = emptyenv())
# Until plumbline_sentinel() arms it (in the zygote), no full collection is watched for.
plumbline$full_gc <- FALSE

# Attach packages, make futures inline (optionally), load the plumber.R once.
# Returns NULL on success or a character message (file and line included) on failure.
plumbline_load <- function(file, attach, inline_futures) {
  tryCatch({
    # Everyone runs plumber.R with plumber attached (library(plumber); pr(...) or plumb()):
    # files use its exports unqualified (forward, %>%, as_attachment, serializer_*).
    library(plumber)
    for (pkg in attach) library(pkg, character.only = TRUE)
    # Concurrency comes from the pool's processes, never from futures inside one worker:
    # a sequential plan, set when the future package loads (if it ever does; loading it
    # up front would cost every start a quarter of a second).
    has_future <- nzchar(system.file(package = "future"))
    if (has_future) on_package_load("future", function() future::plan("sequential"))
    # plumber reports a syntax error only as "Error sourcing <file>"; parse first for the line.
    parse_error <- tryCatch({
      parse(file, keep.source = FALSE, encoding = "UTF-8")
      NULL
    }, error = function(e) conditionMessage(e))
    if (!is.null(parse_error)) return(paste0("syntax error: ", parse_error))

    appenv <- new.env(parent = globalenv())
    if (isTRUE(inline_futures)) install_inline_futures(appenv, has_future)
    pr <- plumber::pr(file, envir = appenv)
    # pr_run() serves from the file's folder; the worker only ever serves this app.
    setwd(dirname(file))
    plumbline$pr <- pr
    # pr_run() reads this option (often set by plumber.R itself) when it starts serving;
    # httpuv then asks pr$onHeaders() before reading a body. The worker never runs pr_run().
    max_size <- getOption("plumber.maxRequestSize", 0)
    pr$.__enclos_env__$private$maxSize <- max_size
    plumbline$check_size <- isTRUE(max_size > 0)
    # fastpath.R, sourced beside this file; an app it cannot judge simply keeps pr$call().
    tryCatch(fastpath_prepare(pr), error = function(e) fastpath$enabled <- FALSE)
    plumbline$httpuv_version <- utils::packageVersion("httpuv")
    NULL
  }, error = function(e) paste0(basename(file), ": ", conditionMessage(e)))
}

# The worker is being stopped: run the app's "exit" hooks, as pr_run() does when it ends.
plumbline_exit <- function() {
  if (!is.null(plumbline$pr)) {
    tryCatch(plumbline$pr$.__enclos_env__$private$runHooks("exit"),
             error = function(e) message("exit hook failed: ", conditionMessage(e)))
  }
  invisible(NULL)
}

# The R connections the app left open (files, sockets, pipes): a process holding one must
# not be forked, or its workers would share one stream.
plumbline_open_connections <- function() {
  open <- setdiff(getAllConnections(), 0:2)
  vapply(open, function(i) summary(getConnection(i))$description, character(1))
}

# future(expr) that evaluates at once: future() under a sequential plan costs ms per call and
# turns the result into a promise, which plumber then resolves through the later event loop.
install_inline_futures <- function(appenv, has_future) {
  appenv$future <- function(expr, ...) {
    eval(substitute(expr), new.env(parent = parent.frame()))
  }
  if (has_future) {
    on_package_load("future", function() {
      registerS3method("value", "default", function(future, ...) future,
                       envir = asNamespace("future"))
    })
  }
}

# Run fn now if the package's namespace is loaded, else right after it loads.
on_package_load <- function(package, fn) {
  if (isNamespaceLoaded(package)) {
    fn()
  } else {
    setHook(packageEvent(package, "onLoad"), function(...) fn())
  }
}

# A Rook input stream over the raw body, with httpuv's InputStream methods. A closure costs
# far less per request than an R6 object or a connection.
rook_input <- function(body) {
  pos <- 0L
  len <- length(body)
  stream <- new.env(parent = emptyenv())
  stream$read <- function(l = -1L) {
    if (l < 0L || pos + l > len) l <- len - pos
    if (l == 0L) return(raw())
    out <- body[(pos + 1L):(pos + l)]
    pos <<- pos + l
    out
  }
  stream$rewind <- function() pos <<- 0L
  stream$read_lines <- function(n = -1L) {
    rest <- if (pos == 0L) body else body[seq.int(pos + 1L, length.out = len - pos)]
    con <- rawConnection(rest)
    on.exit(close(con))
    lines <- readLines(con, n, warn = FALSE)
    pos <<- len
    lines
  }
  class(stream) <- c("InputStream", "R6")
  stream
}

error_stream <- local({
  stream <- new.env(parent = emptyenv())
  stream$cat <- function(..., sep = " ", fill = FALSE, labels = NULL) {
    base::cat(..., sep = sep, fill = fill, labels = labels, file = stderr())
  }
  stream$flush <- function() base::flush(stderr())
  class(stream) <- c("ErrorStream", "R6")
  stream
})

# fields: method, path, query string, remote addr, remote port, server name, server port,
# scheme, then the headers: lower-case names, their "HTTP_<UPPER_SNAKE>" names, values.
# One flat character vector in, list(c(status, name1, value1, ...), raw body) out: every
# object rpy2 builds or wraps costs microseconds on each request.
plumbline_handle <- function(fields, body) {
  req <- new.env()
  req$REQUEST_METHOD <- fields[[1L]]
  req$SCRIPT_NAME <- ""
  req$PATH_INFO <- fields[[2L]]
  # httpuv keeps the "?"; plumber strips it (and re-appends it verbatim on redirects).
  query_string <- fields[[3L]]
  req$QUERY_STRING <- if (nzchar(query_string)) paste0("?", query_string) else ""
  req$REMOTE_ADDR <- fields[[4L]]
  req$REMOTE_PORT <- fields[[5L]]
  req$SERVER_NAME <- fields[[6L]]
  req$SERVER_PORT <- fields[[7L]]
  req$rook.version <- "1.1-0"
  req$rook.url_scheme <- fields[[8L]]
  n <- (length(fields) - 8L) %/% 3L
  if (n > 0L) {
    values <- fields[(8L + 2L * n + 1L):(8L + 3L * n)]
    list2env(structure(as.list(values), names = fields[(8L + n + 1L):(8L + 2L * n)]), envir = req)
    req$HEADERS <- structure(values, names = fields[(8L + 1L):(8L + n)])
  } else {
    req$HEADERS <- structure(character(), names = character())
  }
  req$rook.input <- rook_input(body)
  req$rook.errors <- error_stream
  req$httpuv.version <- plumbline$httpuv_version
  if (!is.null(req$HTTP_CONTENT_TYPE)) req$CONTENT_TYPE <- req$HTTP_CONTENT_TYPE
  if (!is.null(req$HTTP_CONTENT_LENGTH)) req$CONTENT_LENGTH <- req$HTTP_CONTENT_LENGTH

  tryCatch({
    response <- if (plumbline$check_size) plumbline$pr$onHeaders(req)
    if (is.null(response)) response <- fastpath_call(req)
    if (is.null(response)) response <- plumbline$pr$call(req)
    if (promises::is.promise(response)) response <- settle(response)
    to_wire(response)
  }, error = function(e) internal_error(e))
}

# Run the later event loop until the promise settles, as httpuv's service loop would.
settle <- function(p) {
  done <- FALSE
  value <- NULL
  failure <- NULL
  promises::then(p,
    onFulfilled = function(v) { value <<- v; done <<- TRUE },
    onRejected = function(e) { failure <<- e; done <<- TRUE })
  while (!done) later::run_now(timeoutSecs = 0.1)
  if (!is.null(failure)) stop(failure)
  value
}

# httpuv's answer when the app itself fails outside plumber's error handler.
internal_error <- function(e) {
  list(c("500", "Content-Type", "text/plain; charset=UTF-8"),
       charToRaw(enc2utf8(paste("ERROR:", conditionMessage(e), collapse = "\n"))))
}

# httpuv's answer to a response it cannot send (a header that is not one string, no body).
exception_response <- function() {
  list(c("500", "Content-Type", "text/plain; charset=UTF-8"), charToRaw("An exception occurred."))
}

# list(c(status, name1, value1, ...), raw body) as httpuv would put it on the wire.
to_wire <- function(resp) {
  if (is.null(resp) || length(resp) == 0) return(exception_response())
  headers <- lapply(resp$headers, paste)
  if (any(lengths(headers) != 1L)) return(exception_response())
  names <- names(headers)
  if (is.null(names)) names <- character()
  values <- as.character(unlist(headers, use.names = FALSE))
  body <- resp$body
  if (is.list(body) && "file" %in% names(body)) {
    file <- body[["file"]]
    raw_body <- readBin(file, "raw", file.info(file)$size)
    if (isTRUE(as.logical(body$owned))) unlink(file)
    body <- raw_body
  } else if (is.character(body)) {
    # httpuv sends the first string as the bytes plumber encoded (no re-encoding).
    if (length(body) == 0L) return(exception_response())
    body <- charToRaw(body[[1L]])
  } else if (is.null(body)) {
    body <- raw()
  } else if (!is.raw(body)) {
    return(exception_response())
  }
  status <- as.character(as.integer(resp$status))
  if (length(status) != 1L || is.na(status)) return(exception_response())
  list(enc2utf8(c(status, rbind(names, values))), body)
}

# A forked worker's first full garbage collection. R marks every live object in its header
# on a full collection, so that one collection makes the whole heap the worker shares with
# the zygote private to it (~30 MiB more with plumber loaded). The zygote makes a sentinel
# just before its own last full collection (which puts it in R's oldest generation, which
# only a full collection examines); each forked worker drops it at once, and its finalizer
# runs in the first full collection that worker does (the pool then replaces the worker with
# a fresh fork, see pool.py).
plumbline_sentinel <- function() {
  plumbline$full_gc <- FALSE
  sentinel <- new.env(parent = emptyenv())
  reg.finalizer(sentinel, plumbline_full_gc_seen)
  plumbline$sentinel <- sentinel
  invisible(NULL)
}

plumbline_full_gc_seen <- function(sentinel) plumbline$full_gc <- TRUE

plumbline_forked <- function() {
  plumbline$sentinel <- NULL
  invisible(NULL)
}
