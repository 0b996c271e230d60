"""plumber's route report read into a PlumberFile, and the runtime Router walking it as
plumber's Plumber$route() does (endpoints, then mounts in order, prefixes stripped). Fast: the
reports are written out here in the JSON shape route_report.R produces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plumbline import routes
from plumbline.runtime.front import openapi
from plumbline.runtime.front.routing import UNMATCHED, Router, r_sees_everything


def endpoint(path: str, regex: str, verbs=("GET",), path_params=(), **extra) -> dict:
    return {
        "verbs": list(verbs),
        "path": path,
        "regex": regex,
        "path_params": list(path_params),
        "preempt": None,
        "serializer": {"name": None, "content_type": "application/json", "own": True},
        "parsers": None,
        "line": None,
        "in_code": True,
        "summary": "",
        "description": "",
        "tags": [],
        "responses": [],
        "params": [],
        "formals": [],
        **extra,
    }


def router(endpoints=(), mounts=(), **extra) -> dict:
    return {
        "kind": "router",
        "file": "/app/plumber.R",
        "endpoints": list(endpoints),
        "filters": [{"name": "queryString", "default": True, "line": None}],
        "mounts": list(mounts),
        "hooks": [],
        "custom_404": False,
        "custom_error": False,
        "default_serializer": "application/json",
        "default_parsers": ["json"],
        **extra,
    }


def report(top: dict, **extra) -> dict:
    return {
        "format": 1,
        "file": "/app/plumber.R",
        "info": [],
        "tags": [],
        "options": {"trailing_slash": False, "method_not_allowed": True, "shared_secret": False},
        "debug": False,
        "router": top,
        "openapi": None,
        **extra,
    }


ID = {"name": "id", "type": "integer", "is_array": False}
TREE = report(
    router(
        [
            endpoint("/files/upload", "^/files/upload$", verbs=("POST",)),
            endpoint("/users/<id:int>", "^/users/(-?\\d+)$", path_params=[ID]),
        ],
        [
            {"prefix": "/files/", "router": {"kind": "static", "directory": "./files"}},
            {"prefix": "/a/", "router": router([endpoint("/x", "^/x$")])},
            {"prefix": "/a/b/", "router": router([endpoint("/y", "^/y$")])},
            {
                "prefix": "/sub/",
                "router": router(
                    [
                        endpoint("/items/<id:int>", "^/items/(-?\\d+)$", path_params=[ID]),
                        endpoint("/", "^/$", verbs=("POST",)),
                    ],
                    [{"prefix": "/deep/", "router": router([endpoint("/leaf", "^/leaf$")])}],
                ),
            },
        ],
    )
)


@pytest.fixture
def table(tmp_path):
    plumber_r = tmp_path / "plumber.R"
    plumber_r.write_text("#* @plumber\nfunction(pr) pr\n")
    return routes.from_report(json.dumps(TREE), plumber_r)


def test_mounted_routes_get_their_full_paths(table):
    assert [ep.route for ep in table.endpoints] == [
        "/files/upload",
        "/users/<id:int>",
        "/a/x",
        "/a/b/y",
        "/sub/items/<id:int>",
        "/sub/",
        "/sub/deep/leaf",
    ]
    leaf = table.endpoints[-1]
    assert leaf.path.match("/sub/deep/leaf") == {} and leaf.own_path.raw == "/leaf"
    assert table.endpoints[4].path.openapi_path == "/sub/items/{id}"
    assert [(a.directory, a.mount) for a in table.assets] == [("./files", "/files")]
    assert table.source == "plumber" and table.router_blocks == (1,)


@pytest.mark.parametrize(
    "method, path, route",
    [
        ("GET", "/users/3", "/users/<id:int>"),
        ("GET", "/sub/items/3", "/sub/items/<id:int>"),
        ("POST", "/sub/", "/sub/"),
        ("GET", "/sub/deep/leaf", "/sub/deep/leaf"),
        ("GET", "/a/x", "/a/x"),
        ("POST", "/files/upload", "/files/upload"),  # an endpoint before the mounts
        ("GET", "/files/upload", "/files"),  # its path, but not its verb: the folder's
        ("GET", "/files/a/b.txt", "/files"),
    ],
)
def test_router_walks_endpoints_then_mounts(table, method, path, route):
    assert Router(table).match(method, path).route == route


def test_the_first_mount_whose_prefix_matches_answers(table):
    # "/a/" was mounted before "/a/b/": plumber hands /a/b/y to the first, which has no /b/y
    match = Router(table).match("GET", "/a/b/y")
    assert match.endpoint is None and match.in_r


def test_a_static_mount_gets_the_rest_of_the_path(table):
    match = Router(table).match("GET", "/files/sub/x.txt")
    assert match.assets == table.assets[0] and match.rest == "sub/x.txt"
    assert Router(table).match("GET", "/files").assets is None  # only "<mount>/..." paths


@pytest.mark.parametrize("path", ["/sub/items/x", "/sub/nope", "/sub/deep/nope"])
def test_what_a_mounted_router_does_not_match_is_its_to_answer(table, path):
    match = Router(table).match("GET", path)
    assert match.in_r and match.route == UNMATCHED


def test_unmatched_paths_outside_mounts_are_404_or_405(table):
    router = Router(table)
    assert (
        router.match("GET", "/sub").allowed == frozenset() and not router.match("GET", "/sub").in_r
    )
    assert router.match("DELETE", "/users/3").allowed == {"GET"}


def _plain_file(tmp_path: Path, top: dict, **extra):
    plumber_r = tmp_path / "plumber.R"
    plumber_r.write_text("#* @get /a\nfunction() 1\n")
    return routes.from_report(report(top, **extra), plumber_r)


def test_plain_router_is_answered_in_python(tmp_path):
    assert not r_sees_everything(_plain_file(tmp_path, router([endpoint("/a", "^/a$")])))


@pytest.mark.parametrize(
    "change",
    [
        {"hooks": ["preroute"]},
        {"custom_404": True},
        {"custom_error": True},
        {"filters": [{"name": "auth", "default": False, "line": 3}]},
    ],
)
def test_r_code_that_may_answer_sends_unmatched_requests_to_r(tmp_path, change):
    top = router([endpoint("/a", "^/a$")], **change)
    assert r_sees_everything(_plain_file(tmp_path, top))


def test_exit_hooks_change_no_answer(tmp_path):
    top = router([endpoint("/a", "^/a$")], hooks=["exit"])
    assert not r_sees_everything(_plain_file(tmp_path, top))


@pytest.mark.parametrize(
    "options",
    [
        {"trailing_slash": True, "method_not_allowed": True, "shared_secret": False},
        {"trailing_slash": False, "method_not_allowed": False, "shared_secret": False},
        {"trailing_slash": False, "method_not_allowed": True, "shared_secret": True},
    ],
)
def test_options_that_change_plumbers_answers(tmp_path, options):
    table = _plain_file(tmp_path, router([endpoint("/a", "^/a$")]), options=options)
    assert r_sees_everything(table)


def test_a_regex_python_cannot_run_is_left_to_r(tmp_path):
    # ICU's named group; Python 3.11 spells it (?P<name>...)
    table = _plain_file(
        tmp_path, router([endpoint("/a(?<n>x)", "^/a(?<n>x)$"), endpoint("/b", "^/b$")])
    )
    assert table.endpoints[0].path.regex is None
    assert r_sees_everything(table)
    assert Router(table).match("GET", "/b").route == "/b"
    assert Router(table).match("GET", "/ax").route == UNMATCHED


def test_customised_spec_is_served_as_plumber_wrote_it(tmp_path):
    custom = '{"servers":[{"url":""}],"openapi":"3.0.3","info":{"title":"Mine"},"paths":{}}'
    table = _plain_file(tmp_path, router([endpoint("/a", "^/a$")]), openapi=custom)
    assert openapi.render(table) == custom.encode()


def test_api_info_and_tags_from_the_report(tmp_path):
    table = _plain_file(
        tmp_path,
        router([endpoint("/a", "^/a$")]),
        info={"title": "T", "version": "2", "license": {"name": "MIT"}},
        tags=[{"name": "pets", "description": "Pets"}],
    )
    doc = openapi.build(table)
    assert doc["info"] == {
        "title": "T",
        "description": "API Description",
        "version": "2",
        "license": {"name": "MIT"},
    }
    assert doc["tags"] == [{"name": "pets", "description": "Pets"}]


def test_endpoint_details_from_the_report(tmp_path):
    detailed = endpoint(
        "/search",
        "^/search$",
        line=12,
        in_code=False,
        serializer={"name": "csv", "content_type": "text/csv; charset=UTF-8", "own": True},
        parsers=["json", "form"],
        summary="Find",
        tags=["t"],
        responses={"404": "none"},
        params=[
            {
                "name": "q",
                "type": "string",
                "is_array": False,
                "required": True,
                "description": "query",
            }
        ],
        formals=[
            {
                "name": "q",
                "type": "string",
                "is_array": False,
                "required": True,
                "has_default": False,
                "default": None,
            },
            {
                "name": "n",
                "type": "integer",
                "is_array": False,
                "required": False,
                "has_default": True,
                "default": 10,
            },
        ],
    )
    ep = _plain_file(tmp_path, router([detailed])).endpoints[0]
    assert (ep.line, ep.in_code, ep.serializer.name, ep.parsers) == (
        12,
        False,
        "csv",
        ("json", "form"),
    )
    assert (ep.summary, ep.tags, ep.responses) == ("Find", ("t",), {"404": "none"})
    op = openapi.build(_plain_file(tmp_path, router([detailed])))["paths"]["/search"]["get"]
    assert "text/csv" in op["responses"]["200"]["content"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["q"]["required"] is True and params["q"]["description"] == "query"
    assert params["n"]["schema"] == {"type": "integer", "format": "int64", "default": 10}


def test_unknown_report_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="format"):
        routes.from_report({**TREE, "format": 99}, tmp_path / "plumber.R")


# The app's own code records the JIT level it is loaded with and the R_ENABLE_JIT it sees,
# in the path of a route it adds.
RECORDS_JIT = """
#* @plumber
function(pr) {
  seen <- paste0("/jit-", compiler::enableJIT(-1), "/env-", Sys.getenv("R_ENABLE_JIT", "unset"))
  plumber::pr_get(pr, seen, function() "ok")
}
"""


@pytest.mark.slow
@pytest.mark.parametrize("given, seen", [(None, "unset"), ("2", "2"), ("", "")])
def test_the_report_loads_the_app_with_rs_jit_off_and_the_variable_as_given(
    tmp_path, monkeypatch, given, seen
):
    plumber_r = tmp_path / "plumber.R"
    plumber_r.write_text(RECORDS_JIT)
    if given is None:
        monkeypatch.delenv("R_ENABLE_JIT", raising=False)
    else:
        monkeypatch.setenv("R_ENABLE_JIT", given)
    table = routes.query(plumber_r)
    assert [ep.route for ep in table.endpoints] == [f"/jit-0/env-{seen}"]
