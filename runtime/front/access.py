"""Pure-ASGI middleware: a key-only app answers only requests with an allowed API key.

Clients send `Authorization: Key <key>` (as rsconnect and Posit Connect do). The app knows
no key, only the sha256 of each allowed one, from `--access-keys` and `--access-keys-file`;
the file is re-read when it changes (looked at no more than once a second), so the server
grants and revokes keys without restarting replicas. Probes (/livez, /readyz) stay open, and
so does Swagger UI's page when docs are on (GET /__docs__/...: the same files for every app,
nothing of this one's; the page asks for a key, and /openapi.json needs one).
/metrics also takes a scraper's key (`--metrics-keys`), which opens nothing else; it may come
in `X-Plumbline-Metrics-Key`, since the Kubernetes API server's pod proxy drops
`Authorization`. Installed only for key-only apps: public apps pay nothing (their /metrics
handler checks scraper keys itself when there are any, see app.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time

from plumbline.runtime.front.docs import SwaggerDocs
from plumbline.runtime.front.errors import send_error
from plumbline.runtime.front.proxy import raw_path

OPEN_PATHS = frozenset({"/livez", "/readyz"})
METRICS_PATH = "/metrics"
METRICS_KEY_HEADER = b"x-plumbline-metrics-key"
RECHECK_SECONDS = 1.0
_READ = frozenset({"GET", "HEAD"})
log = logging.getLogger("plumbline.server")


class KeyFile:
    """The allowed digests in a file, cached until the file changes: its inode (a file
    replaced by a rename, or a Kubernetes Secret volume whose `..data` link the kubelet
    swapped), mtime or size."""

    def __init__(self, path: str):
        self.path = path
        self._stamp: tuple[int, float, int] | None = None
        self._checked = 0.0
        self.hashes: frozenset[str] = frozenset()

    def current(self) -> frozenset[str]:
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            try:
                st = os.stat(self.path)
                stamp = (st.st_ino, st.st_mtime, st.st_size)
                if stamp != self._stamp:
                    with open(self.path, encoding="ascii") as f:
                        self.hashes = frozenset(
                            line.strip().lower()
                            for line in f
                            if line.strip() and not line.startswith("#")
                        )
                    self._stamp = stamp
            except (OSError, UnicodeDecodeError) as exc:
                if self.hashes or self._stamp is not None:
                    log.warning(
                        {
                            "message": "access keys file unreadable; refusing every key",
                            "file": self.path,
                            "error": str(exc),
                        }
                    )
                self.hashes, self._stamp = frozenset(), None
        return self.hashes


class KeyAccess:
    def __init__(
        self,
        app,
        hashes: tuple[str, ...] = (),
        keys_file: str = "",
        metrics_hashes: tuple[str, ...] = (),
        docs: bool = False,
    ):
        self.app = app
        self.docs = docs
        self.fixed = frozenset(hashes)
        self.file = KeyFile(keys_file) if keys_file else None
        self.metrics = frozenset(metrics_hashes)

    def allowed(self, key: bytes) -> bool:
        digest = hashlib.sha256(key).hexdigest()
        if digest in self.fixed:
            return True
        return self.file is not None and digest in self.file.current()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The path as app.py routes it (still percent-encoded): /%6Civez is no probe there.
        path = raw_path(scope)
        if path in OPEN_PATHS or (
            self.docs and scope["method"] in _READ and SwaggerDocs.handles(path)
        ):
            await self.app(scope, receive, send)  # answered by app.py, never by R
            return
        if (
            path == METRICS_PATH
            and self.metrics
            and carries_metrics_key(scope["headers"], self.metrics)
        ):
            await self.app(scope, receive, send)
            return
        key = _key(scope["headers"])
        if key is None:
            await send_error(
                send,
                401,
                "this API needs a key: send `Authorization: Key <key>`",
                headers=[(b"www-authenticate", b"Key")],
            )
            return
        if not self.allowed(key):
            await send_error(send, 403, "this key may not call this API")
            return
        # The key is the caller's credential for the server too: the app's R code never sees it.
        # Changed in place: the scope carries the matched route back out to the metrics.
        scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"authorization"]
        await self.app(scope, receive, send)


def carries_metrics_key(headers, digests: frozenset[str]) -> bool:
    """A scraper's key (one of these sha256 digests) is in `X-Plumbline-Metrics-Key` or
    `Authorization: Key <key>`."""
    for name, value in headers:
        if name == METRICS_KEY_HEADER:
            key = value.strip()
        elif name == b"authorization":
            key = _key([(name, value)]) or b""
        else:
            continue
        if key and hashlib.sha256(key).hexdigest() in digests:
            return True
    return False


def _key(headers) -> bytes | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, key = value.strip().partition(b" ")
            if scheme.lower() in (b"key", b"bearer") and key.strip():
                return key.strip()
            return None
    return None
