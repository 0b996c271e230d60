"""The annotation parser reads plumber.R files the way plumber 1.2.1 does.

The fast tests pin individual rules; the slow test loads every plumber.R of the repository
and every example shipped with plumber with real plumber, and compares its router with what
the parser reads.
"""

import functools
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from plumbline import routes
from plumbline.annotations import AnnotationError, parse_file, parse_source
from plumbline.endpoints import PathTemplate
from support import EXAMPLE, REPO as ROOT

FIXTURE = ROOT / "tests/fixtures/annotated/plumber.R"


def test_example_app_endpoints():
    api = parse_file(EXAMPLE)
    got = [
        (ep.verbs, ep.path.raw, ep.serializer.name if ep.serializer else None)
        for ep in api.endpoints
    ]
    assert got == [
        (("GET",), "/parity", "text"),
        (("GET",), "/wait", "json"),
        (("POST",), "/fail", None),
        (("POST",), "/quit", None),
        (("GET",), "/health", "text"),
    ]
    parity = api.endpoints[0]
    assert (
        parity.params[0].name == "int"
        and parity.params[0].description == "Integer to test for parity"
    )
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
    assert (times.name, times.type, times.required, times.is_array) == (
        "times",
        "integer",
        False,
        True,
    )
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


@pytest.mark.parametrize(
    "template,path,expected",
    [
        ("/users/<id:int>/score/<x:double>", "/users/12/score/-1.5", {"id": "12", "x": "-1.5"}),
        ("/users/<id:int>/score/<x:double>", "/users/abc/score/1", None),
        ("/flag/<flag:bool>/<name>", "/flag/TRUE/bob", {"flag": "TRUE", "name": "bob"}),
        ("/flag/<flag:bool>/<name>", "/flag/maybe/bob", None),
        ("/blob/<ids:[int]>", "/blob/1,2,3", {"ids": "1,2,3"}),
        ("/a.b", "/aXb", {}),  # plumber does not escape a path's literal parts
        ("/a.b", "/a.bc", None),
    ],
)
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


@pytest.mark.parametrize(
    "source,message",
    [
        ("#* @get\nfunction() 1\n", "No path specified"),
        ("#* @serializer nope\n#* @get /x\nfunction() 1\n", "No such @serializer registered: nope"),
        ("#* @parser nope\n#* @get /x\nfunction() 1\n", "No such @parser registered: nope"),
        ("#* @filter a\n#* @get /x\nfunction() 1\n", "can only be a filter"),
    ],
)
def test_invalid_annotations_name_the_line(source, message):
    with pytest.raises(AnnotationError) as err:
        parse_source(source, "api.R")
    assert message in str(err.value) and "api.R:" in str(err.value)


def test_code_inside_functions_is_not_an_endpoint():
    source = "f <- function() {\n  #* @get /inner\n  1\n}\n#* @get /outer\nfunction() 2\n"
    assert [ep.path.raw for ep in parse_source(source).endpoints] == ["/outer"]


# The files of the examples plumber 1.2.1 ships (system.file("plumber", package = "plumber")),
# all their .R files but the entrypoint.R files (which build a router in code and serve it)
# and 14-future's test-future.R (a client script). test_every_shipped_example_is_compared
# checks this list against the installed examples, so none is silently left out.
PLUMBER_EXAMPLE_FILES = (
    "01-append/plumber.R",
    "02-filters/plumber.R",
    "03-github/plumber.R",
    "04-mean-sum/plumber.R",
    "05-static/plumber.R",
    "06-sessions/plumber.R",
    "07-mailgun/plumber.R",
    "08-identity/plumber.R",
    "09-content-type/plumber.R",
    "10-welcome/plumber.R",
    "11-car-inventory/plumber.R",
    "12-entrypoint/myplumberapi.R",
    "12-entrypoint/using_plumber_tag.R",
    "13-promises/plumber.R",
    "14-future/plumber.R",
    "16-attachment/plumber.R",
    "17-arguments/plumber.R",
)
# Repository files plumber itself refuses to load, on purpose, and why.
REFUSED_ON_PURPOSE = {
    "tests/runtime/apps/syntax_error/plumber.R": "syntax error",
    "tests/runtime/apps/stop_at_load/plumber.R": "database unreachable",
}


@functools.cache
def _plumber_examples_dir() -> Path:
    out = subprocess.run(
        ["Rscript", "-e", 'cat(system.file("plumber", package="plumber"))'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Path(out)


def _repository_plumber_files() -> list[Path]:
    """Every plumber.R of the repository, and the annotated files the compat apps mount."""
    files = subprocess.run(
        ["git", "ls-files", "*.R"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = [ROOT / f for f in files if f.endswith("plumber.R")]
    return found + [ROOT / "tests/compat/apps/in-code/other.R"]


def _described(ep) -> dict:
    """What both readers must agree on for one annotated endpoint."""
    return {
        "verbs": ep.verbs,
        "path": ep.path.raw,
        "line": ep.line,
        "regex": ep.own_path.regex.pattern if ep.own_path.regex else None,
        "path_params": ep.path.params,
        "serializer": ep.serializer.name if ep.serializer else None,
        "parsers": ep.parsers,
        "preempt": ep.preempt,
        "params": [(p.name, p.type, p.is_array, p.required, p.description) for p in ep.params],
        "formals": [f.name for f in ep.formals if f.name not in ("req", "res", "...")],
        "summary": ep.summary,
        "description": ep.description,
        "tags": ep.tags,
        "responses": ep.responses,
    }


def _assert_readers_agree(plumber_r: Path, theirs) -> None:
    """The annotation reader (the fallback without R) and plumber's own router, reported by
    R: same endpoints in plumber's routing order (verbs, path, line, regex, path parameter
    types, serializer and parser names, preempt, @params, arguments, comments, tags,
    responses), filters, static folders and API info. Where a `#* @plumber` block adds routes
    in code, only what the annotations declare is compared (the rest only R can know)."""
    ours = parse_file(plumber_r)
    in_file = [ep for ep in theirs.endpoints if not ep.in_code and ep.file is None]
    assert [_described(ep) for ep in ours.endpoints] == [_described(ep) for ep in in_file], (
        plumber_r
    )
    filters = [(f.name, f.line) for f in theirs.filters]
    assets = [(a.directory, a.mount) for a in theirs.assets]
    if ours.router_blocks:  # R code may add more
        assert set((f.name, f.line) for f in ours.filters) <= set(filters), plumber_r
        assert set((a.directory, a.mount) for a in ours.assets) <= set(assets), plumber_r
    else:
        assert len(in_file) == len(theirs.endpoints), plumber_r
        assert [(f.name, f.line) for f in ours.filters] == filters, plumber_r
        assert [(a.directory, a.mount) for a in ours.assets] == assets, plumber_r
    assert ours.info == replace(theirs.info, extra={}, tags=()), plumber_r


@pytest.mark.slow
def test_parser_agrees_with_plumbers_router_on_every_repository_file():
    compared = []
    for plumber_r in _repository_plumber_files():
        why = REFUSED_ON_PURPOSE.get(str(plumber_r.relative_to(ROOT)))
        try:
            theirs = routes.query(plumber_r)
        except routes.RouteReportError as exc:
            assert why and why in str(exc), (plumber_r, str(exc))
            continue
        assert why is None, f"{plumber_r} should fail to load ({why}) but loads"
        _assert_readers_agree(plumber_r, theirs)
        compared.append(plumber_r)
    assert len(compared) >= 17, compared


@pytest.mark.slow
def test_every_shipped_example_is_compared():
    root = _plumber_examples_dir()
    installed = sorted(
        str(f.relative_to(root))
        for f in root.glob("*/*.R")
        if f.name != "entrypoint.R" and not f.name.startswith("test-")
    )
    assert installed == list(PLUMBER_EXAMPLE_FILES)


@pytest.mark.slow
@pytest.mark.parametrize("example", PLUMBER_EXAMPLE_FILES)
def test_parser_agrees_with_plumbers_router_on_its_examples(example):
    plumber_r = _plumber_examples_dir() / example
    try:
        theirs = routes.query(plumber_r)
    except routes.RouteReportError as exc:
        missing = re.search(r"there is no package called .([A-Za-z0-9.]+).", str(exc))
        if missing:  # e.g. 14-future attaches coro, which Debian does not package
            pytest.skip(f"{example} needs the R package {missing.group(1)!r}, not installed")
        raise
    _assert_readers_agree(plumber_r, theirs)


def test_router_blocks_are_found_with_their_lines():
    api = parse_source(
        "#* @get /a\nfunction() 1\n\n#* @plumber\nfunction(pr) pr\n"
        "#' @plumber\nfunction(pr) pr\n# @plumber is only a comment here\n"
    )
    assert api.router_blocks == (4, 6)
    assert parse_file(EXAMPLE).router_blocks == ()


def test_api_info_continues_over_following_lines_like_plumber():
    source = (
        "#* @apiTitle Cars\n#* @apiDescription Manage the inventory of an automobile\n"
        "#*   store using an API.\n#* @apiVersion 1.0\n\n#* @get /x\nfunction() 1\n"
    )
    info = parse_source(source).info
    assert info.description == "Manage the inventory of an automobile store using an API."
    assert (info.title, info.version) == ("Cars", "1.0")


def test_forms_plumber_accepts():
    api = parse_source(
        "#*@get /a\nfunction() 1\n\n#'@post b\nfunction() 2\n\n"
        "#*   @put    /c   \nfunction() 3\n\n#* @use /d\nfunction() 4\n"
    )
    assert [(ep.verbs, ep.path.raw) for ep in api.endpoints] == [
        (("GET",), "/a"),
        (("POST",), "/b"),
        (("PUT",), "/c"),
        (("GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"), "/d"),
    ]
    assert api.endpoints[1].path.match("/b") == {}


def test_an_untyped_path_parameter_takes_its_arguments_type():
    api = parse_source(
        "#* @get /n/<n>\nfunction(n = 1L) n\n\n#* @get /x/<x>\n"
        "function(x = c(1.5, 2)) x\n\n#* @get /s/<s>\nfunction(s) s\n"
    )
    (n,), (x,), (s,) = (ep.path.params for ep in api.endpoints)
    assert (n.type, n.is_array) == ("integer", False)
    assert (x.type, x.is_array) == ("number", True)
    assert (s.type, s.is_array) == ("string", False)
    assert api.endpoints[0].path.match("/n/abc") is None


def test_preempting_endpoints_come_first_in_routing_order():
    api = parse_source(
        "#* @filter f\nfunction(req) forward()\n\n#* @get /late\nfunction() 1\n\n"
        "#* @preempt f\n#* @get /early\nfunction() 2\n\n"
        "#* @preempt __first__\n#* @get /first\nfunction() 3\n"
    )
    assert [ep.path.raw for ep in api.endpoints] == ["/first", "/early", "/late"]


@pytest.mark.parametrize(
    "source,message",
    [
        ("#* @getter\nfunction() 1\n", "No path specified"),  # plumber's tags match as prefixes
        ("#* @filters\nfunction() 1\n", "No @filter name specified"),
        ("#* @preempt nope\n#* @get /x\nfunction() 1\n", "does not exist in this Plumber router"),
        ("#* @tag a\n#* @tag a\n#* @get /x\nfunction() 1\n", "Duplicate tag specified"),
        ("#* @preempt a\n#* @preempt b\n#* @get /x\nfunction() 1\n", "Multiple @preempts"),
        ("#* @assets ./a\n#* @assets ./b\nlist()\n", "Multiple @assets"),
        ("#* @plumber\n#* @get /x\nfunction(pr) pr\n", "Plumber object modifier"),
    ],
)
def test_what_plumber_refuses(source, message):
    with pytest.raises(AnnotationError, match=message):
        parse_source(source)


def test_names_the_file_registers_are_left_to_plumber():
    source = (
        'register_serializer("shout", function(...) serializer_text())\n\n'
        "#* @serializer shout\n#* @get /x\nfunction() 1\n"
    )
    assert parse_source(source).endpoints[0].serializer.name == "shout"
    with pytest.raises(AnnotationError) as err:  # a package might register it: R decides
        parse_source("#* @serializer shout\n#* @get /x\nfunction() 1\n")
    assert err.value.r_decides
    with pytest.raises(AnnotationError) as err:
        parse_source("#* @get\nfunction() 1\n")
    assert not err.value.r_decides


def test_a_preempt_after_a_plumber_block_is_left_to_plumber():
    source = (
        "#* @plumber\nfunction(pr) pr_filter(pr, 'code', function() forward())\n\n"
        "#* @preempt code\n#* @get /x\nfunction() 1\n"
    )
    assert parse_source(source).endpoints[0].preempt == "code"
