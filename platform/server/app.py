"""The server process's parts, assembled: database, bundle store, backend, tasks, HTTP API,
the dashboard and its traffic charts."""

from __future__ import annotations

import inspect
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from plumbline.platform.backend import Backend
from plumbline.platform.server import (
    account_api,
    apps_api,
    auth,
    connect_api,
    dashboard,
    fetch,
    sessions,
    traffic_api,
    users_api,
    vanity_api,
)
from plumbline.platform.server.app_health import StatusCache
from plumbline.platform.server.bundles import BundleStore
from plumbline.platform.server.config import ServerConfig
from plumbline.platform.server.db import Database
from plumbline.platform.server.deploys import Deployer, store_limits
from plumbline.platform.server.tasks import TaskRunner
from plumbline.platform.server.traffic import Traffic

log = logging.getLogger("plumbline.server")


class Server:
    """Everything a request handler may use, built once per process."""

    def __init__(self, config: ServerConfig, backend: Backend, *, migrate: bool = True):
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        config.data_dir.chmod(0o700)  # the database and the bundles are private
        self.db = Database(config.sqlalchemy_url())
        if migrate:
            self.db.migrate()
        self.store = BundleStore(config.bundle_dir, store_limits(config))
        self.backend = backend
        self.tasks = TaskRunner(self.db, config.task_workers)
        recovered = self.tasks.recover()
        if recovered:
            log.warning(
                "%d task(s) left unfinished by the previous server process were marked failed",
                recovered,
            )
        self.deployer = Deployer(self.db, self.store, backend, config, self.tasks)
        self.limiter = auth.FailureLimiter(self.db, config.auth_failures, config.auth_window)
        # The dashboard's view: every app's health at once, and traffic from /metrics.
        self.statuses = StatusCache(backend, config.namespace, ttl=3.0)
        self.traffic = Traffic(config, self.db, backend, self.deployer.ref)
        self.deployer.metrics_key_digest = self.traffic.key_digest
        self.traffic.start()
        self.renewer = self._start_token_renewal()

    def _start_token_renewal(self) -> fetch.TokenRenewer | None:
        """Kubernetes pods fetch bundles with short-lived tokens: keep them fresh."""
        if self.backend.kind != "kubernetes":
            return None
        renewer = fetch.TokenRenewer(self.deployer, self.config.bundle_token_ttl / 3)
        renewer.start()
        return renewer

    def reconcile(self) -> None:
        started = self.deployer.reconcile()
        if started:
            log.info(
                "deploying %d app(s) the backend does not run: tasks %s",
                len(started),
                ", ".join(started),
            )

    def authenticate(self, credential: sessions.Credential, role: str) -> auth.Caller:
        with self.db.session() as s:
            caller = sessions.identify(s, credential)
        caller.require(role)
        return caller

    def stop_taking_tasks(self) -> None:
        """Queued tasks are dropped (the next start marks them failed); running ones go on."""
        self.traffic.stop()
        self.tasks.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.traffic.stop()
        if self.renewer is not None:
            self.renewer.stop()
        self.tasks.wait_idle()
        self.db.dispose()


# Every route of the HTTP API; the dashboard (dashboard/) is a client of these.
API_ROUTES = [
    *connect_api.ROUTES,
    *users_api.ROUTES,
    *apps_api.ROUTES,
    *account_api.ROUTES,
    *traffic_api.ROUTES,
    *vanity_api.ROUTES,
]
# Every handler went through api.endpoint(), which authenticates (a plain function would not).
assert all(inspect.iscoroutinefunction(route.endpoint) for route in API_ROUTES)
_CONNECT_PATHS = ("/server_settings", "/users/", "/applications", "/tasks/")


async def _not_found(request: Request, exc) -> JSONResponse:
    path = request.url.path
    body = {"error": "not found", "path": path}
    if path.startswith(_CONNECT_PATHS):  # rsconnect given the server's URL without /__api__
        body["error"] = (
            "not found: the API is under /__api__; in R, add the server as "
            'rsconnect::addServer("<server URL>/__api__", name = ...)'
        )
    return JSONResponse(body, status_code=404)


async def _not_allowed(request: Request, exc) -> JSONResponse:
    return JSONResponse({"error": "method not allowed"}, status_code=405)


async def _server_error(request: Request, exc) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "internal server error"}, status_code=500)


def create_app(server: Server) -> Starlette:
    app = Starlette(
        routes=[*API_ROUTES, *fetch.ROUTES, *dashboard.ROUTES],
        exception_handlers={
            404: _not_found,
            405: _not_allowed,
            500: _server_error,
            Exception: _server_error,
        },
    )
    app.state.server = server
    return app
