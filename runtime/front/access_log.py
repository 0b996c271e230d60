"""Pure-ASGI middleware around every request: request id, access log line, request metrics.

The request id comes from the client's X-Request-Id when it is sane, else a new one; it is
returned in the X-Request-Id response header and written in the JSON access log line. The
inner app names the matched route in scope["plumbline.route"] (a template, for metrics).
Any exception that escapes the app is logged with the id and becomes a JSON 500.

Access log lines go to stdout in batches (flushed every FLUSH_INTERVAL seconds): a write
and flush per request through `logging` halved the throughput of the whole server. Each line
is built by plumbline.runtime.logs, as every other log line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import sys
import time

from plumbline.runtime import logs
from plumbline.runtime.front.errors import send_error
from plumbline.runtime.front.routing import UNMATCHED

FLUSH_INTERVAL = 0.2

_VALID_ID = re.compile(rb"^[\x21-\x7e]{1,200}$")  # visible ASCII: safe to echo in a header
log = logging.getLogger("plumbline.server")


# A request id needs to be unique, not secret: a random prefix per process and a counter
# (32 hex digits, as before) instead of a getrandom() system call per request.
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count()


def _request_id(headers) -> bytes:
    for name, value in headers:
        if name == b"x-request-id":
            if _VALID_ID.match(value):
                return value
            break
    return f"{_ID_PREFIX}{next(_id_counter):016x}".encode()


def _client_gone(send) -> bool:
    """Whether the client's connection was already closing when sending failed.

    A client that resets its connection (say, hanging up mid-pipeline) closes the transport
    a moment before uvicorn's connection_lost() marks the request disconnected; an answer
    sent in between raises. uvicorn's send is a method of its request cycle: marking that
    disconnected keeps uvicorn from logging the unfinished response as an error too.
    Only looked at when sending failed, so it costs nothing per request.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None or not transport.is_closing():
        return False
    cycle.disconnected = True
    return True


class AccessLog:
    """Buffers JSON lines and writes them to a stream shortly after, in one write."""

    def __init__(self, stream=None):
        self._stream = stream or sys.stdout
        self._lines: list[str] = []
        self._flush_scheduled = False
        self._second = -1
        self._stamp = ""

    def write(self, *fields) -> None:
        """One request's line: `fields` are logs.access_line()'s, after the time stamp."""
        now = time.time()
        second = int(now)
        if second != self._second:  # strftime once a second, not once a request
            self._second = second
            self._stamp = logs.timestamp(second)[:-5]
        stamp = f"{self._stamp}.{int(now % 1 * 1000):03d}Z"
        self._lines.append(logs.access_line(stamp, *fields))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._lines:
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            self._stream.write(text)
            self._stream.flush()


class RequestLogMiddleware:
    def __init__(self, app, metrics, access_log: AccessLog | None):
        self.app = app
        self.metrics = metrics
        self.access = access_log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope["headers"])
        scope["plumbline.route"] = UNMATCHED
        status = 0

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        metrics = self.metrics
        metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if _client_gone(send):
                log.info(
                    "client went away before its answer was sent",
                    extra={"fields": {"request_id": request_id.decode()}},
                )
                status = 0  # logged as 499: nobody received it
                return
            log.exception("unhandled error in request %s", request_id.decode())
            if status == 0:
                await send_error(
                    send_with_id, 500, "internal server error", request_id=request_id.decode()
                )
        finally:
            metrics.in_flight -= 1
            seconds = time.perf_counter() - start
            route = scope["plumbline.route"]
            # status 0: the client went away before any response was started
            metrics.observe(scope["method"], route, status or 499, seconds)
            if self.access is not None:
                self.access.write(
                    request_id.decode(),
                    scope["method"],
                    scope["path"],
                    route,
                    status or 499,
                    round(seconds, 6),
                    scope["client"][0] if scope.get("client") else None,
                )
