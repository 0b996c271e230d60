# json_writer.R: jsonlite's bytes for plain values, without jsonlite's S4 dispatch.
#
# plumber's JSON serializers end in jsonlite's asJSON(), an S4 generic: every value, every
# data frame column and every list element goes through method dispatch, a `.local` closure,
# match.arg() and is() before jsonlite's C functions write the text. For a 20-row data frame
# that is ~280 us of a ~330 us toJSON(). Values built only from plain vectors (integer,
# double, character, logical; no class or attribute but names), lists of them and data
# frames of them (automatic row names) need none of that: json_write() calls the same C
# functions (num_to_char, escape, row and array collapse) with the arguments asJSON's methods
# would pass them, so the text is jsonlite's own. Anything else keeps asJSON().
# json_writer_plan() enables the writer for one endpoint's resolved toJSON() arguments only
# after it wrote the same bytes as toJSON() for a probe of every branch (a jsonlite whose
# methods behave differently keeps asJSON()).

json_writer <- new.env(parent = emptyenv())
json_writer$plans <- list()

# The writer's settings for toJSON()'s resolved arguments (the frame toJSON leaves before
# calling asJSON()), or NULL when they take a path the writer does not reproduce.
json_writer_plan <- function(resolved) {
  jsonlite <- asNamespace("jsonlite")
  parts <- c("num_to_char", "deparse_vector", "row_collapse_object", "collapse",
             "collapse_object", "cleannames")
  if (!all(vapply(parts, exists, NA, envir = jsonlite, inherits = FALSE))) return(NULL)
  digits <- resolved$digits
  plain_args <- identical(resolved$dataframe, "rows") && is.null(resolved$na) &&
    identical(resolved$indent, NA_integer_) && evalq(...length(), resolved) == 0L &&
    (is.numeric(digits) || identical(digits, NA)) && length(digits) == 1L &&
    is.logical(resolved$auto_unbox)
  if (!plain_args) return(NULL)
  # Endpoints mostly share their serializer's settings: probe each setting once.
  key <- paste(deparse(digits), isTRUE(resolved$auto_unbox))
  if (!is.null(json_writer$plans[[key]])) return(json_writer$plans[[key]])
  plan <- list(digits = digits, use_signif = methods::is(digits, "AsIs"),
               unbox = isTRUE(resolved$auto_unbox), num_to_char = jsonlite$num_to_char,
               escape = jsonlite$deparse_vector, rows = jsonlite$row_collapse_object,
               array = jsonlite$collapse, object = jsonlite$collapse_object,
               names = jsonlite$cleannames)
  to_json <- function(x) {
    do.call(jsonlite::toJSON, c(list(x), as.list(resolved)[c("auto_unbox", "digits")]))
  }
  for (probe in json_writer_probes()) {
    if (!json_plain(probe, 0L) || !identical(json_write(probe, plan), as.character(to_json(probe))))
      return(NULL)
  }
  json_writer$plans[[key]] <- plan
  plan
}

# Every branch of json_write(), with the values jsonlite treats specially (NA, NaN, Inf,
# escapes, non-ASCII, empty and repeated names, one row, length one).
json_writer_probes <- function() {
  frame <- data.frame(i = c(1L, NA, -3L), d = c(pi, NA, NaN), s = c("a\"\\\n\u00e9", NA, ""),
                      b = c(TRUE, NA, FALSE), stringsAsFactors = FALSE)
  list(frame, frame[2L, ], data.frame(x = 1e10, y = -1e-7, z = Inf),
       list(a = 1L, b = c(1.5, NA, Inf), c = NA_character_, d = c(TRUE, NA), e = list(),
            f = frame, g = list(list("x", 2)), "", h = c(k = 1)),
       list(1, list(2, "y")), c(2.25, -0.001, 123456.789), "s", NA, character(),
       structure(list(1, 2), names = c("a", "a")))
}

# TRUE when json_write() writes x: plain vectors, lists and data frames of them, up to a
# depth (deeper values keep asJSON()).
json_plain <- function(x, depth) {
  attrs <- attributes(x)
  if (is.list(x)) {
    if (depth > 8L) return(FALSE)
    if (is.null(attrs) || identical(names(attrs), "names")) {
      for (element in x) if (!json_plain(element, depth + 1L)) return(FALSE)
      return(TRUE)
    }
    return(json_plain_frame(x, attrs))
  }
  (is.null(attrs) || identical(names(attrs), "names")) &&
    typeof(x) %in% c("double", "integer", "character", "logical")
}

# A data frame asJSON() writes row by row with no row names: class exactly "data.frame",
# automatic (integer) row names, at least one row and column, plain columns.
json_plain_frame <- function(x, attrs) {
  if (!identical(attrs$class, "data.frame") || !is.integer(attrs$row.names) ||
      !setequal(names(attrs), c("names", "class", "row.names")) ||
      length(x) == 0L || .row_names_info(x, 2L) == 0L) return(FALSE)
  for (column in x) {
    if (!is.null(attributes(column)) ||
        !(typeof(column) %in% c("double", "integer", "character", "logical"))) return(FALSE)
  }
  TRUE
}

# jsonlite's text for a value json_plain() accepted, as asJSON() would write it.
json_write <- function(x, plan) {
  if (is.data.frame(x)) return(json_write_frame(x, plan))
  if (is.list(x)) {
    parts <- vapply(x, json_write, "", plan = plan, USE.NAMES = FALSE)
    if (is.null(names(x))) return(plan$array(parts, inner = FALSE, indent = NA_integer_))
    return(plan$object(plan$escape(plan$names(names(x))), parts, indent = NA_integer_))
  }
  # asJSON()'s numeric, character and logical methods outside a data frame (na = NULL
  # there: "string" for numbers, "null" for strings and logicals).
  text <- if (is.character(x)) {
    x <- enc2utf8(x)
    escaped <- plan$escape(x)
    escaped[is.na(x)] <- "null"
    escaped
  } else if (is.logical(x)) {
    logical <- ifelse(x, "true", "false")
    logical[is.na(x)] <- "null"
    if (is.character(logical)) logical else as.character(logical)
  } else {
    plan$num_to_char(x, plan$digits, TRUE, plan$use_signif, FALSE)
  }
  if (plan$unbox && length(text) == 1L) return(text)
  plan$array(text, indent = NA_integer_)
}

# asJSON()'s data frame method (dataframe = "rows"): each column's values with na = "NA"
# (a missing value leaves its field out of the row), then one object per row.
json_write_frame <- function(x, plan) {
  rows <- .row_names_info(x, 2L)
  cells <- vapply(x, function(column) {
    if (is.character(column)) {
      column <- enc2utf8(column)
      escaped <- plan$escape(column)
      escaped[is.na(column)] <- NA_character_
      escaped
    } else if (is.logical(column)) {
      as.character(ifelse(column, "true", "false"))
    } else {
      plan$num_to_char(column, plan$digits, NA, plan$use_signif, FALSE)
    }
  }, character(rows), USE.NAMES = FALSE)
  if (!is.matrix(cells)) cells <- t(cells)
  objects <- plan$rows(plan$escape(plan$names(names(x))), cells, indent = NA_integer_)
  plan$array(objects, inner = FALSE, indent = NA_integer_)
}
