"""A response's head and its first body chunk leave in one write.

uvicorn writes the status line and headers when the app sends `http.response.start`, and the
body when it sends `http.response.body`: two send(2) calls and two TCP segments for every
answer, each waking the client. The front door answers almost every request with one body
message (the worker's whole answer), so holding the head until that message comes saves a
system call and a segment per request (~20 µs of the front's CPU per request on the
2-core benchmark machine; docs/benchmarks.md). What goes on the wire is the same bytes; a
head waits for the first body chunk, which every response of the front sends at once.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle


class _HeldHead:
    """Stands in for the transport between the head and the first body chunk."""

    __slots__ = ("_transport", "_head")

    def __init__(self, transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is None:
            self._head = data  # the first write after the start is always the head
        else:
            self._transport.write(self._head + data)
            self._head = b""

    def flush(self) -> None:
        if self._head and not self._transport.is_closing():  # the client may have gone
            self._transport.write(self._head)
        self._head = b""

    def close(self) -> None:
        # uvicorn closes after a `Connection: close` answer or when the app failed midway;
        # what was sent before the close still goes out first, as it would have.
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, writing the head together with the body."""

    async def send(self, message) -> None:
        transport = self.transport
        if isinstance(transport, _HeldHead):
            # The first body message (or a misuse uvicorn reports): write what it held.
            try:
                await super().send(message)
            finally:
                self.transport = transport._transport
                transport.flush()
            return
        if message["type"] != "http.response.start" or self.response_started:
            await super().send(message)
            return
        self.transport = _HeldHead(transport)  # type: ignore[assignment]  # duck-typed
        try:
            await super().send(message)
        except BaseException:
            self.transport = transport
            raise


def write_head_with_body(cycle: RequestResponseCycle) -> None:
    """Make a cycle uvicorn created send its head with its first body chunk (before its
    task starts: uvicorn builds the cycle itself, so the class is swapped, not chosen)."""
    cycle.__class__ = OneWriteCycle
