"""Requests on the wire exactly as a test writes them: a small HTTP/1.1 client over a socket.

A full client normalises the target before sending it (httpx sends `//echo/w` as `/w` and
`/static/../plumber.R` as `/plumber.R`), so a test of such a path would compare two answers
to a path neither server saw. Here the request line carries the path byte for byte, and
the answer is read as sent: status, every header line in order (repeated ones too, raw
bytes), and the body (by Content-Length, chunked, or to the end of the connection). httpx
only encodes bodies (form, multipart, JSON, streamed chunks) and the headers they need.

Each request has a connection of its own (`Connection: close`) and asks for no compression,
so bodies compare byte for byte and nothing a previous answer left on a connection (httpuv
writes a body after a HEAD answer) can spoil the next one.
"""

from __future__ import annotations

import json as jsonlib
import socket
from collections.abc import Iterable, Iterator
from http.cookies import SimpleCookie

import httpx

TIMEOUT = 60.0
_NO_BODY_STATUSES = (204, 304)


class Headers:
    """Response headers as received: case-insensitive lookups over the raw lines."""

    def __init__(self, raw: list[tuple[bytes, bytes]]):
        self.raw = raw

    def get_list(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [value.decode("latin-1") for k, value in self.raw if k.lower() == key]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_list(name)
        return ", ".join(values) if values else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_list(name))

    def names(self) -> list[str]:
        """Every header name, lower case, once, in the order first seen."""
        return list(dict.fromkeys(k.decode("latin-1").lower() for k, _ in self.raw))

    def items(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw]

    def __repr__(self) -> str:
        return repr(self.items())


class Response:
    """An answer as received; `complete` is False when the body ended before the length
    its Content-Length announced (the connection closed first)."""

    def __init__(
        self, status_code: int, reason: str, headers: Headers, content: bytes, complete: bool = True
    ):
        self.status_code, self.reason_phrase = status_code, reason
        self.headers, self.content, self.complete = headers, content, complete

    @property
    def text(self) -> str:
        content_type = self.headers.get("content-type") or ""
        charset = next(
            (
                part.split("=", 1)[1].strip().strip('"')
                for part in content_type.split(";")[1:]
                if part.strip().lower().startswith("charset=")
            ),
            "utf-8",
        )
        return self.content.decode(charset, "replace")

    def json(self):
        return jsonlib.loads(self.content)

    @property
    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for line in self.headers.get_list("set-cookie"):
            parsed = SimpleCookie()
            parsed.load(line)
            jar.update({name: morsel.value for name, morsel in parsed.items()})
        return jar

    def __repr__(self) -> str:
        return f"<Response {self.status_code} {self.headers!r} {self.content[:200]!r}>"


def encode(
    method: str,
    target: str,
    host: str,
    *,
    content=None,
    data=None,
    files=None,
    json=None,
    headers=None,
) -> tuple[bytes, Iterable[bytes]]:
    """The request head, with `target` exactly as given, and the body's bytes on the wire."""
    if not target.startswith("/"):
        raise ValueError(f"a request target starts with /: {target!r}")
    built = httpx.Request(
        method,
        f"http://{host}/",
        content=content,
        data=data,
        files=files,
        json=json,
        headers=headers,
    )
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1")]
    names = {name.lower() for name, _ in built.headers.raw}
    for name, value in built.headers.raw:
        lines.append(name + b": " + value)
    for name, value in ((b"accept", b"*/*"), (b"user-agent", b"plumbline-compat")):
        if name not in names:
            lines.append(name + b": " + value)
    lines.append(b"connection: close")  # one request per connection
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    if built.headers.get("transfer-encoding", "").lower() == "chunked":
        return head, _chunked(built.stream)
    return head, [built.read()]


def _chunked(stream: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in stream:
        if chunk:
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
    yield b"0\r\n\r\n"


def request(
    port: int,
    method: str,
    target: str,
    *,
    follow_redirects: bool = False,
    timeout: float = TIMEOUT,
    **body,
) -> Response:
    """One request to 127.0.0.1:port; `body` takes httpx's content/data/files/json/headers."""
    if follow_redirects:
        raise ValueError("the wire client never follows redirects: compare the redirect itself")
    head, chunks = encode(method, target, f"127.0.0.1:{port}", **body)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head)
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError) as refused:
            # A server may answer before the body is all sent (413) and close: read it.
            try:
                return _read_response(sock.makefile("rb"), method)
            except OSError:
                raise refused from None
        return _read_response(sock.makefile("rb"), method)


def _read_response(stream, method: str) -> Response:
    status_line = stream.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection without an answer")
    version, status, *reason = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if not version.startswith("HTTP/1."):
        raise ConnectionError(f"not an HTTP/1 status line: {status_line!r}")
    raw: list[tuple[bytes, bytes]] = []
    while (line := stream.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.rstrip(b"\r\n").partition(b":")
        raw.append((name.strip(), value.strip()))
    headers = Headers(raw)
    code = int(status)
    complete = True
    if method == "HEAD" or code in _NO_BODY_STATUSES or 100 <= code < 200:
        content = b""
    elif (headers.get("transfer-encoding") or "").lower() == "chunked":
        content = _read_chunked(stream)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        content = stream.read(length)
        complete = len(content) == length  # httpuv can promise more than it sends
    else:
        content = stream.read()
    return Response(code, reason[0] if reason else "", headers, content, complete)


def _read_chunked(stream) -> bytes:
    parts = []
    while True:
        size = int(stream.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)
        parts.append(stream.read(size))
        stream.readline()  # the CRLF after each chunk
