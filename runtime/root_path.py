"""Pure-ASGI middleware: the app is reached under a path prefix (`--root-path`).

A proxy in front (the local ingress) may strip the prefix or (a Kubernetes Ingress without a
rewrite) pass it on: requests that carry it have it removed, so an unchanged plumber.R sees
/parity whether the client called /content/my-api/parity through one or the other. The
prefix goes into scope["root_path"] for the docs page's links.
"""

from __future__ import annotations


class RootPath:
    def __init__(self, app, root_path: str):
        self.app = app
        self.root_path = root_path
        self._raw = root_path.encode("latin-1")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == self.root_path or path.startswith(self.root_path + "/"):
                inner = dict(scope, path=path[len(self.root_path) :] or "/")
                raw = inner.get("raw_path")
                if raw is not None and raw.startswith(self._raw):
                    inner["raw_path"] = raw[len(self._raw) :] or b"/"
                inner["root_path"] = self.root_path
                try:
                    await self.app(inner, receive, send)
                finally:  # the route the app matched, for the metrics and the access log
                    if "plumbline.route" in inner:
                        scope["plumbline.route"] = inner["plumbline.route"]
                return
            scope["root_path"] = self.root_path
        await self.app(scope, receive, send)
