"""One client connection: uvicorn's httptools protocol with a production front's limits.

uvicorn's own protocol waits as long as a client likes for a request, reads a head of any
size and waits for a body forever. This subclass adds, at almost no cost per request (a few
attribute updates; no timer at all for a request that arrives whole in one read):

- limits on the head, checked before the app sees the request: the URL (414), the number
  of header fields and their total size (431). A head still growing past the sum of the
  limits is refused while it arrives, so no client makes the server buffer more than that,
  and nothing a client sends can make a frame to a worker too large (see settings.py);
- a deadline for the head: a connection that sends no request within header-timeout is
  closed; one that started a head and does not finish it in time gets 408 (slowloris);
- a deadline for each read of a body: no body byte for body-timeout seconds gets 408, and
  the app sees the client gone (the proxy then never sends the request to R);
- a maximum number of open connections: one beyond it is answered at once and closed,
  /livez and /readyz as usual (probes keep working when clients have used up the budget),
  anything else 503; past a further reserve of OVERFLOW_RESERVE, closed at accept;
- while the server drains, every response says `Connection: close`, so keep-alive clients
  open their next connection elsewhere;
- when the server stops, a connection that has not had its first request yet gets
  FIRST_REQUEST_GRACE seconds for it (answered, with `Connection: close`) before it is
  closed: uvicorn closes it at once, and a client whose connect had just been accepted then
  loses its request to a reset.

The keep-alive idle timeout is uvicorn's own (`timeout_keep_alive`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from plumbline.runtime.front.errors import error_body
from plumbline.runtime.front.health import PATHS as HEALTH_PATHS
from plumbline.runtime.front.health import Health
from plumbline.runtime.front.metrics import FrontStats
from plumbline.runtime.front.one_write import write_head_with_body

log = logging.getLogger("plumbline.connection")

# Connections past max-connections that are still answered (probes) before closing at accept.
OVERFLOW_RESERVE = 64
# How long such a connection may take to send its request line.
_OVERFLOW_DEADLINE = 2.0
_OVERFLOW_MAX_LINE = 8192
# Slack over the head limits for the request line, separators and line ends.
_HEAD_SLACK = 64 * 1024
# How long a connection accepted before the server stopped may take to send its request.
FIRST_REQUEST_GRACE = 1.0


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_url_length: int = 8192
    header_timeout: float = 10.0  # 0 = none
    body_timeout: float = 30.0  # 0 = none
    max_connections: int = 1000


class _Refused(Exception):
    """Stops httptools in the middle of a head the server refuses."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    # Set on the subclass protocol_class() makes for one server.
    limits: Limits
    health: Health
    stats: FrontStats
    _head_cap: int

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._overflow = False  # beyond max-connections: answered by _overflow_data
        # set while it counts in stats.overflow_open
        self._overflow_timer: asyncio.TimerHandle | None = None
        self._overflow_buffer = b""
        self._head_open = False  # a request head has begun and is not complete
        self._head_size = 0  # header names and values of the open head
        self._head_received = 0  # bytes read while the head is open (coarse bound)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_pending = False  # head complete, body not yet
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_at = 0.0  # when the last body bytes arrived
        self._refusal: tuple | None = None
        self._running = None  # the cycle whose app task runs (not the pipelined ones after it)
        self._stopping = False  # the server stops: the next request is the last

    # ---- connection -------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        stats = self.stats
        if len(self.connections) >= self.limits.max_connections:
            self._overflow = True
            self.transport = transport
            stats.refused["too_many_connections"] += 1
            if stats.overflow_open >= OVERFLOW_RESERVE:
                transport.close()
                return
            stats.overflow_open += 1
            self._overflow_timer = self.loop.call_later(_OVERFLOW_DEADLINE, transport.close)
            return
        super().connection_made(transport)
        stats.open_connections += 1
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._overflow:
            if self._overflow_timer is not None:
                self._overflow_timer.cancel()
                self._overflow_timer = None
                self.stats.overflow_open -= 1
            return
        self.stats.open_connections -= 1
        # uvicorn marks only the last request it parsed as disconnected: one running before
        # it (pipelining) would write to the closed transport and log a traceback.
        running = self._running
        if running is not None and not running.response_complete:
            running.disconnected = True
            running.message_event.set()
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server stops. uvicorn closes a connection with no request in progress at
        once; one that never had a request may be a client that connected a moment ago and
        whose request is on its way, so it gets a short grace for it instead."""
        if self.cycle is not None or self.transport.is_closing():
            super().shutdown()
            return
        self._stopping = True
        self.loop.call_later(FIRST_REQUEST_GRACE, self._grace_over)

    def _grace_over(self) -> None:
        if self.cycle is None and not self._head_open and not self.transport.is_closing():
            self.transport.close()  # no request came; a head on its way has its own deadline

    def data_received(self, data: bytes) -> None:
        if self._overflow:
            self._overflow_data(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if (
            not self._head_open
            and not self._body_pending
            and (self.cycle is None or self.cycle.response_complete)
        ):
            return  # still no request (blank lines): the idle deadline stands
        self._unset_keepalive_if_required()
        if self._head_open:
            self._head_received += len(data)
            if self._head_received > self._head_cap:
                self._refuse(*self._head_refusal())
            elif self._head_timer is None and self.limits.header_timeout:
                self._head_timer = self.loop.call_later(
                    self.limits.header_timeout, self._head_timed_out
                )
        elif self._body_pending and self._body_timer is None and self.limits.body_timeout:
            self._body_at = self.loop.time()
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def _start_asgi_task(self, cycle, app) -> None:
        self._running = cycle
        write_head_with_body(cycle)
        super()._start_asgi_task(cycle, app)

    def _arm_idle(self) -> None:
        """No request yet on a new connection (or only blank lines): close it after
        header-timeout, as uvicorn closes an idle keep-alive connection."""
        if self.limits.header_timeout and self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.limits.header_timeout, self.timeout_keep_alive_handler
            )

    # ---- parser callbacks -------------------------------------------------------------

    # on_message_begin and on_message_complete are uvicorn's own (0.54) with our lines added,
    # not calls of super(): they run for every request.

    def on_message_begin(self) -> None:
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        self._head_open = True
        self._head_size = 0
        self._head_received = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._head_open = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        limits = self.limits
        if (
            len(self.url) > limits.max_url_length
            or self._head_size > limits.max_header_bytes
            or len(self.headers) > limits.max_headers
        ):
            self._refusal = self._head_refusal()
            raise _Refused
        super().on_headers_complete()
        self._body_pending = True  # until on_message_complete, at once for a bodiless one
        if (self.health.draining or self._stopping) and self.cycle is not None:
            self.cycle.keep_alive = False  # Connection: close, then the connection closes

    def on_body(self, body: bytes) -> None:
        self._body_at = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_pending = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if (
            self.parser.should_upgrade() and self._should_upgrade()
        ) or self.cycle.response_complete:
            return
        self.cycle.more_body = False
        self.cycle.message_event.set()

    # ---- refusals ---------------------------------------------------------------------

    def _head_refusal(self) -> tuple:
        limits = self.limits
        if len(self.url) > limits.max_url_length:
            return (
                414,
                "url_too_long",
                "request URL too long",
                {"max_url_length": limits.max_url_length},
            )
        return (
            431,
            "header_too_large",
            "request header fields too large",
            {"max_header_bytes": limits.max_header_bytes, "max_headers": limits.max_headers},
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._head_open or self.transport.is_closing():
            return
        if self.flow.read_paused:  # a pipelined request waits for the one before it
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout, self._head_timed_out
            )
            return
        self._refuse(
            408,
            "header_timeout",
            "request head not received in time",
            {"header_timeout": self.limits.header_timeout},
        )

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if not self._body_pending or self.transport.is_closing():
            return
        timeout = self.limits.body_timeout
        idle = self.loop.time() - self._body_at
        if self.flow.read_paused or idle < timeout:  # paused: the app has not read it yet
            self._body_timer = self.loop.call_later(
                timeout if self.flow.read_paused else timeout - idle, self._body_timed_out
            )
            return
        cycle = self.cycle
        if cycle is None or cycle.response_started:
            self.transport.close()  # answered already (say 413); the rest is not wanted
            return
        # The app (the proxy, reading the body) sees the client gone and sends nothing to R.
        cycle.scope["plumbline.incomplete"] = "body_timeout"  # type: ignore[typeddict-unknown-key]
        cycle.disconnected = True
        cycle.message_event.set()
        self._refuse(
            408,
            "body_timeout",
            "request body not received in time",
            {"body_timeout": timeout},
            cycle,
        )

    def _refuse(self, status: int, reason: str, message: str, detail: dict, cycle=None) -> None:
        """Answer `status` and close; `cycle` is the refused request's, if it has one."""
        self.stats.refused[reason] += 1
        log.info(
            "request refused",
            extra={
                "fields": {
                    "status": status,
                    "reason": reason,
                    "client": self.client[0] if self.client else None,
                }
            },
        )
        running = self._running
        if running is not None and running is not cycle and not running.response_complete:
            # A pipelined request before this one is still being answered: an answer now
            # would be read as that one's. Close; the client sees its requests unanswered.
            self.transport.close()
            return
        self._write_and_close(status, error_body(message, **detail), ())

    def _write_and_close(self, status: int, body: bytes, headers, head_only: bool = False) -> None:
        parts = [
            STATUS_LINE[status],
            b"content-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n",
        ]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        parts.append(b"\r\n")
        if not head_only:
            parts.append(body)
        self.transport.write(b"".join(parts))
        self.transport.close()

    # ---- beyond max-connections -------------------------------------------------------

    def _overflow_data(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self._overflow_buffer += data
        end = self._overflow_buffer.find(b"\r\n")
        if end < 0:
            if len(self._overflow_buffer) > _OVERFLOW_MAX_LINE:
                self.transport.close()
            return
        method, _, rest = self._overflow_buffer[:end].partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0].decode("latin-1")
        if method in (b"GET", b"HEAD") and path in HEALTH_PATHS:
            status, body = self.health.answer(path)
            headers: tuple = ((b"cache-control", b"no-store"),)
        else:
            status = 503
            body = error_body(
                "too many connections, retry later", max_connections=self.limits.max_connections
            )
            headers = ((b"retry-after", b"1"),)
        self._write_and_close(status, body, headers, head_only=method == b"HEAD")


def protocol_class(limits: Limits, health: Health, stats: FrontStats) -> type:
    """The protocol class for one server (give it to uvicorn.Config as `http`)."""
    return type(
        "PlumblineHttpProtocol",
        (LimitedHttpToolsProtocol,),
        {
            "limits": limits,
            "health": health,
            "stats": stats,
            "_head_cap": (
                limits.max_header_bytes
                + limits.max_url_length
                + 4 * limits.max_headers
                + _HEAD_SLACK
            ),
        },
    )
