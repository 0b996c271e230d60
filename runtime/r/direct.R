# direct.R: the least R a plain endpoint needs, with plumber's own functions.
#
# For an endpoint whose function takes neither req, res nor `...`, in an app fastpath.R
# accepts, whose serializer is one of plumber's serializer_headers() closures (json, text,
# html, csv, rds, ...) and whose error handler is plumber's default, the only R that shapes
# the answer is: the query and path arguments, the body parsers, the function itself and
# the serializer's serialize_fn. The worker's Python routes the request the way plumber's
# router would (first endpoint in order whose verb and regex match), parses the query string
# exactly as plumber's parseQS() does (ASCII only; anything else falls back), and calls
# plumbline_direct() with the endpoint's index and its arguments. No Rook environment, no R6
# response, no promise domain (only forward() reads it, and it is refused below).
# An error, an attachment or a PlumberResponse takes plumber's serializer and error handler
# with a response object, exactly as fastpath.R does.

direct <- new.env(parent = emptyenv())

# Called after fastpath_prepare(): a table the worker routes by, one row per endpoint of
# "__no-preempt__" in plumber's order (NULL when the app does not qualify at all).
direct_prepare <- function(pr) {
  # Run once: R's JIT would compile every closure this touches (jsonlite's dispatch for the
  # writer's probes, toJSON's resolved statements), ~0.2 s of start for code run once here.
  jit <- compiler::enableJIT(0L)
  on.exit(compiler::enableJIT(jit))
  direct$ends <- list()
  if (!isTRUE(fastpath$enabled)) return(NULL)
  fastpath_json_serializers()
  if (isTRUE(plumbline$check_size)) return(NULL)
  priv <- fastpath$priv
  if (!identical(body(priv$errorHandler), body(plumber:::defaultErrorHandler()))) return(NULL)
  template <- body(plumber:::serializer_headers())
  ends <- fastpath$ends
  rows <- vector("list", length(ends))
  for (i in seq_along(ends)) {
    h <- ends[[i]]
    ep <- h$.__enclos_env__$private
    fargs <- names(formals(ep$func))
    if (is.null(fargs)) fargs <- character()
    serializer <- if (!is.null(h$serializer)) fastpath$serializers[[i]] else
      fastpath$default_serializer
    ok <- isTRUE(fastpath$plain[[i]]) && is.function(ep$func) &&
      !any(c("req", "res", "...") %in% fargs) &&
      is.function(serializer) && identical(body(serializer), template) &&
      !("forward" %in% all.names(body(ep$func)))
    entry <- list(func = ep$func, envir = ep$envir, fargs = fargs,
                  names = ep$regex$names, converters = ep$regex$converters,
                  parsers = if (!is.null(h$parsers)) h$parsers else priv$default_parsers,
                  serializer = h$serializer)
    if (ok) {
      # The environment may be json_serializer()'s, a child of the serializer's own: get().
      senv <- environment(serializer)
      headers <- lapply(get("headers", envir = senv), paste)
      entry$serialize_fn <- get("serialize_fn", envir = senv)
      # Status and headers of every answer the serializer gives: one vector, kept for the
      # worker's life, which the worker's Python reads once (it knows it by its address).
      entry$meta <- c("200", enc2utf8(c(rbind(names(headers),
                                              as.character(unlist(headers, use.names = FALSE))))))
      ok <- all(lengths(headers) == 1L) && !is.null(names(headers))
    }
    direct$ends[[i]] <- entry
    rows[[i]] <- list(verbs = as.character(h$verbs), regex = ep$regex$regex,
                      params = length(ep$regex$names), direct = ok, fargs = fargs,
                      meta = if (ok) entry$meta else character())
  }
  rows
}

# fastpath.R serializes with these: each endpoint's serializer and the router's default,
# their serialize_fn swapped for json_shortcut()'s (same closure, headers and error handling
# otherwise). The direct path calls the same serialize_fn.
fastpath_json_serializers <- function() {
  template <- body(plumber:::serializer_headers())
  fastpath$default_serializer <- json_serializer(fastpath$priv$default_serializer, template)
  fastpath$serializers <- lapply(fastpath$ends, function(h) {
    if (!is.null(h$serializer)) json_serializer(h$serializer, template)
  })
}

# A copy of a serializer_headers() closure whose serialize_fn is json_shortcut()'s (the
# serializer itself when it is another kind, or when there is no shortcut for it).
json_serializer <- function(serializer, template) {
  if (!is.function(serializer) || !identical(body(serializer), template)) return(serializer)
  senv <- environment(serializer)
  shortcut <- json_shortcut(senv$serialize_fn)
  if (identical(shortcut, senv$serialize_fn)) return(serializer)
  swapped <- new.env(parent = senv)
  swapped$serialize_fn <- shortcut
  environment(serializer) <- swapped
  serializer
}

# plumber's JSON serializers (serializer_json(), serializer_unboxed_json(), with their own
# arguments) call jsonlite::toJSON(val, ...), which resolves its arguments (eight
# match.arg() calls) and calls jsonlite's asJSON() with them. The arguments do not depend on
# `val`, so they are resolved once here, by toJSON's own statements, and each request calls
# asJSON() with them, exactly as toJSON would: the same jsonlite code writes the same bytes,
# about 45 us sooner a request. Anything else (another serializer, a jsonlite whose toJSON
# is not shaped as expected, `pretty` a number) keeps the serializer's own function.
json_shortcut <- function(serialize_fn) {
  senv <- environment(serialize_fn)
  to_json <- jsonlite::toJSON
  statements <- as.list(body(to_json))
  last <- length(statements)
  call <- statements[[last - 1L]]
  shaped <- identical(body(serialize_fn), quote({ toJSON(val, ...) })) &&
    identical(get0("toJSON", envir = senv), to_json) &&
    identical(statements[[1L]], as.name("{")) && last > 3L &&
    is.call(call) && identical(call[[1L]], as.name("<-")) &&
    identical(call[[2L]], as.name("ans")) && is.call(call[[3L]]) &&
    identical(call[[3L]][[1L]], as.name("asJSON")) && identical(call[[3L]][[2L]], as.name("x")) &&
    identical(statements[[last]], quote(if (is.numeric(pretty)) {
      prettify(ans, pretty)
    } else {
      class(ans) <- "json"
      return(ans)
    }))
  if (!shaped) return(serialize_fn)
  # toJSON's statements before its asJSON() call, returning the frame they leave: the
  # resolved arguments, and `...` (what the serializer passes beyond toJSON's own).
  resolve <- to_json
  body(resolve) <- as.call(c(statements[seq_len(last - 2L)], quote(environment())))
  resolved <- tryCatch(do.call(resolve, c(list(NULL), eval(quote(list(...)), senv))),
                       error = function(e) NULL)
  if (is.null(resolved) || is.numeric(resolved$pretty)) return(serialize_fn)
  shortcut <- function(x) NULL
  # Plain values (vectors, lists, data frames of them) skip asJSON()'s S4 dispatch: same
  # bytes from jsonlite's own C functions (json_writer.R), about 250 us sooner a 20-row frame.
  plan <- json_writer_plan(resolved)
  write <- if (is.null(plan)) call[[3L]] else
    bquote(if (.(json_plain)(x, 0L)) .(json_write)(x, .(plan)) else .(call[[3L]]))
  body(shortcut) <- bquote({
    ans <- .(write)
    class(ans) <- "json"
    ans
  })
  environment(shortcut) <- resolved
  shortcut
}

# The answer for endpoint `index` (list(c(status, name, value, ...), raw body), as
# plumbline_handle's), or NULL when plumbline_handle() must take the request after all.
# args: the query arguments (plumber's parseQS result, only the function's own names);
# path_values: the path template's captured strings; body: raw; content_type: NULL or one.
plumbline_direct <- function(index, args, path_values, body, content_type) {
  if (!is.null(getOption("plumber.sharedSecret"))) return(NULL)
  d <- direct$ends[[index]]
  failure <- NULL
  old_warn <- options(warn = 1L)  # plumber's withWarn1() around filters and endpoint
  value <- tryCatch({
    merge <- FALSE
    if (length(path_values)) {
      path_args <- as.list(path_values)
      names(path_args) <- d$names
      converters <- d$converters
      if (!is.null(converters)) {
        for (k in seq_along(path_args)) path_args[[k]] <- converters[[k]](path_args[[k]])
      }
      args <- c(args, path_args)
      merge <- TRUE
    }
    if (length(body) && length(d$parsers)) {
      parsed <- plumber:::parse_body(body, content_type, d$parsers)
      body_args <- plumber:::req_body_args(list(body = parsed))
      if (length(body_args)) {
        args <- c(args, body_args)
        merge <- TRUE
      }
    }
    if (merge) {  # plumber's getRelevantArgs() for a function without `...`
      arg_names <- names(args)
      args <- args[arg_names %in% d$fargs]
      args <- args[!duplicated(names(args))]
    }
    value <- do.call(d$func, args, envir = d$envir)
    if (promises::is.promising(value)) settle(value) else value
  }, error = function(e) {
    failure <<- e
    NULL
  })
  options(old_warn)
  if (!is.null(failure) || is.null(d$serialize_fn) ||
      inherits(value, c("plumber_attachment", "PlumberResponse"))) {
    return(to_wire(direct_respond(d, value, failure)))
  }
  body <- tryCatch(d$serialize_fn(value), error = function(e) {
    failure <<- e
    NULL
  })
  if (!is.null(failure)) return(to_wire(direct_respond(d, value, NULL)))
  if (is.character(body)) {
    if (length(body) == 0L) return(exception_response())
    body <- charToRaw(body[[1L]])
  } else if (is.null(body)) {
    body <- raw()
  } else if (!is.raw(body)) {
    return(to_wire(direct_respond(d, value, NULL)))
  }
  list(d$meta, body)
}

# What fastpath.R answers from here on: plumber's serializer or error handler with a real
# PlumberResponse (and a request that carries the router, which the default handler reads).
direct_respond <- function(d, value, failure) {
  req <- new.env()
  req$pr <- fastpath$pr
  res <- plumber:::PlumberResponse$new(fastpath$priv$default_serializer)
  if (!is.null(d$serializer)) res$serializer <- d$serializer
  error_handler <- fastpath$priv$errorHandler
  if (!is.null(failure)) value <- error_handler(req, res, failure)
  fastpath_serialize(value, req, res, error_handler)
}
