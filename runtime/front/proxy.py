"""Forward a request to the R worker pool and its answer back to the client (pure ASGI).

Before anything reaches R: bodies over max-body get 413 (checked against Content-Length and
again while reading, for chunked uploads), and a Content-Type: application/json body that
jsonlite could not parse gets 400 for endpoints that would parse it (plumber answers 500
there). Not when plumber.R has filters or a `#* @plumber` block: plumber parses the body
only after the filters, and a filter (say, a login check) must get to answer first. A
request whose body did not arrive whole (the client hung up, or stopped sending past
body-timeout) never reaches R: it is logged at info and counted
(plumbline_requests_incomplete_total). Pool failures become JSON errors: PoolFull 503
(+Retry-After), WorkerTimeout 504, WorkerDied 502.
"""

from __future__ import annotations

import json
import logging
import re

from plumbline.endpoints import Endpoint
from plumbline.runtime.front.errors import send_error
from plumbline.runtime.front.metrics import FrontStats
from plumbline.runtime.pool.pool import PoolFull, WorkerDied, WorkerTimeout
from plumbline.runtime.protocol import FrameTooLarge, WorkerRequest

log = logging.getLogger("plumbline.proxy")

# Connection-level headers are the server's business, not R's; we set Content-Length.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
_JSON_TYPES = frozenset({"application/json"})
# What uvicorn refuses to write (it would then drop the connection): skip such headers.
_BAD_HEADER_NAME = re.compile(rb'[\x00-\x1f\x7f()<>@,;:\[\]={} \t\\"]')
_BAD_HEADER_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class BodyTooLarge(Exception):
    pass


class BodyIncomplete(Exception):
    """The client went away (or stopped sending) before its request body was complete."""

    def __init__(self, received: int):
        super().__init__(received)
        self.received = received


def raw_path(scope) -> str:
    """The path as sent, still percent-encoded: what httpuv gives plumber as PATH_INFO."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else scope["path"]


class Proxy:
    def __init__(
        self, pool, max_body: int, check_json: bool, stats: FrontStats, retry_after: int = 1
    ):
        self.pool = pool
        self.stats = stats
        self.max_body = max_body
        self.check_json = check_json
        self._retry_after = str(retry_after).encode()

    async def __call__(self, scope, receive, send, endpoint: Endpoint | None) -> None:
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await send_error(send, 400, "invalid Content-Length header")
                    return
                if int(value) > self.max_body:
                    await self._too_large(send)
                    return
            elif name == b"content-type":
                content_type = value
        try:
            body = await self._read_body(receive)
        except BodyTooLarge:
            await self._too_large(send)
            return
        except BodyIncomplete as exc:
            await self._incomplete(scope, send, exc.received)
            return
        if (
            body
            and self.check_json
            and endpoint is not None
            and _parses_json(endpoint, content_type)
        ):
            problem = _json_problem(body)
            if problem:
                await send_error(send, 400, "request body is not valid JSON", detail=problem)
                return

        client = scope.get("client") or ("127.0.0.1", 0)
        server = scope.get("server") or ("127.0.0.1", 0)
        request = WorkerRequest(
            method=scope["method"],
            path=raw_path(scope),
            query_string=scope["query_string"].decode("latin-1"),
            headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]],
            body=body,
            remote_addr=client[0],
            remote_port=client[1] or 0,
            server_name=server[0],
            server_port=server[1] or 0,
            scheme=scope.get("scheme", "http"),
        )
        try:
            # the route (bounded: the app's endpoints) says how long requests take in R
            response = await self.pool.call(request, (request.method, scope.get("plumbline.route")))
        except FrameTooLarge as exc:  # the limits (settings.check_limits) keep this away
            await send_error(send, 431, "request too large for a worker", detail=str(exc))
            return
        except PoolFull as exc:
            await send_error(
                send,
                503,
                "no R worker available, retry later",
                detail=str(exc),
                headers=[(b"retry-after", self._retry_after)],
            )
            return
        except WorkerTimeout as exc:
            await send_error(send, 504, "the request took longer than the timeout", detail=str(exc))
            return
        except WorkerDied as exc:
            await send_error(
                send, 502, "the R worker died while handling the request", detail=str(exc)
            )
            return

        if not 100 <= response.status <= 599:
            log.error(
                {
                    "message": "the app returned an invalid HTTP status",
                    "status": response.status,
                    "path": request.path,
                }
            )
            await send_error(send, 502, "the app returned an invalid HTTP status")
            return
        headers = []
        for name, value in response.headers:
            if name.lower() in _HOP_BY_HOP:
                continue
            name_bytes, value_bytes = _header_bytes(name), _header_bytes(value)
            if _BAD_HEADER_NAME.search(name_bytes) or _BAD_HEADER_VALUE.search(value_bytes):
                log.warning(
                    {
                        "message": "dropped a response header HTTP cannot carry",
                        "header": name,
                        "path": request.path,
                    }
                )
                continue
            headers.append((name_bytes, value_bytes))
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _read_body(self, receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # R must never run a handler on part of a body (nor on none of it)
                raise BodyIncomplete(size)
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise BodyTooLarge
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, send) -> None:
        # The connection stays open: a client streaming its body reads the 413 once it has
        # sent it (closing now would break its pipe first); the rest is read and dropped.
        await send_error(send, 413, "request body too large", max_body=self.max_body)

    async def _incomplete(self, scope, send, received: int) -> None:
        reason = scope.get("plumbline.incomplete", "disconnect")
        self.stats.incomplete[reason] += 1
        log.info(
            {
                "message": "request body incomplete; not sent to R",
                "reason": reason,
                "method": scope["method"],
                "path": raw_path(scope),
                "body_bytes_received": received,
            }
        )
        if reason == "body_timeout":
            # The connection layer has answered 408; this records it in the access log.
            await send_error(send, 408, "request body not received in time")


def _parses_json(endpoint: Endpoint, content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
    if media not in _JSON_TYPES:
        return False
    # plumber's default parsers (no @parser line) include json
    return not endpoint.parsers or "json" in endpoint.parsers


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _json_problem(body: bytes) -> str | None:
    """None if jsonlite would parse body, else what is wrong and where.

    Python's json is the check, loosened where jsonlite (yajl) is lenient: a leading UTF-8
    BOM and /* */ or // comments are accepted, so only bodies plumber itself cannot parse
    get the 400.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start})"
    problem = _loads_problem(text)
    if problem and ("/*" in text or "//" in text):
        without = _strip_comments(text)
        if without is not None and _loads_problem(without) is None:
            return None
    return problem


def _loads_problem(text: str) -> str | None:
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return str(exc) or "nested too deeply"
    return None


def _strip_comments(text: str) -> str | None:
    """text with /* */ and // comments outside strings blanked; None if one is unclosed."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return None
            out.append(" ")
            i = end + 2
        elif text.startswith("//", i):
            end = text.find("\n", i)
            out.append(" ")
            i = n if end < 0 else end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _header_bytes(text: str) -> bytes:
    # httpuv writes R's strings as their UTF-8 bytes; so do we (res$setHeader("X", "café"))
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from undecodable bytes
        return text.encode("utf-8", "replace")
