"""The ASGI application: plumbline's own endpoints in Python, everything else to R.

Order, per request: our endpoints (/livez, /readyz, /metrics, and /health and /openapi.json
unless plumber.R defines GET on them), Swagger UI, then plumber's router as R reported it
(routing.py): an endpoint goes to a worker (labelled with its route); a static folder
(@assets, pr_static()) is served from Python; what no endpoint matches goes to a worker
when R code may answer it (filters, hooks, handlers, a mounted router: see
routing.r_sees_everything), else gets plumber's 404/405 from Python. With such R code,
filters may guard assets too (as with auth): a request for a path that passed our traversal
checks then goes to R, so the filters run as in plumber.

Pure ASGI, no framework router: the proxy path costs one dict lookup, one route match and a
few attribute reads on top of the R call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plumbline.endpoints import PlumberFile
from plumbline.runtime.front import openapi
from plumbline.runtime.front.access import KeyAccess, carries_metrics_key
from plumbline.runtime.front.access_log import AccessLog, RequestLogMiddleware
from plumbline.runtime.front.assets import AssetFolders
from plumbline.runtime.front.docs import SwaggerDocs
from plumbline.runtime.front.errors import PLUMBER_METHOD_NOT_ALLOWED, PLUMBER_NOT_FOUND, send_error
from plumbline.runtime.front.health import Health
from plumbline.runtime.front.metrics import Metrics
from plumbline.runtime.front.proxy import Proxy, raw_path
from plumbline.runtime.front.responses import send_bytes
from plumbline.runtime.front.root_path import RootPath
from plumbline.runtime.front.routing import Router, r_sees_everything

_READ_METHODS = frozenset({"GET", "HEAD"})
_VERB_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class AppOptions:
    max_body: int = 10 * 1024**2
    docs: bool = True
    access_log: bool = True
    root_path: str = ""
    root_path_aliases: tuple[str, ...] = ()
    access: str = "public"
    access_keys: tuple[str, ...] = ()
    access_keys_file: str = ""
    metrics_keys: tuple[str, ...] = ()


class PlumblineApp:
    def __init__(self, spec: PlumberFile, pool, options: AppOptions):
        self.router = Router(spec)
        self.health = Health(pool)
        self.metrics = Metrics(pool)
        self.forward_unmatched = r_sees_everything(spec)
        self.proxy = Proxy(
            pool, options.max_body, check_json=not self.forward_unmatched, stats=self.metrics.front
        )
        self.assets = AssetFolders(spec.assets, Path(spec.path).parent) if spec.assets else None
        self.docs = SwaggerDocs() if options.docs else None
        # A public app whose /metrics a scraper reads with a key (the server's apps): nobody
        # else reads it. A key-only app's KeyAccess has checked every request already.
        self._metrics_keys = frozenset(options.metrics_keys if options.access != "keys" else ())
        self._openapi = openapi.render(
            spec, prefixed=bool(options.root_path or options.root_path_aliases)
        )
        system = {
            "/livez": self.health.livez,
            "/readyz": self.health.readyz,
            "/health": self.health.readyz,
            "/metrics": self._metrics,
            "/openapi.json": self._openapi_json,
        }
        for path in ("/health", "/openapi.json"):  # the app's own wins
            if self.router.has_get(path):
                del system[path]
        if not options.docs:
            del system["/openapi.json"]
        self.system = system

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return  # no websockets; lifespan is handled by the server module
        path = raw_path(scope)
        handler = self.system.get(path)
        if handler is not None:
            scope["plumbline.route"] = path
            if scope["method"] not in _READ_METHODS:
                await send_error(
                    send, 405, PLUMBER_METHOD_NOT_ALLOWED, headers=[(b"allow", b"GET, HEAD")]
                )
                return
            await handler(scope, receive, send)
            return
        if self.docs is not None and self.docs.handles(path):
            scope["plumbline.route"] = "/__docs__/"
            await self.docs(scope, receive, send)
            return
        match = self.router.match(scope["method"], path)
        if match.endpoint is not None:
            scope["plumbline.route"] = match.endpoint.route
            await self.proxy(scope, receive, send, match.endpoint)
            return
        if match.assets is not None and self.assets is not None:
            scope["plumbline.route"] = match.route
            folder = self.assets.folder(match.assets)
            if not self.forward_unmatched:
                await self.assets.serve(scope, receive, send, folder, match.rest)
            elif self.assets.is_safe(folder, match.rest):  # filters (auth, ...) see them too
                await self.proxy(scope, receive, send, None)
            else:
                await send_error(send, 403, "forbidden path")
            return
        if self.forward_unmatched or match.in_r:
            await self.proxy(scope, receive, send, None)
        elif match.allowed:
            allow = ", ".join(v for v in _VERB_ORDER if v in match.allowed)
            await send_error(
                send, 405, PLUMBER_METHOD_NOT_ALLOWED, headers=[(b"allow", allow.encode())]
            )
        else:
            await send_error(send, 404, PLUMBER_NOT_FOUND)

    async def _metrics(self, scope, receive, send) -> None:
        if self._metrics_keys and not carries_metrics_key(scope["headers"], self._metrics_keys):
            await send_error(
                send,
                401,
                "/metrics needs a metrics key: send `X-Plumbline-Metrics-Key: <key>`",
                headers=[(b"www-authenticate", b"Key")],
            )
            return
        body, content_type = self.metrics.exposition()
        await send_bytes(send, 200, body, [(b"content-type", content_type.encode())])

    async def _openapi_json(self, scope, receive, send) -> None:
        await send_bytes(send, 200, self._openapi, [(b"content-type", b"application/json")])


def create_app(spec: PlumberFile, pool, options: AppOptions = AppOptions()):
    """The ASGI app to give uvicorn.

    `.plumbline` is the inner app (health, metrics); `.access_log` (or None) must be flushed
    when the server stops.
    """
    inner = PlumblineApp(spec, pool, options)
    app = inner
    if options.access == "keys":
        app = KeyAccess(
            app,
            options.access_keys,
            options.access_keys_file,
            options.metrics_keys,
            docs=options.docs,
        )
    if options.root_path or options.root_path_aliases:
        app = RootPath(app, options.root_path, options.root_path_aliases)
    access_log = AccessLog() if options.access_log else None
    outer = RequestLogMiddleware(app, inner.metrics, access_log)
    outer.plumbline = inner
    outer.access_log = access_log
    return outer
