"""Liveness and readiness, answered by Python alone (never by R, never waiting on R).

/livez says the server process is alive: 200 as long as the event loop runs, even when every
worker is busy. /readyz says "send me traffic": 200 when at least one worker is loaded and
the server is not draining, otherwise 503 with each worker's state.
"""
from __future__ import annotations

import json

_JSON = (b"content-type", b"application/json")
_LIVE_BODY = b'{"status":"alive"}'


class Health:
    def __init__(self, pool):
        self._pool = pool
        self.draining = False  # set once on SIGTERM/SIGINT; never cleared

    @property
    def ready(self) -> bool:
        return not self.draining and self._pool.ready

    async def livez(self, scope, receive, send) -> None:
        await _send(send, 200, _LIVE_BODY)

    async def readyz(self, scope, receive, send) -> None:
        if self.ready:
            await _send(send, 200, b'{"status":"ready"}')
            return
        workers = [{"id": w.get("id"), "pid": w.get("pid"), "state": w.get("state")}
                   for w in self._pool.snapshot()]
        reason = "draining" if self.draining else "no worker ready"
        body = json.dumps({"error": "not ready", "reason": reason, "workers": workers},
                          separators=(",", ":")).encode()
        await _send(send, 503, body)


async def _send(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON, (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
