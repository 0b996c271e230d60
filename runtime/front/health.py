"""Liveness and readiness, answered by Python alone (never by R, never waiting on R).

/livez says the server process is alive: 200 as long as the event loop runs, even when every
worker is busy. /readyz says "send me traffic": 200 when at least one worker is loaded and
the server is not draining, otherwise 503 with each worker's state (a slot waiting to
start a worker again after crashes shows as "backoff").

`answer()` is the same reply without ASGI: the connection layer uses it to answer probes
on a connection beyond the server's connection limit (runtime/front/connection.py).
"""

from __future__ import annotations

import json

from plumbline.runtime.front.responses import send_bytes

_JSON = (b"content-type", b"application/json")
_LIVE_BODY = b'{"status":"alive"}'
_READY_BODY = b'{"status":"ready"}'
PATHS = frozenset({"/livez", "/readyz"})


class Health:
    def __init__(self, pool):
        self._pool = pool
        self.draining = False  # set once on SIGTERM/SIGINT; never cleared

    @property
    def ready(self) -> bool:
        return not self.draining and self._pool.ready

    def answer(self, path: str) -> tuple[int, bytes]:
        """Status and JSON body of /livez or /readyz."""
        if path == "/livez":
            return 200, _LIVE_BODY
        if self.ready:
            return 200, _READY_BODY
        workers = [
            {"id": w.get("id"), "pid": w.get("pid"), "state": w.get("state")}
            for w in self._pool.snapshot()
        ]
        reason = "draining" if self.draining else "no worker ready"
        return 503, json.dumps(
            {"error": "not ready", "reason": reason, "workers": workers}, separators=(",", ":")
        ).encode()

    async def livez(self, scope, receive, send) -> None:
        await _send(send, 200, _LIVE_BODY)

    async def readyz(self, scope, receive, send) -> None:
        await _send(send, *self.answer("/readyz"))


async def _send(send, status: int, body: bytes) -> None:
    await send_bytes(send, status, body, [_JSON, (b"cache-control", b"no-store")])
