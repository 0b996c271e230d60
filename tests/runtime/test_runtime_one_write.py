"""Each answer reaches the client in one TCP segment: the head and the body leave the server
in one write (runtime/front/one_write.py), so a client waiting on its socket is woken once
per answer, not for the head and again for the body. Raw sockets against a real
`plumbline serve` of the example app; the answers' bytes are what they were.
"""

from __future__ import annotations

import socket
import struct

import pytest
from pool_harness import APPS
from serve_harness import serve

pytestmark = pytest.mark.slow

# Offset of tcpi_segs_in in Linux's struct tcp_info (include/uapi/linux/tcp.h, since 4.2).
_TCPI_SEGS_IN = 140
BASIC = APPS / "basic" / "plumber.R"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("one-write"), "--workers", "1", plumber_file=BASIC) as s:
        yield s


def connect(served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=10)


def complete(data: bytes, head_only: bool = False) -> bool:
    """Whether data holds one whole HTTP answer (a head, then Content-Length bytes)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    if head_only:
        return body == b""
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return len(body) == length


def read_answer(sock: socket.socket, head_only: bool = False) -> bytes:
    data = b""
    while not complete(data, head_only):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def segments_received(sock: socket.socket) -> int:
    """TCP segments this socket has received (Linux's struct tcp_info, tcpi_segs_in)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, _TCPI_SEGS_IN)[0]


@pytest.mark.parametrize(
    "path",
    ["/echo?msg=hi", "/error", "/livez", "/no-such-path", "/items/%ZZ"],
    ids=["from-R", "error-in-R", "front-probe", "not-found", "bad-path"],
)
def test_each_answer_arrives_in_one_segment(served, path):
    """Before, every answer came in two segments (head, then body): 60 for 30 answers."""
    expected = served.get(path)
    with connect(served) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        read_answer(sock)
        before = segments_received(sock)
        for _ in range(30):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answer = read_answer(sock)
            assert int(answer.split(b" ", 2)[1]) == expected[0]
            assert answer.partition(b"\r\n\r\n")[2] == expected[2]
        segments = segments_received(sock) - before
    # one per answer (a stray acknowledgement or two may come on top)
    assert 30 <= segments <= 32, f"30 answers came in {segments} segments"


def test_head_requests_close_and_100_continue_still_answer(served):
    with connect(served) as sock:
        # HEAD: a head and no body, and the connection goes on
        status = served.get("/text", method="HEAD")[0]
        sock.sendall(b"HEAD /text HTTP/1.1\r\nHost: x\r\n\r\n")
        head = read_answer(sock, head_only=True)
        assert head.startswith(b"HTTP/1.1 %d " % status)
        sock.sendall(b"GET /text HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer(sock).endswith(b"\r\n\r\nhello")

        # Expect: 100-continue: the interim answer comes before the body is sent
        body = b'{"a": 1, "b": 2}'
        sock.sendall(
            b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b'\r\n\r\n{"sum":[3]}')

    # Connection: close: the whole answer, then the server closes
    with connect(served) as sock:
        sock.sendall(b"GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_answer(sock)
        assert data.endswith(b"\r\n\r\nhello")
        assert b"connection: close" in data.lower()
        assert sock.recv(65536) == b""
