"""The fast lane (runtime/front/lane.py): a request for an endpoint of plumber.R skips most
of the ASGI stack, and nothing a client sees changes.

Two real `plumbline serve` of the basic app, one with `--fast-lane off`, raw sockets: each
request is sent to both, and the answers must be the same bytes but for the Date line. Then
the lane's other duties (answers in order on a pipelined connection, the access log line and
the metrics) and which requests it takes.
"""

from __future__ import annotations

import json
import re
import socket

import pytest
from pool_harness import APPS
from serve_harness import serve

from plumbline.annotations import parse_file
from plumbline.runtime.front.app import AppOptions, create_app
from plumbline.runtime.pool.pool import PoolConfig, WorkerPool

BASIC = APPS / "basic" / "plumber.R"
LANE_OFF = ("--fast-lane", "off")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("lane"), "--workers", "1", plumber_file=BASIC) as s:
        yield s


@pytest.fixture(scope="module")
def unlaned(tmp_path_factory):
    folder = tmp_path_factory.mktemp("no-lane")
    with serve(folder, "--workers", "1", *LANE_OFF, plumber_file=BASIC) as s:
        yield s


def read_answers(sock: socket.socket, count: int, heads_only: bool = False) -> list[bytes]:
    """`count` whole HTTP answers (each a head and Content-Length bytes, or only the head
    when they answer HEAD) from the socket."""
    data, answers = b"", []
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)\r?$", head) if sep else None
        size = 0 if heads_only or length is None else int(length.group(1))
        if sep and len(rest) >= size:
            end = len(head) + 4 + size
            answers.append(data[:end])
            data = data[end:]
            continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(answers)} answers and {data!r}"
        data += chunk
    return answers


def exchange(served, requests: list[bytes], heads_only: bool = False) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(b"".join(requests))
        return read_answers(sock, len(requests), heads_only)


def until_closed(served, request: bytes) -> bytes:
    """All the server sends for one request that asks it to close the connection after."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def get(path: str, extra: bytes = b"", request_id: str = "lane-test", method: str = "GET") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: {request_id}\r\n".encode()
        + extra
        + b"\r\n"
    )


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    head = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
    return get(path, head + extra, method="POST") + body


def without_date(answer: bytes) -> bytes:
    return re.sub(rb"(?im)^date: [^\r\n]*\r\n", b"", answer)


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [
        "/text",
        "/json",
        "/items/42",
        "/echo?msg=h%C3%A9llo+there&n=2&n=3",
        "/status",  # 201 and a header set in R
        "/error",  # plumber's 500
        "/bytes",
        "/text-vector",
        "/attachment",
        "/req?x=1",  # plumber's whole pipeline, not the direct call
        "/value",  # a missing argument: plumber's 500
    ],
)
def test_the_lane_writes_the_bytes_the_asgi_app_writes(served, unlaned, path):
    (lane,), (asgi,) = exchange(served, [get(path)]), exchange(unlaned, [get(path)])
    assert lane.startswith(b"HTTP/1.1 ")
    assert b"\r\nx-request-id: lane-test\r\n" in lane
    assert without_date(lane) == without_date(asgi)


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_bytes",
    [
        post("/sum", b'{"a": 1, "b": 2}'),
        post("/sum", b'{"a": 1, "b": }'),  # the front's 400
        post("/mirror", bytes(range(256))),
        get("/text", method="HEAD"),  # plumber's 405: no GET endpoint takes HEAD
        get("/nowhere"),  # plumber's 404, by the app either way
        get("/req", b"X-Custom: c\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: https\r\n"),
    ],
    ids=["post", "bad-json", "binary-body", "head", "404", "proxy-headers"],
)
def test_bodies_heads_and_proxy_headers_are_the_same_bytes_too(served, unlaned, request_bytes):
    heads_only = request_bytes.startswith(b"HEAD")
    lane, asgi = (exchange(s, [request_bytes], heads_only)[0] for s in (served, unlaned))
    assert without_date(lane) == without_date(asgi)
    if b"X-Forwarded-For" in request_bytes:  # a proxy on the loopback is trusted
        answer = json.loads(lane.partition(b"\r\n\r\n")[2])
        assert (answer["remote"], answer["scheme"]) == (["10.1.2.3"], ["https"])


@pytest.mark.slow
def test_expect_100_continue_is_answered_then_the_body_read_either_way(served, unlaned):
    body = b'{"a": 1, "b": 2}'
    request = post("/sum", body, b"Expect: 100-continue\r\n")
    answers = []
    for server in (served, unlaned):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(request[: -len(body)])  # the head alone: the client waits
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
            answers.append(read_answers(sock, 1)[0])
    assert answers[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert without_date(answers[0]) == without_date(answers[1])


SMALL_APP = """
#* @post /sum
function(a, b) list(sum = a + b)

#* @serializer text
#* @head /ping
#* @get /ping
function() "pong"
"""


@pytest.mark.slow
def test_head_endpoints_bodies_over_max_body_and_closing_either_way(tmp_path):
    app = tmp_path / "plumber.R"
    app.write_text(SMALL_APP)
    closing = b"Connection: close\r\n"
    answers = []
    for flags in ((), LANE_OFF):
        with serve(tmp_path, "--workers", "1", "--max-body", "100", *flags, plumber_file=app) as s:
            answers.append(
                (
                    exchange(s, [post("/sum", b"x" * 1000)])[0],
                    until_closed(s, get("/ping", closing, method="HEAD")),
                    until_closed(s, get("/ping", closing)),
                )
            )
    (too_large, head, pong), unlaned = answers
    assert too_large.startswith(b"HTTP/1.1 413 ")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    # a HEAD answer is the GET answer's head, Content-Length included, and nothing more
    assert pong.startswith(head[:-4]) and pong.endswith(b"\r\n\r\npong")
    assert b"\r\nconnection: close\r\n" in pong  # and the server closed it (until_closed)
    assert [without_date(a) for a in answers[0]] == [without_date(a) for a in unlaned]


@pytest.mark.slow
def test_pipelined_requests_are_answered_in_order(served):
    requests = [get(f"/echo?msg=m{i}") for i in range(20)]
    answers = exchange(served, requests)
    bodies = [json.loads(answer.partition(b"\r\n\r\n")[2]) for answer in answers]
    assert [body["msg"] for body in bodies] == [[f"m{i}"] for i in range(20)]


@pytest.mark.slow
def test_lane_requests_are_logged_and_counted(served):
    counted = 'plumbline_requests_total{method="GET",route="/items/<id:int>",status="200"}'
    before = served.metric(counted) or 0
    (answer,) = exchange(served, [get("/items/7", request_id="lane-logged")])
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    served.wait_until(lambda: "lane-logged" in served.stdout.read_text(), what="access line")
    line = next(
        json.loads(text) for text in served.stdout.read_text().splitlines() if "lane-logged" in text
    )
    assert line["logger"] == "plumbline.access"
    assert (line["method"], line["path"], line["route"], line["status"]) == (
        "GET",
        "/items/7",
        "/items/<id:int>",
        200,
    )
    assert line["remote"] == "127.0.0.1" and line["duration_s"] > 0
    assert served.metric(counted) == before + 1


# ---- which requests the lane takes (no server: the decision alone) ----------------------


@pytest.fixture(scope="module")
def lane():
    pool = WorkerPool(PoolConfig(plumber_file=BASIC, workers=1))  # never started
    return create_app(parse_file(BASIC), pool, AppOptions(access_log=False)).lane


def scope(path: str, method: str = "GET", headers=()) -> dict:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "headers": [(b"host", b"127.0.0.1"), *headers],
    }


@pytest.mark.parametrize(
    "request_scope, route",
    [
        (scope("/items/3"), "/items/<id:int>"),
        (scope("/sum", "POST", [(b"content-length", b"7")]), "/sum"),
        (scope("/mirror", "POST", [(b"transfer-encoding", b"chunked")]), "/mirror"),
        (scope("/text", headers=[(b"x-request-id", b"mine")]), "/text"),
        (scope("/req", headers=[(b"x-forwarded-for", b"10.0.0.1")]), "/req"),
    ],
    ids=lambda x: x if isinstance(x, str) else f"{x['method']} {x['path']}",
)
def test_the_lane_takes_requests_for_endpoints_and_names_their_route(lane, request_scope, route):
    assert lane.takes(request_scope)
    assert request_scope["plumbline.route"] == route


@pytest.mark.parametrize(
    "request_scope",
    [
        scope("/livez"),
        scope("/metrics"),
        scope("/__docs__/"),
        scope("/openapi.json"),
        scope("/nowhere"),
        scope("/items/notanumber"),
        scope("/text", "POST"),  # plumber's 405
        scope("/text", "HEAD"),  # plumber routes HEAD to no GET endpoint: 405 too
    ],
    ids=lambda s: f"{s['method']} {s['path']} {s['headers'][1:]}",
)
def test_everything_else_goes_through_the_asgi_app(lane, request_scope):
    assert not lane.takes(request_scope)


@pytest.mark.parametrize(
    "options",
    [
        {"access": "keys", "access_keys": ("0" * 64,)},
        {"root_path": "/api"},
        {"root_path_aliases": ("/v1",)},
        {"fast_lane": False},
    ],
)
def test_apps_behind_keys_or_a_prefix_or_with_it_off_have_no_lane(options):
    pool = WorkerPool(PoolConfig(plumber_file=BASIC, workers=1))
    app = create_app(parse_file(BASIC), pool, AppOptions(access_log=False, **options))
    assert app.lane is None
