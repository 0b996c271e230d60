"""Pure-ASGI middleware: the app is reached under a path prefix (`--root-path`), and maybe
under aliases of it too (`--root-path-aliases`, a vanity path).

A proxy in front (the local ingress) may strip the prefix or (a Kubernetes Ingress without a
rewrite) pass it on: requests that carry it have it removed, so an unchanged plumber.R sees
/parity whether the client called /content/my-api/parity through one or the other. Nothing
the app answers names its prefix (the docs redirect and the OpenAPI document's server URL are
relative), so a prefix the proxy stripped, or one the app was never told of, cannot be
misnamed.
"""

from __future__ import annotations


class RootPath:
    def __init__(self, app, root_path: str, aliases: tuple[str, ...] = ()):
        self.app = app
        # Longest first: of /a and /a/b, a request for /a/b/x came by /a/b.
        self._prefixes = sorted({p for p in (root_path, *aliases) if p}, key=len, reverse=True)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            prefix = next(
                (p for p in self._prefixes if path == p or path.startswith(p + "/")), None
            )
            if prefix is not None:
                inner = dict(scope, path=path[len(prefix) :] or "/")
                raw, raw_prefix = inner.get("raw_path"), prefix.encode("latin-1")
                if raw is not None and raw.startswith(raw_prefix):
                    inner["raw_path"] = raw[len(raw_prefix) :] or b"/"
                inner["root_path"] = prefix
                try:
                    await self.app(inner, receive, send)
                finally:  # the route the app matched, for the metrics and the access log
                    if "plumbline.route" in inner:
                        scope["plumbline.route"] = inner["plumbline.route"]
                return
        await self.app(scope, receive, send)
