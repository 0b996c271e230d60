"""Features the shipped examples leave out, on tests/compat/apps/features/plumber.R:
serializers, response statuses and headers set from R, parsers, jsonlite's corner cases,
typed path and query parameters, and errors."""

from __future__ import annotations

import pytest

from compat_harness import APPS, assert_405_with_allow

pytestmark = pytest.mark.slow
APP = APPS / "features"  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.mark.parametrize(
    "path",
    [
        "/csv",
        "/tsv",
        "/html",
        "/json-options",
        "/values",
        "/json-default",
        "/vector",
        "/null",
        "/text-vector",
        "/bytes",
        "/svg",
        "/jpeg",
    ],
)
def test_serializers(pair, path):
    pair.compare("GET", path, status=200)


# (A status R cannot convert, e.g. "abc", makes plumber itself send an invalid status line.)
@pytest.mark.parametrize("code", ["201", "204", "299", "404", "500"])
def test_status_set_by_r(pair, code):
    pair.compare("GET", f"/status?code={code}", status=int(code))


def test_headers_and_cookies_set_by_r(pair):
    ex = pair.compare(
        "GET", "/headers", status=200, present=("x-one", "x-two", "cache-control", "set-cookie")
    )
    assert ex.plumbline.headers["x-two"] == "two words"
    cookies = ex.plumber.headers.get_list("set-cookie")
    assert len(cookies) == 2, ex.describe()
    assert ex.plumbline.headers.get_list("set-cookie") == cookies, ex.describe()


def test_redirect_and_hand_built_response(pair):
    pair.compare("GET", "/redirect", status=302, present=("location",))
    pair.compare("GET", "/raw-response", status=202)


@pytest.mark.parametrize(
    "path, kwargs",
    [
        ("/parse-text", {"content": b"hello", "headers": {"content-type": "text/plain"}}),
        ("/parse-text", {"content": b'{"a": 1}', "headers": {"content-type": "application/json"}}),
        (
            "/parse-json-only",
            {"content": b'{"a": [1, 2]}', "headers": {"content-type": "application/json"}},
        ),
        ("/parse-json-only", {"data": {"a": "1"}}),
        ("/parse-json-only", {"content": b"text", "headers": {"content-type": "text/plain"}}),
        ("/parse-form-only", {"data": {"a": "1", "b": "2"}}),
        (
            "/parse-form-only",
            {"content": b'{"a": 1}', "headers": {"content-type": "application/json"}},
        ),
        (
            "/parse-octet",
            {"content": bytes(range(5)), "headers": {"content-type": "application/octet-stream"}},
        ),
    ],
)
def test_parsers(pair, path, kwargs):
    pair.compare("POST", path, status=200, **kwargs)


def test_malformed_json_to_a_text_only_endpoint_reaches_r(pair):
    # The endpoint does not parse JSON (`@parser text`), so plumber answers and so must we.
    pair.compare(
        "POST",
        "/parse-text",
        status=200,
        content=b'{"broken',
        headers={"content-type": "application/json"},
    )


def test_errors_and_warnings(pair):
    pair.compare("GET", "/error-status", status=418)
    pair.compare("GET", "/warning", status=200)


# A segment its type does not match is no route at all (404), as in plumber's router.
@pytest.mark.parametrize(
    "path, status",
    [
        ("/args/1/2.5/TRUE/false/x", 200),
        ("/args/-1/-2/T/F/%20", 200),
        ("/args/1/2/true/FALSE/e", 200),
        ("/args/1.5/2/TRUE/TRUE/x", 404),
        ("/args/1/abc/TRUE/TRUE/x", 404),
        ("/args/1/2/maybe/TRUE/x", 404),
        ("/args/1/1e3/1/0/x", 404),
    ],
)
def test_typed_path_parameters(pair, path, status):
    pair.compare("GET", path, status=status)


# Without n (required: no default) the function errors: 500.
@pytest.mark.parametrize(
    "query, status",
    [
        ("n=3", 200),
        ("n=abc", 200),
        ("n=3&flags=true&flags=false", 200),
        ("flags=TRUE", 500),
        ("n=1.5", 200),
        ("", 500),
    ],
)
def test_typed_query_parameters(pair, query, status):
    pair.compare("GET", "/typed-query?" + query, status=status)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_several_verbs_on_one_function(pair, method):
    pair.compare(method, "/multi-verb", status=200)


def test_wrong_verb_lists_every_verb(pair):
    assert_405_with_allow(pair.send("DELETE", "/multi-verb"), "GET, POST, PUT")


@pytest.mark.parametrize("path", ["/read-relative", "/include", "/rds"])
def test_files_relative_to_plumber_r(pair, path):
    # plumbline runs from another folder; R code still finds note.txt beside plumber.R.
    pair.compare("GET", path, status=200)


def test_large_response(pair):
    ex = pair.compare("GET", "/big?n=300000", status=200)
    assert len(ex.plumbline.content) > 2_000_000


def test_large_binary_upload(pair):
    blob = bytes(range(256)) * 8192  # 2 MiB
    ex = pair.compare(
        "POST",
        "/parse-octet",
        status=200,
        content=blob,
        headers={"content-type": "application/octet-stream"},
    )
    assert ex.plumbline.json()["length"] == [len(blob)]


def test_non_ascii_response_headers_are_the_same_bytes(pair):
    ex = pair.compare("GET", "/header-utf8", status=200, present=("x-name", "content-disposition"))

    def raw(reply, name: bytes) -> list[bytes]:
        return [v for k, v in reply.headers.raw if k.lower() == name]

    for name in (b"x-name", b"content-disposition"):
        assert raw(ex.plumbline, name) == raw(ex.plumber, name), ex.describe()
