# route_report.R: plumber's router, as plumber built it, described for plumbline's Python side.
#
# Two users, one function:
# - an R worker (runtime/r/worker.py) sources this file and calls
#   plumbline_route_report_json(pr, file) right after plumber::pr() loaded the app; the JSON
#   travels to the pool in the worker's "ready" frame;
# - the control plane (plumbline/routes.py) runs it with Rscript:
#   `Rscript route_report.R FILE [PACKAGE ...]` loads FILE with plumber, exactly as the runtime
#   does, and prints the same JSON on stdout (only the file's own code runs, never a request).
#
# The report reads plumber 1.2.1's router objects (its R6 private fields) and never changes
# them. Its shape is documented in plumbline/routes.py.

plumbline_report_format <- 1L

# The report of a loaded router `pr` whose plumber.R is `file`, as a list.
plumbline_route_report <- function(pr, file) {
  priv <- pr$.__enclos_env__$private
  settings <- priv$globalSettings
  spec_handler <- priv$api_spec_handler
  customised_spec <- is.function(spec_handler) && !identical(spec_handler, identity)
  list(
    format = plumbline_report_format,
    file = normalizePath(file, mustWork = FALSE),
    info = as.list(settings$info),
    tags = lapply(settings$tags, as.list),
    options = list(
      trailing_slash = isTRUE(getOption("plumber.trailingSlash", FALSE)),
      method_not_allowed = isTRUE(getOption("plumber.methodNotAllowed", TRUE)),
      shared_secret = !is.null(getOption("plumber.sharedSecret", NULL))
    ),
    debug = isTRUE(tryCatch(pr$getDebug(), error = function(e) FALSE)),
    router = plumbline_router_report(pr, file),
    # plumber's own /openapi.json, when the app changed the spec in R (pr_set_api_spec()).
    openapi = if (customised_spec) plumbline_plumber_openapi(pr) else NULL
  )
}

plumbline_route_report_json <- function(pr, file) {
  as.character(jsonlite::toJSON(plumbline_route_report(pr, file), auto_unbox = TRUE,
                                null = "null", na = "null", digits = NA, force = TRUE))
}

# One router: its endpoints in the order plumber tries them, its filters, mounts (recursively),
# hooks and handlers. A static router (@assets, pr_static()) is just its folder.
plumbline_router_report <- function(router, file) {
  priv <- router$.__enclos_env__$private
  if (inherits(router, "PlumberStatic")) {
    return(list(kind = "static", directory = priv$dir))
  }
  if (!is.null(priv$filename)) file <- priv$filename
  lines <- if (!is.null(priv$lines)) priv$lines else character()
  default_filters <- plumber:::defaultPlumberFilters
  filters <- lapply(priv$filts, function(fi) {
    func <- fi$.__enclos_env__$private$func
    list(name = fi$name,
         default = fi$name %in% names(default_filters) &&
           identical(body(func), body(default_filters[[fi$name]])),
         line = plumbline_first_line(fi$lines, func, file))
  })
  # plumber's Plumber$route(): "__first__", then each filter's preempting endpoints, then
  # the endpoints that preempt nothing; mounts after all of them.
  groups <- unique(c("__first__", vapply(priv$filts, function(fi) fi$name, character(1)),
                     "__no-preempt__"))
  endpoints <- list()
  for (group in groups) {
    for (ep in priv$ends[[group]]) {
      endpoints[[length(endpoints) + 1L]] <- plumbline_endpoint_report(
        ep, group, priv, lines, file)
    }
  }
  mounts <- lapply(names(priv$mnts), function(prefix) {
    list(prefix = prefix, router = plumbline_router_report(priv$mnts[[prefix]], file))
  })
  hooks <- names(priv$hooks)[lengths(priv$hooks) > 0L]
  list(
    kind = "router",
    file = normalizePath(file, mustWork = FALSE),
    endpoints = endpoints,
    filters = filters,
    mounts = mounts,
    hooks = I(as.character(hooks)),
    custom_404 = !identical(priv$notFoundHandler, plumber:::default404Handler),
    custom_error = !identical(body(priv$errorHandler), body(plumber:::defaultErrorHandler())),
    default_serializer = plumbline_content_type(priv$default_serializer),
    default_parsers = I(plumbline_parser_names(priv$default_parsers))
  )
}

plumbline_endpoint_report <- function(ep, group, priv, lines, file) {
  func <- ep$getFunc()
  annotated <- !is.null(ep$lines) && !is.na(ep$lines[1])
  line <- plumbline_first_line(ep$lines, func, file)
  path_params <- ep$getTypedParams()
  formals <- suppressMessages(suppressWarnings(ep$getFuncParams()))
  serializer <- if (is.null(ep$serializer)) priv$default_serializer else ep$serializer
  list(
    verbs = I(as.character(ep$verbs)),
    path = ep$path,
    regex = ep$.__enclos_env__$private$regex$regex,
    path_params = lapply(seq_len(nrow(path_params)), function(i) {
      list(name = path_params$name[[i]], type = path_params$type[[i]],
           is_array = isTRUE(path_params$isArray[[i]]))
    }),
    preempt = if (identical(group, "__no-preempt__")) NULL else group,
    serializer = list(
      name = if (annotated) plumbline_annotated_serializer(lines, ep$lines[1]) else NULL,
      content_type = plumbline_content_type(serializer),
      own = !is.null(ep$serializer)
    ),
    parsers = if (is.null(ep$parsers)) NULL else I(plumbline_parser_names(ep$parsers)),
    line = line,
    in_code = !annotated,
    summary = plumbline_text(ep$comments),
    description = plumbline_text(ep$description),
    tags = I(plumbline_strings(ep$tags)),
    responses = lapply(plumbline_list(ep$responses), function(r) plumbline_text(r$description)),
    params = lapply(names(plumbline_list(ep$params)), function(name) {
      p <- ep$params[[name]]
      list(name = name, type = plumbline_text(p$type, "string"),
           is_array = isTRUE(p$isArray), required = isTRUE(p$required),
           description = plumbline_text(p$desc))
    }),
    formals = lapply(names(formals), function(name) {
      f <- formals[[name]]
      default <- f$default
      literal <- !is.null(default) && !(length(default) == 1L && is.na(default)) &&
        (is.atomic(default) || is.list(default))
      list(name = name, type = plumbline_text(f$type, "string"),
           is_array = isTRUE(f$isArray), required = isTRUE(f$required),
           has_default = literal, default = if (literal) default else NULL)
    })
  )
}

# The line of plumber.R an endpoint or filter comes from: its annotation's expression, else
# the function's own source line when it was written in this file (pr_get() in a @plumber
# block). NULL when unknown.
plumbline_first_line <- function(lines, func, file) {
  if (!is.null(lines) && !is.na(lines[1])) return(as.integer(lines[1]))
  ref <- attr(func, "srcref")
  if (is.null(ref)) return(NULL)
  source_file <- attr(ref, "srcfile")$filename
  if (is.null(source_file) || basename(source_file) != basename(file)) return(NULL)
  as.integer(ref[1])
}

# The name written in the endpoint's `@serializer NAME` (or `@json`, `@html`, ...) annotation,
# read from the comment block above the expression with plumber's own patterns.
plumbline_annotated_serializer <- function(lines, first) {
  i <- first - 1L
  while (i > 0L && grepl("^#['*]?|^\\s*$", lines[i])) {
    line <- lines[i]
    m <- regmatches(line, regexec("^#['*]\\s*@serializer\\s+(\\S+)", line, perl = TRUE))[[1]]
    if (length(m) == 2L) return(m[2])
    m <- regmatches(line, regexec("^#['*]\\s*@(json|html|jpeg|png|svg)", line, perl = TRUE))[[1]]
    if (length(m) == 2L) return(m[2])
    i <- i - 1L
  }
  NULL
}

# The Content-Type a serializer sets, found where plumber's OpenAPI code finds it.
plumbline_content_type <- function(serializer) {
  if (!is.function(serializer)) return(NULL)
  type <- environment(serializer)[["headers"]][["Content-Type"]]
  if (is.character(type) && length(type) == 1L && nzchar(type)) type else NULL
}

plumbline_parser_names <- function(parsers) {
  if (is.null(parsers)) return(character())
  names(parsers$alias)
}

plumbline_strings <- function(x) {
  x <- as.character(unlist(x))
  x[!is.na(x)]
}

plumbline_list <- function(x) if (is.list(x)) x else list()

plumbline_text <- function(x, empty = "") {
  if (is.null(x) || length(x) == 0L || all(is.na(x))) return(empty)
  paste(as.character(x), collapse = "\n")
}

# plumber's GET /openapi.json body as pr_run() serves it (no Referer: an empty server url).
plumbline_plumber_openapi <- function(pr) {
  spec <- utils::modifyList(list(servers = list(list(url = character(1)))), pr$getApiSpec())
  as.character(jsonlite::toJSON(spec, auto_unbox = TRUE))
}

# Rscript route_report.R FILE [PACKAGE ...]: load FILE as plumbline's workers do and print
# the report. Exit status 1 with R's message on stderr when the file does not load.
if (!interactive() && identical(sys.nframe(), 0L) && length(commandArgs(TRUE)) >= 1L) {
  local({
    # Started by plumbline/routes.py with the JIT off: the app sees R_ENABLE_JIT as given.
    given_jit <- Sys.getenv("PLUMBLINE_GIVEN_R_ENABLE_JIT", NA)
    if (!is.na(given_jit)) {
      Sys.unsetenv("PLUMBLINE_GIVEN_R_ENABLE_JIT")
      if (nzchar(given_jit)) Sys.setenv(R_ENABLE_JIT = substring(given_jit, 2L))
      else Sys.unsetenv("R_ENABLE_JIT")
    }
    args <- commandArgs(TRUE)
    file <- normalizePath(args[[1]], mustWork = TRUE)
    suppressPackageStartupMessages({
      library(plumber)
      for (pkg in args[-1]) library(pkg, character.only = TRUE)
    })
    # plumber reports a syntax error only as "Error sourcing <file>"; parse first for the line.
    parsed <- tryCatch({
      parse(file, keep.source = FALSE, encoding = "UTF-8")
      NULL
    }, error = function(e) conditionMessage(e))
    if (!is.null(parsed)) {
      message("syntax error: ", parsed)
      quit(status = 1L, save = "no")
    }
    pr <- tryCatch(
      withCallingHandlers(plumber::pr(file, envir = new.env(parent = globalenv())),
                          message = function(m) invokeRestart("muffleMessage")),
      error = function(e) {
        message(basename(file), ": ", conditionMessage(e))
        quit(status = 1L, save = "no")
      })
    # The report on fd 3 would be cleaner, but stdout is all Rscript offers portably: the
    # marker keeps whatever the app printed while loading out of the JSON.
    cat("\n<<<plumbline-route-report>>>\n", plumbline_route_report_json(pr, file), "\n",
        sep = "")
  })
}
