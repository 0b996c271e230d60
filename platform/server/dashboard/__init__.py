"""The web dashboard: static files served by `plumbline server` at `/`.

Plain JavaScript, CSS and hand-drawn SVG, all in this package (static/): the page loads
nothing from anywhere else, and its Content-Security-Policy says so to the browser. It
talks only to the server's public HTTP API (/__api__/...), signed in with a session cookie
(sessions.py), like any other client.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STATIC = Path(__file__).with_name("static")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
HEADERS = {
    # Only this origin's scripts, styles and images; no frames, plugins or foreign forms.
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # revalidated (ETag): a new server version shows at once
}


class _File:
    def __init__(self, path: Path):
        self.body = path.read_bytes()
        self.type = TYPES[path.suffix]
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'

    def response(self, request: Request) -> Response:
        headers = {**HEADERS, "etag": self.etag}
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.type, headers=headers)


def _load() -> dict[str, _File]:
    """Every file the dashboard serves, read once: nothing else on disk can be asked for."""
    return {p.name: _File(p) for p in sorted(STATIC.iterdir()) if p.suffix in TYPES}


FILES = _load()


async def index(request: Request) -> Response:
    return FILES["index.html"].response(request)


async def static(request: Request) -> Response:
    found = FILES.get(request.path_params["name"])
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return found.response(request)


async def favicon(request: Request) -> Response:
    return FILES["favicon.svg"].response(request)


ROUTES = [
    Route("/", index),
    Route("/static/{name}", static),
    Route("/favicon.ico", favicon),
]
