"""runtime/r/json_writer.R writes jsonlite's bytes: for thousands of random plain values (vectors
with NA, NaN, Inf, escapes and non-ASCII text, nested lists, data frames with missing cells,
repeated and empty names) the serializer a worker calls gives exactly what plumber's own
serializer function gives, under plumber's JSON serializers with their usual arguments;
anything the writer does not reproduce keeps jsonlite's asJSON()."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RUNTIME = Path(__file__).resolve().parents[2] / "runtime" / "r"

# Sources the worker's R, then for each serializer (plumber's constructor and arguments)
# compares the shortcut direct.R builds with plumber's serialize_fn on random values.
# Prints one JSON line: per serializer, values tried, values the writer took, whether the
# writer is on for it, and the first mismatch (the value deparsed and both texts), if any.
R_COMPARE = r"""
suppressMessages(library(plumber))
bridge <- new.env()
for (source in c("bridge.R", "fastpath.R", "direct.R", "json_writer.R"))
  sys.source(file.path("{runtime}", source), envir = bridge)
set.seed({seed})
atomic <- function(n) {{
  v <- switch(sample(4L, 1L),
    sample(c(-2147483647L, -1L, 0L, 7L, NA, 123456L), n, TRUE),
    sample(c(0, -0, 1.5, pi, -pi * 1e6, 1e-5, 1.23e-6, 2^31, 1e15, 1e300, 0.1 + 0.2, 2.675,
             1 / 3, NA, NaN, Inf, -Inf, 99999.99995, 0.00005, -123.456789), n, TRUE),
    sample(c("", "a", "\u00e9t\u00e9", "\u4e2d\u6587", "q\"uote", "back\\slash", "\n\t\r",
             "\001ctl", "</script>", NA, "NA", "null", "\U0001F600"), n, TRUE),
    sample(c(TRUE, FALSE, NA), n, TRUE))
  v
}}
frame <- function() {{
  rows <- sample(1:5, 1L)
  columns <- lapply(seq_len(sample(1:4, 1L)), function(i) atomic(rows))
  x <- as.data.frame(structure(columns, names = paste0("c", seq_along(columns))),
                     stringsAsFactors = FALSE)
  names(x) <- sample(c("a", "b", "a", "", "x y", "\u00e9", "_row"), length(x), TRUE)
  x
}}
value <- function(depth = 0L) {{
  kind <- if (depth >= 3L) sample(c(1L, 1L, 2L), 1L) else sample(c(1L, 1L, 2L, 3L, 3L), 1L)
  if (kind == 1L) {{
    v <- atomic(sample(c(0L, 1L, 1L, 2L, 3L, 20L), 1L))
    if (length(v) && runif(1) < 0.2) names(v) <- sample(c("a", "b", ""), length(v), TRUE)
    return(v)
  }}
  if (kind == 2L) return(frame())
  x <- lapply(seq_len(sample(0:4, 1L)), function(i) value(depth + 1L))
  if (runif(1) < 0.7) names(x) <- sample(c("a", "b", "", "k", "\u00e9", "a.b"), length(x), TRUE)
  x
}}
values <- replicate({count}, value(), simplify = FALSE)
serializers <- list(
  json = serializer_json(), unboxed = serializer_unboxed_json(),
  digits_signif = serializer_json(digits = I(3)), digits_na = serializer_json(digits = NA),
  digits_10 = serializer_json(digits = 10), digits_0 = serializer_unboxed_json(digits = 0))
report <- lapply(serializers, function(serializer) {{
  plumbers <- environment(serializer)$serialize_fn
  ours <- bridge$json_shortcut(plumbers)
  taken <- 0L
  mismatch <- NULL
  for (v in values) {{
    if (bridge$json_plain(v, 0L)) taken <- taken + 1L
    a <- ours(v)
    b <- plumbers(v)
    if (is.null(mismatch) && !identical(a, b))
      mismatch <- list(value = paste(deparse(v), collapse = ""), ours = a, plumbers = b)
  }}
  planned <- !is.null(bridge$json_writer_plan(environment(ours)))
  list(tried = length(values), taken = taken, planned = planned, mismatch = mismatch)
}})
cat(jsonlite::toJSON(report, auto_unbox = TRUE, null = "null"))
"""

# Values the writer must leave to asJSON() (classes, attributes, NULL, row names...), each
# still serialized by the shortcut exactly as plumber's serializer does.
R_DECLINED = r"""
suppressMessages(library(plumber))
bridge <- new.env()
for (source in c("bridge.R", "fastpath.R", "direct.R", "json_writer.R"))
  sys.source(file.path("{runtime}", source), envir = bridge)
plumbers <- environment(serializer_json())$serialize_fn
ours <- bridge$json_shortcut(plumbers)
declined <- list(
  factor = factor(c("a", "b")), date = as.Date("2024-02-29"), matrix = matrix(1:4, 2),
  null = NULL, list_with_null = list(a = NULL, b = 1), named_rows = head(mtcars, 2),
  factor_column = data.frame(f = factor(c("x", "y"))), no_rows = data.frame(a = integer()),
  list_column = structure(list(a = list(1, 2)), class = "data.frame", row.names = 1:2),
  raw = as.raw(1:3), complex = 1i, posix = as.POSIXct("2024-01-01", tz = "UTC"),
  function_value = list(f = sum), classed_list = structure(list(a = 1), class = "thing"),
  attribute = structure(1:3, units = "cm"), deep = Reduce(function(a, b) list(a), 1:12, 1))
report <- lapply(declined, function(v) list(
  plain = bridge$json_plain(v, 0L),
  same = identical(tryCatch(ours(v), error = conditionMessage),
                   tryCatch(plumbers(v), error = conditionMessage))))
plans <- list(
  default = serializer_json(), na_string = serializer_json(na = "string"),
  columns = serializer_json(dataframe = "columns"), pretty = serializer_json(pretty = TRUE),
  extra = serializer_json(always_decimal = TRUE), rownames = serializer_json(rownames = TRUE))
planned <- lapply(plans, function(s) {{
  resolved <- environment(bridge$json_shortcut(environment(s)$serialize_fn))
  !is.null(bridge$json_writer_plan(resolved))
}})
cat(jsonlite::toJSON(list(declined = report, planned = planned), auto_unbox = TRUE))
"""


def run_r(script: str) -> dict:
    done = subprocess.run(
        ["Rscript", "-e", script], capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_writer_gives_plumbers_bytes_for_random_plain_values(seed):
    report = run_r(R_COMPARE.format(runtime=RUNTIME, seed=seed, count=1500))
    assert set(report) == {
        "json",
        "unboxed",
        "digits_signif",
        "digits_na",
        "digits_10",
        "digits_0",
    }
    for name, result in report.items():
        assert result["mismatch"] is None, (name, result["mismatch"])
        # The comparison means something only if the writer is on and took most values.
        assert result["planned"], name
        assert result["taken"] > 0.9 * result["tried"], (name, result)


def test_values_and_arguments_the_writer_leaves_to_jsonlite():
    report = run_r(R_DECLINED.format(runtime=RUNTIME))
    for name, result in report["declined"].items():
        assert result == {"plain": False, "same": True}, name
    assert report["planned"] == {
        "default": True,
        "na_string": False,
        "columns": False,
        "pretty": False,
        "extra": False,
        "rownames": False,
    }
