# fastpath.R: plumber's own request pipeline, minus the machinery a plain app never uses.
#
# pr$call() routes every request through plumber's step runner (built for async filters,
# hooks and preempted endpoints), which costs ~1 ms of R per request on a trivial endpoint.
# For an app with only plumber's default filters, no hooks and no preempted endpoints, the
# same steps run here directly: the same default filter functions, body parsers, argument
# matching, serializer and error handler, in the same order, inside plumber's exec domain.
# Anything else (a custom filter, a hook, an image serializer, 404/405, mounts) goes to
# pr$call() unchanged. tests/compat compares both paths with real plumber.

fastpath <- new.env(parent = emptyenv())

# Called once after plumber::pr(): decide whether the app qualifies, and which endpoints.
fastpath_prepare <- function(pr) {
  fastpath$enabled <- FALSE
  priv <- pr$.__enclos_env__$private
  defaults <- plumber:::defaultPlumberFilters
  filter_names <- vapply(priv$filts, function(fi) fi$name, character(1))
  default_filters <- identical(filter_names, names(defaults)) &&
    all(vapply(priv$filts, function(fi) {
      identical(body(fi$.__enclos_env__$private$func), body(defaults[[fi$name]]))
    }, logical(1)))
  only_plain_endpoints <- identical(names(priv$ends), "__no-preempt__") ||
    length(priv$ends) == 0L
  no_router_hooks <- all(lengths(priv$hooks) == 0L)
  if (!(default_filters && only_plain_endpoints && no_router_hooks)) return(invisible(FALSE))
  ends <- priv$ends[["__no-preempt__"]]
  fastpath$ends <- ends
  # An endpoint with hooks (image serializers add an aroundexec hook) keeps plumber's path.
  fastpath$plain <- vapply(ends, function(h) {
    all(lengths(h$.__enclos_env__$private$hooks) == 0L)
  }, logical(1))
  fastpath$pr <- pr
  fastpath$priv <- priv
  # The serializers requests use (direct.R's fastpath_json_serializers() speeds up JSON ones).
  fastpath$default_serializer <- priv$default_serializer
  fastpath$serializers <- lapply(ends, function(h) h$serializer)
  fastpath$defaults <- defaults
  fastpath$enabled <- TRUE
  invisible(TRUE)
}

# The response list plumber would return for req, or NULL when pr$call() must handle it.
fastpath_call <- function(req) {
  if (!isTRUE(fastpath$enabled)) return(NULL)
  # A shared secret makes the default filter answer 400 itself: leave that to plumber.
  if (!is.null(getOption("plumber.sharedSecret", NULL))) return(NULL)
  h <- NULL
  ends <- fastpath$ends
  for (i in seq_along(ends)) {
    if (ends[[i]]$canServe(req)) {
      if (!fastpath$plain[[i]]) return(NULL)
      h <- ends[[i]]
      break
    }
  }
  if (is.null(h)) return(NULL)  # 404, 405, trailing slash, mounts: plumber's own steps

  priv <- fastpath$priv
  defaults <- fastpath$defaults
  # Plumber$call()
  req$pr <- fastpath$pr
  req$.internal <- new.env()
  req$args <- list()
  res <- plumber:::PlumberResponse$new(fastpath$default_serializer)
  error_handler <- priv$errorHandler
  # Plumber$route(): an error while running the endpoint becomes the error handler's value,
  # which is then serialized like any other value (the handler may switch serializer).
  value <- plumber:::withCurrentExecDomain(req, res, plumber:::withWarn1({
    tryCatch({
      # The default filters, in plumber's order; none of them answers without a secret.
      defaults$queryString(req)
      defaults$body(req)
      defaults$cookieParser(req)
      # The handle step for the matched endpoint.
      if (!is.null(h$serializer)) res$serializer <- fastpath$serializers[[i]]
      parsers <- if (!is.null(h$parsers)) h$parsers else priv$default_parsers
      req$argsPath <- h$getPathParams(req$PATH_INFO)
      req$body <- plumber:::req_body_parser(req, parsers)
      req$argsBody <- plumber:::req_body_args(req)
      req$args <- c(req$args, req$argsPath, req$argsBody)
      # PlumberEndpoint$exec() without hooks.
      ep <- h$.__enclos_env__$private
      args <- plumber:::getRelevantArgs(c(list(req = req, res = res), req$args), func = ep$func)
      value <- do.call(ep$func, args, envir = ep$envir)
      if (promises::is.promising(value)) settle(value) else value
    }, error = function(e) error_handler(req, res, e))
  }))
  fastpath_serialize(value, req, res, error_handler)
}

# Plumber$serve(): the serialize step; its own errors are answered by the error handler.
fastpath_serialize <- function(value, req, res, error_handler) {
  tryCatch({
    if (inherits(value, "PlumberResponse")) {
      res$toResponse()
    } else {
      res$serializer(value, req, res, error_handler)
    }
  }, error = function(e) {
    res$body <- error_handler(req, res, e)
    res$toResponse()
  })
}
