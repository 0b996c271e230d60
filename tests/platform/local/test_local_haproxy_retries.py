"""Retry safety of the local ingress, shown with real HAProxy and stand-in replicas.

The stand-in replicas are tiny TCP servers: they pass HAProxy's health check and, for any
other request, read it whole (head and body), record it and drop the connection without a
byte of answer: the request reached a replica, which may have acted on it. HAProxy must
never send such a POST again (not to the same replica, not to another one); a GET, which
is safe to repeat, is retried as docs/architecture.md says (up to 3 more times).
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from plumbline.platform.local.haproxy import (
    AppRoutes,
    HAProxy,
    Server,
    ingress_routes,
    render_config,
)
from plumbline.platform.spec.appspec import build_spec
from support import free_port

pytestmark = pytest.mark.slow  # real HAProxy

ROUTES_APP = (
    "#* @post /submit\nfunction() 1\n\n#* @get /read\nfunction() 1\n\n#* @get /busy\nfunction() 1\n"
)
RETRIES = 3  # `retries` in the rendered backend


class DroppingReplica:
    """Answers HAProxy's GET /readyz with 200 and /busy with a 503 (an answer, though an
    error); reads any other request whole, records it and closes the connection unanswered
    (`reset`: with a TCP RST instead of a FIN)."""

    def __init__(self, reset: bool = False):
        self.reset = reset
        self.received: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:])
                }
                length = int(headers.get("content-length", "0"))
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
            except (OSError, ValueError):
                return
            if path == "/readyz":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            with self._lock:
                self.received.append((method, path, body))
            if path == "/busy":
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 4\r\nConnection: close\r\n\r\nbusy"
                )
                return
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def requests(self, method: str, path: str) -> list[bytes]:
        with self._lock:
            return [body for m, p, body in self.received if (m, p) == (method, path)]

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self._listener.close()
        self._thread.join(5)
        assert not self._thread.is_alive()


@pytest.fixture(params=[False, True], ids=["fin", "rst"])
def ingress(request, tmp_path: Path):
    """Real HAProxy with the local cluster's configuration, in front of two dropping replicas."""
    plumber = tmp_path / "app" / "plumber.R"
    plumber.parent.mkdir()
    plumber.write_text(ROUTES_APP)
    replicas = [DroppingReplica(reset=request.param) for _ in range(2)]
    proxy = HAProxy(tmp_path, on_log=lambda line: None)
    port = free_port()
    app = AppRoutes(
        "app-drop",
        tuple(ingress_routes(build_spec(plumber, {"name": "drop"}))),
        tuple(Server(f"r{i}", r.port, 4) for i, r in enumerate(replicas, 1)),
    )
    try:
        proxy.start(
            render_config(
                apps=[app],
                bind_host="127.0.0.1",
                port=port,
                admin_socket=proxy.admin_socket,
                server_timeout=10,
            )
        )
        yield proxy, port, replicas
    finally:
        proxy.stop()
        for replica in replicas:
            replica.close()


def wait_in_rotation(proxy: HAProxy, timeout: float = 30) -> None:
    """Until HAProxy's health checks have put both replicas in rotation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        servers = proxy.api.servers("app-drop")
        if len(servers) == 2 and all(s.in_rotation for s in servers.values()):
            return
        time.sleep(0.05)
    raise AssertionError(
        f"replicas not in rotation after {timeout} s: {proxy.api.servers('app-drop')}"
    )


def send(port: int, method: str, path: str, body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            method, path, body=body, headers={"Content-Type": "application/json"} if body else {}
        )
        # (http.client sends Content-Length: 0 for an empty POST body)
        reply = conn.getresponse()
        return reply.status, reply.getheader("Content-Type"), reply.read()
    finally:
        conn.close()


# Without a body (the example app's POST /fail and /quit) HAProxy holds the whole request and
# could replay it at once; with one, as soon as it has buffered the body.
@pytest.mark.parametrize("body", [b"", b'{"order": 42}'], ids=["no-body", "json-body"])
def test_a_post_that_reached_a_replica_is_never_sent_again(ingress, body):
    proxy, port, replicas = ingress
    wait_in_rotation(proxy)
    status, content_type, answer = send(port, "POST", "/submit", body)
    assert (status, content_type) == (502, "application/json")
    assert json.loads(answer) == {"error": "bad gateway"}
    # The answer came after HAProxy gave up: every attempt it made has been received.
    received = [b for r in replicas for b in r.requests("POST", "/submit")]
    assert received == [body], "the POST reached the replicas more than once (or not whole)"


def test_a_get_without_an_answer_is_retried(ingress):
    proxy, port, replicas = ingress
    wait_in_rotation(proxy)
    status, content_type, answer = send(port, "GET", "/read")
    assert (status, content_type) == (502, "application/json")
    assert json.loads(answer) == {"error": "bad gateway"}
    attempts = [len(r.requests("GET", "/read")) for r in replicas]
    assert sum(attempts) == 1 + RETRIES, attempts
    assert all(attempts), f"the retries went to the other replica too (redispatch): {attempts}"


def test_an_answer_is_never_retried_even_an_error(ingress):
    proxy, port, replicas = ingress
    wait_in_rotation(proxy)
    assert send(port, "GET", "/busy") == (503, "text/plain", b"busy")
    assert sum(len(r.requests("GET", "/busy")) for r in replicas) == 1
