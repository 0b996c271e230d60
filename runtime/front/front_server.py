"""uvicorn's server as `plumbline serve` runs it: signals left to the caller, and no connection
the kernel has already accepted lost when the listener closes.

A client's connection is complete (and its request often sent) as soon as the kernel puts it
in the listener's accept queue; the event loop accepts it at its next turn. uvicorn closes
the listener without looking at that queue, and the kernel resets every connection still in
it: under load, a client whose request was on its way as the drain ended would get a reset
instead of an answer. Here the queue is emptied first, in the same turn of the loop
as the close (nothing can join it in between), and each connection found in it is served
like one accepted a moment earlier: its request answered with `Connection: close`, or
closed after the first-request grace if none comes (connection.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn


class FrontServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        yield  # server.py handles the signals: it drains before asking uvicorn to stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        adopted = [loop.create_task(self._adopt(conn)) for conn in accept_queued(sockets or [])]
        # uvicorn's shutdown closes the listeners before its first await: in this turn.
        await super().shutdown(sockets)
        await asyncio.gather(*adopted)

    async def _adopt(self, conn: socket.socket) -> None:
        """Serve a connection taken from the accept queue as uvicorn's own listener would,
        told at once that the server stops (as uvicorn tells every open connection)."""
        config = self.config
        loop = asyncio.get_running_loop()

        def protocol():
            return config.http_protocol_class(
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )

        try:
            _, connection = await loop.connect_accepted_socket(protocol, sock=conn)
        except OSError:  # the client is gone already
            conn.close()
            return
        connection.shutdown()


def accept_queued(sockets: list[socket.socket]) -> list[socket.socket]:
    """Every connection waiting in these listeners' accept queues, accepted now."""
    accepted = []
    for listener in sockets:
        listener.setblocking(False)  # the event loop's listener is non-blocking already
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the queue is empty (or out of descriptors, or closed already)
                break
            conn.setblocking(False)
            accepted.append(conn)
    return accepted
