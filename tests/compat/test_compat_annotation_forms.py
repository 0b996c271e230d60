"""Every annotation form plumber 1.2.1 accepts (tests/compat/apps/annotation-forms/plumber.R):
comment markers and spacing, paths without a leading slash, typed and untyped path
parameters (an untyped one typed by its argument's default), several verbs on one function,
serializers with arguments, shorthand serializers, @param/@response/@tag variants, @parser
restrictions. The file has no filter and no @plumber block, so plumbline answers 404 and 405
itself: its router must pick what plumber's picks, request by request."""
from __future__ import annotations

import httpx
import pytest

from compat_harness import APPS
from test_compat_plumber_examples import assert_405

pytestmark = pytest.mark.slow
APP = APPS / "annotation-forms"  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.mark.parametrize("path", [
    "/nospace", "/tick-nospace", "/tick", "/wide", "/items", "/", "/described", "/trailing/",
    "/assigned", "/tabs", "/upper-case-verb",
])
def test_marker_and_spacing_forms(pair, path):
    pair.compare("GET", path)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_several_verbs_on_one_function(pair, method):
    pair.compare(method, "/multi")


def compare_head(pair, path: str) -> None:
    # httpuv writes a body after its HEAD answer, which would spoil a kept-alive connection:
    # one fresh connection per request.
    plumber, plumbline = (httpx.head(server.url + path, headers={"Connection": "close"})
                          for server in (pair.plumber, pair.plumbline))
    assert plumber.status_code == plumbline.status_code, (plumber, plumbline)
    assert plumber.headers.get("content-type") == plumbline.headers.get("content-type")
    assert plumbline.content == b""


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_use_answers_every_verb(pair, method):
    pair.compare(method, "/any")


@pytest.mark.parametrize("path", ["/any", "/head-only", "/nospace", "/nope"])
def test_head(pair, path):
    compare_head(pair, path)


@pytest.mark.parametrize("method, path", [
    ("DELETE", "/gone"), ("PATCH", "/patched"), ("OPTIONS", "/opts"),
])
def test_single_verbs(pair, method, path):
    pair.compare(method, path)


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/multi", "GET, POST, PUT"),
    ("GET", "/gone", "DELETE"),
    ("POST", "/items", "GET"),
    ("GET", "/head-only", "HEAD"),
])
def test_wrong_verb(pair, method, path, allowed):
    assert_405(pair.send(method, path), allowed)


@pytest.mark.parametrize("path", [
    "/untyped/abc", "/untyped/12", "/typed/12", "/typed/-3", "/typed/abc", "/typed/1.5",
    "/number/1.5", "/number/-.5", "/number/abc", "/numeric/2", "/flag/TRUE", "/flag/f",
    "/flag/1", "/flag/maybe", "/logical/false", "/chr/x", "/many/1,2,3", "/many/1,x",
    "/unknown-type/zz", "/by-default/7", "/by-default/seven", "/by-default-double/2.5",
    "/by-default-double/x", "/two/1/and/b", "/two/x/and/b", "/dotted/yes",
])
def test_path_parameters(pair, path):
    pair.compare("GET", path)


@pytest.mark.parametrize("path", ["/a.b", "/aXb", "/a.bc", "/trailing", "/items/", "/nospace/"])
def test_literal_paths_match_as_plumber_matches_them(pair, path):
    pair.compare("GET", path)


def test_first_endpoint_in_file_order_wins(pair):
    ex = pair.compare("GET", "/first-wins")
    assert ex.plumbline.content == b'["first"]'
    ex = pair.compare("GET", "/shadow/42")
    assert ex.plumbline.content == b'["dynamic first"]'


@pytest.mark.parametrize("path", [
    "/json-args", "/unboxed", "/content-type", "/text", "/html", "/print", "/format",
    "/csv-args", "/short-json", "/short-html",
])
def test_serializers_with_arguments_and_shorthands(pair, path):
    pair.compare("GET", path)


@pytest.mark.parametrize("query", ["", "?x=1", "?x=1&y=2&y=3&z=q&flag=TRUE"])
def test_documented_parameters(pair, query):
    pair.compare("GET", "/documented" + query)


@pytest.mark.parametrize("path, kwargs", [
    ("/json-only", {"content": b'{"a": [1, 2]}', "headers": {"content-type": "application/json"}}),
    ("/json-only", {"content": b"plain", "headers": {"content-type": "text/plain"}}),
    ("/text-or-octet", {"content": b"plain", "headers": {"content-type": "text/plain"}}),
    ("/text-or-octet", {"content": bytes(range(4)),
                        "headers": {"content-type": "application/octet-stream"}}),
    ("/text-or-octet", {"content": b'{"a": 1}', "headers": {"content-type": "application/json"}}),
    ("/form-only", {"data": {"a": "1"}}),
    ("/form-only", {"content": b'{"a": 1}', "headers": {"content-type": "application/json"}}),
    ("/echo-args", {"content": b'{"a": 1, "b": [true]}',
                    "headers": {"content-type": "application/json"}}),
    ("/echo-args?q=1", {"data": {"f": "2"}}),
])
def test_parsers(pair, path, kwargs):
    pair.compare("POST", path, **kwargs)


@pytest.mark.parametrize("path", ["/nope", "/typed/", "/many/", "/two/1/and", "/described/x"])
def test_unknown_paths(pair, path):
    pair.compare("GET", path)
