"""Connections waiting in the listener's accept queue when the server stops are answered, not
reset (runtime/front/front_server.py).

The real front server and connection protocol on loopback, with a small ASGI app instead of
R (the queue is the listener's business, not the workers'). The event loop is held while the
clients connect and send, so their connections are complete in the kernel but not yet
accepted when shutdown closes the listener: the moment a draining server under load meets.
"""

from __future__ import annotations

import socket

import pytest

import uvicorn
import uvloop

from plumbline.runtime.front.connection import Limits, protocol_class
from plumbline.runtime.front.front_server import FrontServer
from plumbline.runtime.front.health import Health
from plumbline.runtime.front.metrics import FrontStats

CLIENTS = 8

pytestmark = pytest.mark.slow


async def app(scope, receive, send) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def stop_with_queued_clients(send_requests: bool) -> list[socket.socket]:
    """Start a front server, queue CLIENTS connections behind its listener, stop it."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app,
        http=protocol_class(Limits(), Health(pool=None), FrontStats()),
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    config.load()
    server = FrontServer(config)
    server.lifespan = config.lifespan_class(config)

    async def scenario() -> list[socket.socket]:
        await server.startup(sockets=[listener])
        # No await from here to shutdown's close: the loop cannot accept these connections.
        clients = [
            socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CLIENTS)
        ]
        if send_requests:
            for client in clients:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await server.shutdown(sockets=[listener])
        return clients

    return uvloop.run(scenario())


def test_requests_queued_behind_the_listener_are_answered_when_the_server_stops():
    clients = stop_with_queued_clients(send_requests=True)
    try:
        for client in clients:
            answer = read_all(client)  # a reset raises ConnectionResetError here
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), answer
            assert b"connection: close" in head.lower()
            assert body == b"ok"
    finally:
        for client in clients:
            client.close()


def test_queued_connections_that_send_nothing_are_closed_not_reset():
    clients = stop_with_queued_clients(send_requests=False)
    try:
        for client in clients:
            assert read_all(client) == b""  # closed after the first-request grace
    finally:
        for client in clients:
            client.close()
