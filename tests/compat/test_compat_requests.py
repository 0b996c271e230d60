"""The shapes of HTTP requests, compared on a small echo app (tests/compat/apps/echo): query
strings, paths, headers, and JSON, form, multipart, text and binary bodies reach the R code
exactly as plumber's own server (httpuv) hands them over.
"""

from __future__ import annotations

import json

import pytest

from compat_harness import APPS, assert_405_with_allow, deliberate

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}


APP = APPS / "echo"  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.mark.parametrize(
    "query",
    [
        "a=1",
        "a=1&a=2",
        "a",
        "a=",
        "=b",
        "a=1&&b=2",
        "a+b=c+d",
        "a%20b=c%20d",
        "x=%C3%A9t%C3%A9",
        "x=%ZZ",
        "x=a%2Bb",
        "x=1;y=2",
        "x=" + "v" * 4000,
        "A=1&a=2",
        "x=%E9",
        "a=1?b=2",
    ],
)
def test_query_strings(pair, query):
    pair.compare("GET", "/echo/w?" + query, status=200)


# Sent as written (compat_wire): `//echo/w` reaches both servers as `//echo/w`.
@pytest.mark.parametrize(
    "path, status",
    [
        ("/echo/w/", 404),
        ("/echo//w", 404),
        ("//echo/w", 404),
        ("/echo/%77", 200),
        ("/echo/a%2Fb", 200),
        ("/echo/a+b", 200),
        ("/echo/%C3%A9", 200),
        ("/ECHO/w", 404),
        ("/echo/w.json", 200),
        ("/item/12", 200),
        ("/item/-3", 200),
        ("/item/+3", 404),
        ("/item/0x1F", 404),
        ("/item/1e3", 404),
        ("/item/99999999999", 200),
        ("/item/", 404),
        ("/echo/a%3Fb", 200),
        ("/echo/a;b", 200),
        ("/echo/./w", 404),
        ("/echo/x/../w", 404),
    ],
)
def test_paths(pair, path, status):
    pair.compare("GET", path, status=status)


@pytest.mark.parametrize("value", ["caf\u00e9".encode(), b"\xe4\xb8\xad"])
def test_utf8_request_header_and_cookie(pair, value):
    pair.compare(
        "GET", "/echo/w", status=200, headers=[(b"X-Payload", value), (b"Cookie", b"v=" + value)]
    )


def test_header_bytes_that_are_not_utf8(pair):
    ex = pair.send(
        "GET", "/echo/w", headers=[(b"X-Payload", b"caf\xe9"), (b"Cookie", b"v=caf\xe9")]
    )
    assert ex.plumber.status_code == 500  # R got an invalid UTF-8 string; the cookie parser fails
    deliberate("header bytes that are not UTF-8 reach R read as Latin-1")
    assert ex.plumbline.status_code == 200, ex.describe()
    echoed = ex.plumbline.json()
    assert (echoed["header"], echoed["cookies"]["v"]) == ("caf\u00e9", "caf\u00e9")


def test_repeated_request_headers(pair):
    pair.compare("GET", "/echo/w", status=200, headers=[("X-Payload", "one"), ("X-Payload", "two")])
    pair.compare("GET", "/echo/w", status=200, headers=[("Cookie", "a=1"), ("Cookie", "b=2")])


@pytest.mark.parametrize("cookie", ["a=1; b=2", "a=%20x%20", "a", "a=1;a=2", 'a="q"'])
def test_cookies(pair, cookie):
    pair.compare("GET", "/echo/w", status=200, headers={"Cookie": cookie})


@pytest.mark.parametrize(
    "body",
    [
        b'{"v": 1}',
        b'{"v": [1, 2, 3]}',
        b'{"v": {"deep": [true, null, "x"]}}',
        b"[1, 2]",
        b'"scalar"',
        b'{"v": 1e999}',
        b'{"v": "\\u00e9\\ud83d\\ude00"}',
        b'{"v": "\\u0000x"}',
        b'{"v": 1, "v": 2}',
        b'{"v": 12345678901234567890}',
        b"{}",
        b'{"a b": 1, "": 2}',
    ],
)
def test_json_bodies(pair, body):
    pair.compare("POST", "/echo/w", status=200, content=body, headers=JSON)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "text/json",
        "application/vnd.api+json",
    ],
)
def test_json_content_types(pair, content_type):
    pair.compare(
        "POST", "/echo/w", status=200, content=b'{"v": 1}', headers={"content-type": content_type}
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"v": 1 /* a comment */}',
        b'{"v": 1} // a comment',
        b'\xef\xbb\xbf{"v": 1}',
    ],
)
def test_json_that_jsonlite_accepts(pair, body):
    """jsonlite (yajl) allows comments and a byte-order mark; plumber answers 200."""
    pair.compare("POST", "/echo/w", status=200, content=body, headers=JSON)


@pytest.mark.parametrize(
    "body",
    [
        b'{"v": 1',
        b'{"v": 1,}',
        b"[1, 2,]",
        b"NaN",
        b'{"v": Infinity}',
        b'{"a":1}{"b":2}',
        b"   ",
        b'{"v": "\x01"}',
        b"\xff\xfe",
    ],
)
def test_malformed_json_is_400(pair, body):
    ex = pair.send("POST", "/echo/w", content=body, headers=JSON)
    assert ex.plumber.status_code == 500, ex.describe()
    assert ex.plumber.content == b'{"error":"500 - Internal server error"}'
    deliberate("malformed JSON is the client's error")
    assert ex.plumbline.status_code == 400, ex.describe()
    assert ex.plumbline.headers["content-type"] == "application/json"
    assert ex.plumbline.json()["error"] == "request body is not valid JSON", ex.describe()


def deep_json(depth: int) -> bytes:
    return b'{"deep": ' + b"[" * depth + b"1" + b"]" * depth + b"}"


@pytest.mark.parametrize("depth, status", [(100, 200), (300, 500), (600, 500)])
def test_deeply_nested_json(pair, depth, status):
    """R recursing deep into a parsed body hits the C stack limit: plumber answers 500 (an R
    error) and keeps serving; a worker must do the same, not crash."""
    pair.compare(
        "POST",
        "/env",
        status=status,
        content=deep_json(depth),
        headers=JSON,
        body=lambda b: json.loads(b).get("args"),
    )
    pair.compare("GET", "/echo/w", status=200)  # and both keep serving


def test_json_nested_deeper_than_python_parses(pair):
    ex = pair.send("POST", "/env", content=deep_json(3000), headers=JSON)
    assert ex.plumber.status_code == 500, ex.describe()
    deliberate("JSON nested deeper than the 400 check can parse is refused")
    assert ex.plumbline.status_code == 400, ex.describe()
    assert ex.plumbline.json()["error"] == "request body is not valid JSON", ex.describe()


def test_empty_json_body(pair):
    pair.compare("POST", "/echo/w", status=200, content=b"", headers=JSON)


@pytest.mark.parametrize(
    "body",
    [
        b"v=1&w=2",
        b"v=1&v=2",
        b"v",
        b"v=",
        b"v=a+b%20c",
        b"v=%C3%A9",
        b"=x",
        b"v=1&&w=2",
    ],
)
def test_form_bodies(pair, body):
    pair.compare(
        "POST",
        "/echo/w",
        status=200,
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def test_form_body_without_content_type(pair):
    pair.compare("POST", "/echo/w", status=200, content=b"v=1&w=2")


def test_multipart(pair):
    pair.compare(
        "POST",
        "/echo/w",
        status=200,
        data={"v": "1", "w": "é"},
        files=[
            ("f", ("a.txt", b"first\n", "text/plain")),
            ("g", ("b.json", b'{"x": 1}', "application/json")),
            ("h", ("c.bin", bytes(range(256)), "application/octet-stream")),
        ],
    )


@pytest.mark.parametrize(
    "content_type, body, status",
    [
        (
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="v"\r\n\r\n1',
            200,
        ),
        ("multipart/form-data", b"no boundary at all", 500),
        ("text/plain", b"just text", 200),
        ("text/plain; charset=utf-8", "é".encode(), 200),
        ("application/octet-stream", bytes(range(10)), 200),
        ("application/x-unknown", b"???", 200),
        ("text/csv", b"a,b\n1,2\n", 200),
    ],
)
def test_other_bodies(pair, content_type, body, status):
    pair.compare(
        "POST", "/echo/w", status=status, content=body, headers={"content-type": content_type}
    )


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_verbs_without_an_endpoint(pair, method):
    assert_405_with_allow(pair.send(method, "/echo/w"), "GET, POST")


def test_health_when_the_app_has_none(pair):
    ex = pair.send("GET", "/health")
    assert ex.plumber.status_code == 404, ex.describe()
    deliberate("/health answers as /readyz when plumber.R has no /health")
    assert ex.plumbline.status_code == 200, ex.describe()
    assert ex.plumbline.headers["content-type"] == "application/json"


def test_body_over_max_body_is_413(pair):
    big = b"v=" + b"x" * (10 * 1024 * 1024)  # plumbline's default --max-body is 10 MiB
    reply = pair.request(
        "plumbline",
        "POST",
        "/echo/w",
        content=big,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    deliberate("bodies over --max-body get 413 (plumber has no limit by default)")
    assert reply.status_code == 413
    assert reply.json()["error"] == "request body too large"


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("GET", "/env", {}),
        ("GET", "/env?a=1&b=%20", {"headers": {"X-Custom-Header": "v", "User-Agent": "compat"}}),
        # SERVER_NAME is the address the server answers on, whatever Host the client sends.
        ("GET", "/env", {"headers": {"Host": "api.example.com:9999"}}),
        ("POST", "/env", {"content": b'{"x": 1}', "headers": JSON}),
        ("POST", "/env", {"data": {"x": "1"}}),
        ("PUT", "/env", {"content": b"raw", "headers": {"content-type": "text/plain"}}),
        ("POST", "/env", {"content": b""}),
        (
            "POST",
            "/env",
            {
                "content": iter([b"x=", b"chunked"]),  # no Content-Length
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
        ),
    ],
)
def test_rook_environment(pair, method, path, kwargs):
    """The request fields plumber's R code reads (req$PATH_INFO, req$HTTP_*, req$postBody ...)."""

    def without_port(body: bytes) -> dict:
        env = json.loads(body)
        env["HTTP_HOST"] = env["HTTP_HOST"].rsplit(":", 1)[0]
        return env

    pair.compare(method, path, status=200, body=without_port, **kwargs)
