"""plumbline vs real plumber 1.2.1 on examples/plumber-on-k8s/plumber.R (the walkthrough app).

Plumber runs it as its entrypoint.R does (plumber, promises and future attached; futures run
under future's default sequential plan); plumbline serves the file unchanged with 2 workers.
"""

from __future__ import annotations

import re

import pytest

from compat_harness import (
    EXAMPLE_APP,
    assert_405_with_allow,
    assert_same,
    deliberate,
    wait_for_unhealthy_restart,
)

pytestmark = pytest.mark.slow
APP = EXAMPLE_APP.parent  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.mark.parametrize(
    "value, answer",
    [("3", b"odd"), ("4", b"even"), ("-7", b"odd"), ("0", b"even"), ("3.5", b"odd")],
)
def test_parity(pair, value, answer):
    ex = pair.compare("GET", f"/parity?int={value}", status=200)
    assert ex.plumbline.content == answer
    assert ex.plumbline.headers["content-type"] == "text/plain; charset=UTF-8"


@pytest.mark.parametrize("query", ["int=abc", "", "int=", "int=1&int=2", "other=3"])
def test_parity_bad_input_is_plumbers_500(pair, query):
    ex = pair.compare("GET", f"/parity?{query}", status=500)
    assert ex.plumbline.content == b'{"error":"500 - Internal server error"}'


def test_health(pair):
    ex = pair.compare("GET", "/health", status=200)
    assert ex.plumbline.content == b"OK"


def test_unknown_route(pair):
    pair.compare("GET", "/nope", status=404)
    pair.compare("POST", "/nope/deeper?x=1", status=404, content=b"{}")


@pytest.mark.parametrize(
    "method, path, allowed",
    [("GET", "/fail", "POST"), ("POST", "/parity?int=3", "GET"), ("DELETE", "/health", "GET")],
)
def test_wrong_method(pair, method, path, allowed):
    assert_405_with_allow(pair.send(method, path), allowed)


@pytest.mark.parametrize("path, status", [("/health", 405), ("/parity?int=3", 405), ("/nope", 404)])
def test_head(pair, path, status):
    # plumber does not map HEAD to GET (405); each request has a connection of its own, so
    # the body httpuv writes after a HEAD answer spoils nothing (compat_wire).
    ex = pair.send("HEAD", path)
    assert ex.plumber.status_code == ex.plumbline.status_code == status, ex.describe()
    assert ex.plumber.content == ex.plumbline.content == b""
    if status != 405:
        assert_same(ex)
        return
    assert ex.plumber.headers["allow"] == ""  # plumber never fills it
    deliberate("405 Allow header filled")
    assert ex.plumbline.headers["allow"] == "GET", ex.describe()
    assert_same(ex, masks={"allow": lambda _: "(compared above)"})


def test_malformed_json_body(pair):
    request = {"content": b'{"int": 3', "headers": {"content-type": "application/json"}}
    ex = pair.send("POST", "/fail", **request)
    assert ex.plumber.status_code == 500  # plumber: parse error inside its pipeline
    assert ex.plumber.content == b'{"error":"500 - Internal server error"}'
    deliberate("malformed JSON is the client's error")
    assert ex.plumbline.status_code == 400, ex.describe()
    assert ex.plumbline.headers["content-type"] == "application/json"
    error = ex.plumbline.json()
    assert "json" in error["error"].lower(), ex.describe()


def test_wait(pair):
    # Both servers take ~5 s (requests sent concurrently); only the digits of the time differ.
    ex = pair.compare("GET", "/wait", status=200, body=lambda b: re.sub(rb"\d", b"0", b))
    (stamp,) = ex.plumbline.json()["time"]
    assert stamp[:4].isdigit(), ex.describe()


def test_fail_then_health(pair):
    """Last in the module: it breaks the app. plumber stays broken until restarted; plumbline's
    pool calls GET /health on idle workers and replaces a worker whose call fails
    (deliberate: docs/compatibility.md)."""
    ex = pair.compare("POST", "/fail", status=200)
    assert ex.plumbline.content == b"{}"
    after = pair.request("plumber", "GET", "/health")
    assert (after.status_code, after.content) == (500, b'{"error":"500 - Internal server error"}')
    deliberate("the pool heals a worker whose /health fails")
    # The plumbline worker that ran /fail answers exactly like plumber until it is replaced.
    # (The other worker may answer this one: it is healthy.)
    first = pair.request("plumbline", "GET", "/health")
    if first.status_code != 200:
        assert (first.status_code, first.content) == (after.status_code, after.content)
    wait_for_unhealthy_restart(pair)
    for _ in range(4):  # both workers healthy again: every call answers like a fresh plumber
        reply = pair.request("plumbline", "GET", "/health")
        assert (reply.status_code, reply.content) == (200, b"OK")
    assert pair.request("plumbline", "GET", "/parity?int=5").text == "odd"


def test_quit_fails_only_that_request(pair):
    """Last: `POST /quit` calls quit(). plumber's whole server dies with it; plumbline answers
    that request 502 JSON, replaces the worker and keeps serving (deliberate)."""
    with pytest.raises(ConnectionError):
        pair.request("plumber", "POST", "/quit")
    deliberate("a worker that dies fails only its own request")
    reply = pair.request("plumbline", "POST", "/quit")
    assert reply.status_code == 502, reply.text  # docs/serve.md: a worker that died
    assert reply.headers["content-type"] == "application/json"
    assert "error" in reply.json()
    for value, answer in (("5", "odd"), ("8", "even")):
        assert pair.request("plumbline", "GET", f"/parity?int={value}").text == answer
