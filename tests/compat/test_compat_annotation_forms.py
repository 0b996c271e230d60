"""Every annotation form plumber 1.2.1 accepts (tests/compat/apps/annotation-forms/plumber.R):
comment markers and spacing, paths without a leading slash, typed and untyped path
parameters (an untyped one typed by its argument's default), several verbs on one function,
serializers with arguments, shorthand serializers, @param/@response/@tag variants, @parser
restrictions. The file has no filter and no @plumber block, so plumbline answers 404 and 405
itself: its router must pick what plumber's picks, request by request."""

from __future__ import annotations

import pytest

from compat_harness import APPS, assert_same, deliberate
from test_compat_plumber_examples import assert_405

pytestmark = pytest.mark.slow
APP = APPS / "annotation-forms"  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.mark.parametrize(
    "path",
    [
        "/nospace",
        "/tick-nospace",
        "/tick",
        "/wide",
        "/items",
        "/",
        "/described",
        "/trailing/",
        "/assigned",
        "/tabs",
    ],
)
def test_marker_and_spacing_forms(pair, path):
    pair.compare("GET", path, status=200)


def test_an_upper_case_verb_is_no_annotation(pair):
    pair.compare("GET", "/upper-case-verb", status=404)  # plumber reads `@GET` as nothing


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_several_verbs_on_one_function(pair, method):
    pair.compare(method, "/multi", status=200)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_use_answers_every_verb(pair, method):
    pair.compare(method, "/any", status=200)


# Each request has a connection of its own (compat_wire): the body httpuv writes after a
# HEAD answer spoils nothing. plumber does not map HEAD to GET: GET-only paths are 405.
@pytest.mark.parametrize("path, status", [("/any", 200), ("/head-only", 200), ("/nope", 404)])
def test_head(pair, path, status):
    ex = pair.compare("HEAD", path, status=status)
    assert ex.plumbline.content == b""


def test_head_on_a_get_only_path(pair):
    ex = pair.send("HEAD", "/nospace")
    assert ex.plumber.status_code == ex.plumbline.status_code == 405, ex.describe()
    assert ex.plumber.headers["allow"] == ""
    deliberate("405 Allow header filled")
    assert ex.plumbline.headers["allow"] == "GET", ex.describe()
    assert_same(ex, masks={"allow": lambda _: "(compared above)"})


@pytest.mark.parametrize(
    "method, path",
    [
        ("DELETE", "/gone"),
        ("PATCH", "/patched"),
        ("OPTIONS", "/opts"),
    ],
)
def test_single_verbs(pair, method, path):
    pair.compare(method, path, status=200)


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("DELETE", "/multi", "GET, POST, PUT"),
        ("GET", "/gone", "DELETE"),
        ("POST", "/items", "GET"),
        ("GET", "/head-only", "HEAD"),
    ],
)
def test_wrong_verb(pair, method, path, allowed):
    assert_405(pair.send(method, path), allowed)


# A segment its type does not match is no route (404), as in plumber's router.
@pytest.mark.parametrize(
    "path, status",
    [
        ("/untyped/abc", 200),
        ("/untyped/12", 200),
        ("/typed/12", 200),
        ("/typed/-3", 200),
        ("/typed/abc", 404),
        ("/typed/1.5", 404),
        ("/number/1.5", 200),
        ("/number/-.5", 200),
        ("/number/abc", 404),
        ("/numeric/2", 200),
        ("/flag/TRUE", 200),
        ("/flag/f", 200),
        ("/flag/1", 200),
        ("/flag/maybe", 404),
        ("/logical/false", 200),
        ("/chr/x", 200),
        ("/many/1,2,3", 200),
        ("/many/1,x", 404),
        ("/unknown-type/zz", 200),
        ("/by-default/7", 200),
        ("/by-default/seven", 404),
        ("/by-default-double/2.5", 200),
        ("/by-default-double/x", 404),
        ("/two/1/and/b", 200),
        ("/two/x/and/b", 404),
        ("/dotted/yes", 200),
    ],
)
def test_path_parameters(pair, path, status):
    pair.compare("GET", path, status=status)


# A literal path is a regex to plumber: `.` matches any character, the match is whole.
@pytest.mark.parametrize(
    "path, status",
    [
        ("/a.b", 200),
        ("/aXb", 200),
        ("/a.bc", 404),
        ("/trailing", 404),
        ("/items/", 404),
        ("/nospace/", 404),
    ],
)
def test_literal_paths_match_as_plumber_matches_them(pair, path, status):
    pair.compare("GET", path, status=status)


def test_first_endpoint_in_file_order_wins(pair):
    ex = pair.compare("GET", "/first-wins", status=200)
    assert ex.plumbline.content == b'["first"]'
    ex = pair.compare("GET", "/shadow/42", status=200)
    assert ex.plumbline.content == b'["dynamic first"]'


@pytest.mark.parametrize(
    "path",
    [
        "/json-args",
        "/unboxed",
        "/content-type",
        "/text",
        "/html",
        "/print",
        "/format",
        "/csv-args",
        "/short-json",
        "/short-html",
    ],
)
def test_serializers_with_arguments_and_shorthands(pair, path):
    pair.compare("GET", path, status=200)


# Without x (no default) the function errors: 500.
@pytest.mark.parametrize(
    "query, status", [("", 500), ("?x=1", 200), ("?x=1&y=2&y=3&z=q&flag=TRUE", 200)]
)
def test_documented_parameters(pair, query, status):
    pair.compare("GET", "/documented" + query, status=status)


@pytest.mark.parametrize(
    "path, kwargs",
    [
        (
            "/json-only",
            {"content": b'{"a": [1, 2]}', "headers": {"content-type": "application/json"}},
        ),
        ("/json-only", {"content": b"plain", "headers": {"content-type": "text/plain"}}),
        ("/text-or-octet", {"content": b"plain", "headers": {"content-type": "text/plain"}}),
        (
            "/text-or-octet",
            {"content": bytes(range(4)), "headers": {"content-type": "application/octet-stream"}},
        ),
        (
            "/text-or-octet",
            {"content": b'{"a": 1}', "headers": {"content-type": "application/json"}},
        ),
        ("/form-only", {"data": {"a": "1"}}),
        ("/form-only", {"content": b'{"a": 1}', "headers": {"content-type": "application/json"}}),
    ],
)
def test_parsers(pair, path, kwargs):
    pair.compare("POST", path, status=200, **kwargs)


# `function(...) list(...)`: the dots also receive req and res, environments JSON cannot
# hold, so plumber's serializer fails (500) whatever the body; plumbline's must too.
@pytest.mark.parametrize(
    "path, kwargs",
    [
        (
            "/echo-args",
            {"content": b'{"a": 1, "b": [true]}', "headers": {"content-type": "application/json"}},
        ),
        ("/echo-args?q=1", {"data": {"f": "2"}}),
    ],
)
def test_dots_receive_req_and_res(pair, path, kwargs):
    pair.compare("POST", path, status=500, **kwargs)


@pytest.mark.parametrize("path", ["/nope", "/typed/", "/many/", "/two/1/and", "/described/x"])
def test_unknown_paths(pair, path):
    pair.compare("GET", path, status=404)
