"""The worker's query parsing and routing for direct calls reproduce plumber's exactly."""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from plumbline.runtime.r.direct import DirectRoutes, parse_query

# plumber's parseQS() over many query strings, each answer as JSON (names kept in order);
# each string given as the worker gives it to plumber: QUERY_STRING, "?" and the query.
R_PARSE = r"""
queries <- jsonlite::fromJSON(file("stdin"))
out <- lapply(queries, function(q) {
  parsed <- tryCatch(withCallingHandlers(plumber:::parseQS(if (nzchar(q)) paste0("?", q) else ""),
                                         warning = function(w) stop("warned")),
                     error = function(e) NULL)
  if (is.null(parsed)) return(NULL)
  if (length(parsed) == 0L) return(list(names = character(), values = list()))
  if (!isTRUE(all(stringi::stri_enc_isascii(c(names(parsed), unlist(parsed)))))) return(NULL)
  list(names = I(names(parsed)), values = unname(lapply(parsed, I)))
})
cat(jsonlite::toJSON(out, null = "null"))
"""


def plumbers_parse(queries: list[str]) -> list[dict | None]:
    done = subprocess.run(
        ["Rscript", "-e", R_PARSE],
        input=json.dumps(queries),
        text=True,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def random_queries(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    alphabet = [
        "a",
        "b",
        "A",
        "=",
        "=",
        "&",
        "&",
        "+",
        "%",
        "2",
        "0",
        "4",
        "1",
        "F",
        "z",
        "-",
        "%41",
        "%2B",
        "%3D",
        "%26",
        "%20",
        "%7e",
        "%E9",
        "%00",
        ".",
        "_",
        "~",
        "?",
    ]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(count)]


@pytest.mark.slow
def test_query_parsing_matches_plumbers_parseqs():
    queries = random_queries(800) + [
        "",
        "a=1&a=2&b=3",
        "x=%ZZ",
        "x=%4",
        "a==b",
        "a=b=c",
    ]
    answers = plumbers_parse(queries)
    compared = 0
    for query, answer in zip(queries, answers):
        ours = parse_query(query)
        if ours is None:  # left to R: only where plumber warns, fails or marks UTF-8
            continue
        compared += 1
        assert answer is not None, query  # plumber parsed it without a warning, in ASCII
        expected = dict(zip(answer["names"] or [], answer["values"] or []))
        assert ours == expected, query
    assert compared > 300


def test_escapes_that_plumber_would_not_keep_ascii_go_to_r():
    assert parse_query("a=%E9") is None
    assert parse_query("a=%00") is None
    assert parse_query("caf\u00e9=1") is None
    assert parse_query("a=%41%4") == {"a": ["A%4"]}


def test_more_than_150_keys_go_to_r():
    assert parse_query("&".join(f"k{i}=1" for i in range(151))) is None
    assert len(parse_query("&".join(f"k{i}=1" for i in range(150)))) == 150


ROWS = [
    {
        "verbs": ["GET"],
        "regex": "^/items/(-?\\d+)$",
        "params": 1,
        "direct": True,
        "fargs": ["id", "q"],
    },
    {
        "verbs": ["GET"],
        "regex": "^/items/([^/]+)$",
        "params": 1,
        "direct": False,
        "fargs": ["name"],
    },
    {
        "verbs": ["GET", "POST"],
        "regex": "^/plain$",
        "params": 0,
        "direct": True,
        "fargs": ["x"],
    },
]


def test_first_matching_endpoint_wins_as_in_plumbers_router():
    routes = DirectRoutes(ROWS)
    call = routes.plan("GET", "/items/42", "q=1&other=2", False)
    assert (call.index, call.args, call.path_values) == (1, [("q", ["1"])], ("42",))
    assert routes.plan("GET", "/items/abc", "", False) is None  # endpoint 2: plumber's pipeline
    assert routes.plan("DELETE", "/plain", "", False) is None  # 405 is plumber's
    assert routes.plan("GET", "/nowhere", "", False) is None  # 404 is plumber's
    assert routes.plan("POST", "/plain", "x=1&x=2", False).args == [("x", ["1", "2"])]


def test_cookies_and_non_ascii_paths_go_to_r():
    routes = DirectRoutes(ROWS)
    assert routes.plan("GET", "/plain", "", True) is None
    assert routes.plan("GET", "/items/\u0661", "", False) is None


def test_a_remembered_route_still_reads_each_requests_query_and_cookies():
    routes = DirectRoutes(ROWS)
    assert routes.plan("GET", "/items/7", "q=1", False).args == [("q", ["1"])]
    again = routes.plan("GET", "/items/7", "q=2&q=3", False)
    assert (again.index, again.args, again.path_values) == (1, [("q", ["2", "3"])], ("7",))
    assert routes.plan("GET", "/items/7", "", True) is None
    assert routes.plan("GET", "/items/7", "q=%00", False) is None  # plumber fails it: R's to answer
    assert routes.plan("POST", "/items/7", "", False) is None  # the same path, another verb


def test_routes_stay_right_past_the_number_remembered():
    routes = DirectRoutes(ROWS)
    for number in range(10_000):
        call = routes.plan("GET", f"/items/{number}", "", False)
        assert (call.index, call.path_values) == (1, (str(number),))
    assert routes.plan("GET", "/items/abc", "", False) is None
    assert len(routes._routed) <= 4096  # what a worker keeps stays bounded


def test_long_paths_are_routed_but_not_remembered():
    routes = DirectRoutes(ROWS)
    long_number = "7" * 5000
    for _ in range(2):
        call = routes.plan("GET", f"/items/{long_number}", "", False)
        assert (call.index, call.path_values) == (1, (long_number,))
    assert routes._routed == {}


def test_a_path_regex_beyond_plumbers_types_disables_direct_routing():
    rows = [
        *ROWS,
        {
            "verbs": ["GET"],
            "regex": "^/a[bc]+$",
            "params": 0,
            "direct": True,
            "fargs": [],
        },
    ]
    routes = DirectRoutes(rows)
    assert not routes.enabled
    assert routes.plan("GET", "/plain", "", False) is None
