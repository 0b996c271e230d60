"""The annotation parser reads plumber.R files the way plumber 1.2.1 does.

The fast tests pin individual rules; the slow test loads the same files with real plumber
and compares every endpoint's verbs, path, line and parameters.
"""
import json
import subprocess
from pathlib import Path

import pytest

from plumbline.annotations import AnnotationError, parse_file, parse_source
from plumbline.endpoints import PathTemplate
from support import EXAMPLE, REPO as ROOT

FIXTURE = ROOT / "tests/fixtures/annotated/plumber.R"


def test_example_app_endpoints():
    api = parse_file(EXAMPLE)
    got = [(ep.verbs, ep.path.raw, ep.serializer.name if ep.serializer else None)
           for ep in api.endpoints]
    assert got == [
        (("GET",), "/parity", "text"),
        (("GET",), "/wait", "json"),
        (("POST",), "/fail", None),
        (("POST",), "/quit", None),
        (("GET",), "/health", "text"),
    ]
    parity = api.endpoints[0]
    assert parity.params[0].name == "int" and parity.params[0].description == "Integer to test for parity"
    assert parity.summary == "Determine if an integer is odd or even"
    assert [(f.name, f.default) for f in parity.formals] == [("int", None)]


def test_fixture_annotations():
    api = parse_file(FIXTURE)
    assert (api.info.title, api.info.version) == ("Annotated fixture", "2.1.0")
    assert [f.name for f in api.filters] == ["logger"]
    assert [(a.directory, a.mount) for a in api.assets] == [("./static", "/files")]
    echo = [ep for ep in api.endpoints if ep.path.raw == "/echo"]
    assert [ep.verbs for ep in echo] == [("GET",), ("POST",)]
    msg, times = echo[0].params
    assert (msg.name, msg.type, msg.required, msg.is_array) == ("msg", "string", True, False)
    assert (times.name, times.type, times.required, times.is_array) == ("times", "integer", False, True)
    assert echo[0].tags == ("echo", "two words")
    assert echo[0].responses == {"200": "The echoed message"}
    assert echo[0].summary == "Echo a message back"
    legacy = next(ep for ep in api.endpoints if ep.path.raw == "/legacy")
    assert legacy.serializer.name == "json" and legacy.serializer.args == "list(auto_unbox = TRUE)"
    assert legacy.preempt == "logger"
    blob = next(ep for ep in api.endpoints if ep.path.raw.startswith("/blob"))
    assert blob.parsers == ("octet",)
    assert blob.serializer.args == 'list(type = "application/octet-stream")'
    anyverb = next(ep for ep in api.endpoints if ep.path.raw == "/everything")
    assert set(anyverb.verbs) == {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}


@pytest.mark.parametrize("template,path,expected", [
    ("/users/<id:int>/score/<x:double>", "/users/12/score/-1.5", {"id": "12", "x": "-1.5"}),
    ("/users/<id:int>/score/<x:double>", "/users/abc/score/1", None),
    ("/flag/<flag:bool>/<name>", "/flag/TRUE/bob", {"flag": "TRUE", "name": "bob"}),
    ("/flag/<flag:bool>/<name>", "/flag/maybe/bob", None),
    ("/blob/<ids:[int]>", "/blob/1,2,3", {"ids": "1,2,3"}),
    ("/a.b", "/aXb", {}),  # plumber does not escape a path's literal parts
    ("/a.b", "/a.bc", None),
])
def test_path_templates_match_like_plumber(template, path, expected):
    assert PathTemplate.parse(template).match(path) == expected


def test_path_template_helpers():
    t = PathTemplate.parse("/users/<id:int>/score/<x:double>")
    assert t.openapi_path == "/users/{id}/score/{x}"
    assert t.static_prefix == "/users/"
    assert [p.type for p in t.params] == ["integer", "number"]


def test_routing_reports_allowed_verbs():
    api = parse_file(EXAMPLE)
    ep, _, _ = api.find("GET", "/parity")
    assert ep.path.raw == "/parity"
    ep, _, allowed = api.find("POST", "/parity")
    assert ep is None and allowed == {"GET"}
    assert api.find("GET", "/nope") == (None, {}, set())


@pytest.mark.parametrize("source,message", [
    ("#* @get\nfunction() 1\n", "No path specified"),
    ("#* @serializer nope\n#* @get /x\nfunction() 1\n", "No such @serializer registered: nope"),
    ("#* @parser nope\n#* @get /x\nfunction() 1\n", "No such @parser registered: nope"),
    ("#* @filter a\n#* @get /x\nfunction() 1\n", "can only be a filter"),
])
def test_invalid_annotations_name_the_line(source, message):
    with pytest.raises(AnnotationError) as err:
        parse_source(source, "api.R")
    assert message in str(err.value) and "api.R:" in str(err.value)


def test_code_inside_functions_is_not_an_endpoint():
    source = "f <- function() {\n  #* @get /inner\n  1\n}\n#* @get /outer\nfunction() 2\n"
    assert [ep.path.raw for ep in parse_source(source).endpoints] == ["/outer"]


_DUMP_R = r"""
suppressMessages(library(plumber))
pr <- plumber::pr(commandArgs(TRUE)[1])
out <- list()
for (group in names(pr$endpoints)) for (ep in pr$endpoints[[group]]) {
  params <- lapply(names(ep$params), function(n) {
    p <- ep$params[[n]]
    list(name = n, type = p$type, required = p$required, isArray = p$isArray)
  })
  out[[length(out) + 1]] <- list(verbs = as.list(ep$verbs), path = ep$path,
                                 line = ep$lines[1], params = params)
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE))
"""


def _plumber_examples():
    out = subprocess.run(["Rscript", "-e", 'cat(system.file("plumber", package="plumber"))'],
                         capture_output=True, text=True, check=True).stdout
    files = sorted(Path(out).glob("*/plumber.R"))
    return files + [EXAMPLE, FIXTURE]


def test_router_blocks_are_found_with_their_lines():
    api = parse_source('#* @get /a\nfunction() 1\n\n#* @plumber\nfunction(pr) pr\n'
                       "#' @plumber\nfunction(pr) pr\n# @plumber is only a comment here\n")
    assert api.router_blocks == (4, 6)
    assert parse_file(EXAMPLE).router_blocks == ()


@pytest.mark.slow
def test_endpoints_agree_with_real_plumber(tmp_path):
    script = tmp_path / "dump.R"
    script.write_text(_DUMP_R)
    for plumber_r in _plumber_examples():
        run = subprocess.run(["Rscript", str(script), plumber_r.name], cwd=plumber_r.parent,
                             capture_output=True, text=True, timeout=120)
        if "there is no package called" in run.stderr:
            continue  # e.g. 14-future needs `coro`, which Debian does not package
        assert run.returncode == 0, (plumber_r, run.stderr)
        theirs = json.loads(run.stdout)
        ours = [{"verbs": list(ep.verbs), "path": ep.path.raw, "line": ep.line,
                 "params": [{"name": p.name, "type": p.type, "required": p.required,
                             "isArray": p.is_array} for p in ep.params]}
                for ep in parse_file(plumber_r).endpoints]
        key = lambda e: (e["line"], e["path"], e["verbs"])  # noqa: E731
        for e in theirs:
            e["verbs"] = sorted(e["verbs"]) if len(e["verbs"]) > 1 else e["verbs"]
        for e in ours:
            e["verbs"] = sorted(e["verbs"]) if len(e["verbs"]) > 1 else e["verbs"]
        assert sorted(ours, key=key) == sorted(theirs, key=key), plumber_r


def test_api_info_continues_over_following_lines_like_plumber():
    source = ("#* @apiTitle Cars\n#* @apiDescription Manage the inventory of an automobile\n"
              "#*   store using an API.\n#* @apiVersion 1.0\n\n#* @get /x\nfunction() 1\n")
    info = parse_source(source).info
    assert info.description == "Manage the inventory of an automobile store using an API."
    assert (info.title, info.version) == ("Cars", "1.0")
