"""The frames arriving on one worker pipe, parsed as its data comes in (the pool's side).

Apart from runtime/protocol.py, which the R side imports too: an R process then starts
without loading asyncio (~30 ms of every worker's and the zygote's start).
"""

from __future__ import annotations

import asyncio
import collections

from plumbline.runtime.protocol import PREFIX_SIZE, ProtocolError, decode_header, split_prefix


class FrameReader(asyncio.Protocol):
    """The frames arriving on one pipe, parsed as its data comes in (the pool's side).

    Cheaper per frame than an asyncio.StreamReader with two readexactly() calls and an
    asyncio.timeout(): one buffer, one future, one timer. read() raises
    asyncio.IncompleteReadError once the other side closed the pipe, TimeoutError when the
    timeout passed, ProtocolError for bytes that are not a frame.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._frames: collections.deque = collections.deque()
        self._waiter: asyncio.Future | None = None
        self._closed = False

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= PREFIX_SIZE:
            try:
                head_len, body_len = split_prefix(bytes(buffer[:PREFIX_SIZE]))
            except ProtocolError as exc:
                self._frames.append(exc)
                buffer.clear()
                break
            end = PREFIX_SIZE + head_len + body_len
            if len(buffer) < end:
                break
            with memoryview(buffer) as view:  # one copy of the body, not two
                self._frames.append(
                    (
                        bytes(view[PREFIX_SIZE : PREFIX_SIZE + head_len]),
                        bytes(view[PREFIX_SIZE + head_len : end]),
                    )
                )
            del buffer[:end]
        self._wake()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self._frames or self._closed):
            waiter.set_result(None)

    async def read(self, timeout: float | None = None) -> tuple[dict, bytes]:
        if not self._frames and not self._closed:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, expire, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        if not self._frames:
            raise asyncio.IncompleteReadError(b"", None)
        frame = self._frames.popleft()
        if isinstance(frame, ProtocolError):
            raise frame
        head, body = frame
        return decode_header(head), body


def expire(waiter: asyncio.Future) -> None:
    """A timer's callback: the waiter fails with TimeoutError (unless it is done already), at
    the cost of one timer, where asyncio.timeout() also cancels and resumes the waiting task."""
    if not waiter.done():
        waiter.set_exception(TimeoutError())
