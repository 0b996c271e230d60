"""Router gives plumber's answer (PlumberFile.find) with its per-path index."""

from __future__ import annotations

from pathlib import Path

import pytest

from plumbline.annotations import parse_file, parse_source
from plumbline.endpoints import VERBS
from plumbline.runtime.front.routing import UNMATCHED, Router, r_sees_everything

REPO = Path(__file__).resolve().parents[2]
ORDERED = """\
#* @get /users/<id:int>
function(id) "dynamic first"

#* @get /users/42
function() "static, shadowed by the dynamic one above"

#* @post /users/42
function() "static post"

#* @get /files/<name>
function(name) name
"""

PATHS = (
    "/",
    "/users/42",
    "/users/7",
    "/users/x",
    "/users/42/",
    "/files/a.txt",
    "/files/",
    "/echo",
    "/users/1/score/2.5",
    "/flag/true/bob",
    "/flag/maybe/bob",
    "/blob/1,2,3",
    "/legacy",
    "/items",
    "/everything",
    "/ping",
    "/parity",
    "/wait",
    "/health",
    "/nope",
)


@pytest.mark.parametrize(
    "spec",
    [
        parse_source(ORDERED),
        parse_file(REPO / "tests" / "fixtures" / "annotated" / "plumber.R"),
        parse_file(REPO / "examples" / "plumber-on-k8s" / "plumber.R"),
    ],
    ids=["ordered", "annotated", "example"],
)
def test_router_agrees_with_plumberfile_find(spec):
    router = Router(spec)
    for path in PATHS:
        for verb in VERBS:
            endpoint, _, allowed = spec.find(verb, path)
            match = router.match(verb, path)
            assert match.endpoint is endpoint, (verb, path)
            if match.assets is not None:  # not an endpoint's path: a static folder's
                assert endpoint is None and path.startswith(match.assets.mount + "/")
                continue
            assert match.allowed == (frozenset() if endpoint else frozenset(allowed))
            assert match.route == (endpoint.route if endpoint else UNMATCHED)


def test_file_order_wins_over_static_paths():
    router = Router(parse_source(ORDERED))
    assert router.match("GET", "/users/42").route == "/users/<id:int>"
    assert router.match("POST", "/users/42").route == "/users/42"
    assert router.match("DELETE", "/users/42").allowed == {"GET", "POST"}


def test_r_answers_unrouted_requests_when_filters_or_a_plumber_block_exist(tmp_path):
    plain = tmp_path / "plain.R"
    plain.write_text("#* @get /a\nfunction() 1\n")
    assert not r_sees_everything(parse_file(plain))
    block = tmp_path / "block.R"
    block.write_text(
        "#* @get /a\nfunction() 1\n\n#* @plumber\nfunction(pr) {\n"
        "  pr_get(pr, '/added', function() 2)\n}\n"
    )
    assert r_sees_everything(parse_file(block))
    options = tmp_path / "options.R"
    options.write_text("options(plumber.trailingSlash = TRUE)\n#* @get /a/\nfunction() 1\n")
    assert r_sees_everything(parse_file(options))
    assert r_sees_everything(parse_file(REPO / "tests" / "fixtures" / "annotated" / "plumber.R"))
    assert not r_sees_everything(parse_file(REPO / "examples" / "plumber-on-k8s" / "plumber.R"))
