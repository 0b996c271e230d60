"""The fast lane: a request for an endpoint of plumber.R, past most of the ASGI stack.

Most requests a plumber API serves are just that. Through the ASGI stack each one passes
our request-log middleware, the app's dispatch, the proxy, and uvicorn's send() twice
(header checks, Content-Length accounting, the head held back for one write): about a sixth
of the front's CPU per request on the benchmark machine (docs/benchmarks.md). The connection
hands such a request to this lane instead, which runs the very code that shapes the answer
(RequestLogMiddleware.run: request id, access log line, metrics; the Proxy: body limits and
checks, the worker request, the pool's errors, the answer's headers) and writes what
uvicorn's send() would write, in one write.

Taken: a request whose path and method plumber's router gives to an endpoint (our own
paths and Swagger UI come first, as in the app), in an app without access keys or a root
path (their middleware stands before the app), unless `--fast-lane off`. uvicorn's
proxy-headers middleware (X-Forwarded-For and -Proto from a trusted proxy) stands before the
lane as before the app. Everything else goes through the ASGI app, unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from plumbline.runtime.front.proxy import raw_path

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application as ASGIApp

    from plumbline.runtime.front.access_log import RequestLogMiddleware
    from plumbline.runtime.front.app import PlumblineApp


class FastLane:
    """An ASGI app for the requests `takes()` accepts; its send is the cycle's whole-response
    writer (uvicorn's send is a method of the request's cycle: the lane finds the cycle there)."""

    def __init__(self, app: PlumblineApp, request_log: RequestLogMiddleware):
        self._app = app
        self._proxy = app.proxy
        self._request_log = request_log
        self._served: tuple = (None, None)  # (uvicorn config, the lane as it serves it)

    def takes(self, scope) -> bool:
        """Whether this request goes by the lane (then labelled with its route)."""
        endpoint = self._app.r_endpoint(scope["method"], raw_path(scope))
        if endpoint is None:
            return False
        scope["plumbline.route"] = endpoint.route
        scope["plumbline.endpoint"] = endpoint
        return True

    def asgi_app(self, config) -> ASGIApp:
        """The lane behind what uvicorn puts before every app: its proxy-headers middleware
        (config.proxy_headers, with config.forwarded_allow_ips)."""
        served_config, app = self._served
        if served_config is not config:
            app = self
            if config.proxy_headers:
                app = ProxyHeadersMiddleware(self, trusted_hosts=config.forwarded_allow_ips)
            self._served = (config, app)
        return app

    async def __call__(self, scope, receive, send) -> None:
        await self._request_log.run(scope, receive, WholeResponse(send.__self__), self._forward)

    async def _forward(self, scope, receive, send) -> None:
        await self._proxy(scope, receive, send, scope["plumbline.endpoint"])


class WholeResponse:
    """An ASGI send for a response given whole (its start, then one body message): written as
    uvicorn's send() writes it (its default headers first, names in lower case, `connection:
    close` when the connection will close), in one write, and the cycle completed as send()
    completes it. Every sender in the lane gives its body whole (the Proxy, send_error); a
    HEAD request's answer is its head alone, its Content-Length that of the body."""

    __slots__ = ("_cycle", "_start")

    def __init__(self, cycle) -> None:
        self._cycle = cycle
        self._start: dict | None = None

    async def __call__(self, message) -> None:
        cycle = self._cycle
        if cycle.disconnected:
            return
        if message["type"] == "http.response.start":
            cycle.response_started = True
            cycle.waiting_for_100_continue = False  # answered before the body was read
            self._start = message
            return
        start = self._start
        if start is None or message["type"] != "http.response.body" or message.get("more_body"):
            raise RuntimeError("the fast lane writes only whole responses")
        if cycle.flow.write_paused:
            await cycle.flow.drain()
            if cycle.disconnected:
                return
        content = [STATUS_LINE[start["status"]]]
        for name, value in cycle.default_headers:
            content += (name, b": ", value, b"\r\n")
        for name, value in start["headers"]:
            content += (name.lower(), b": ", value, b"\r\n")
        if not cycle.keep_alive:
            content.append(b"connection: close\r\n")
        content.append(b"\r\n")
        if cycle.scope["method"] != "HEAD":
            content.append(message.get("body", b""))
        cycle.transport.write(b"".join(content))
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            cycle.transport.close()
        cycle.on_response()
