"""What every route of the server's HTTP API shares: authentication, the call a handler
gets, errors, and the app, bundle and task helpers several groups of routes use. The routes
themselves: connect_api.py (the part of Posit Connect's API that rsconnect uses), and
plumbline's own (`/__api__/v1/...`, for `plumbline publish`, scripts and the dashboard):
users_api.py, apps_api.py, account_api.py, vanity_api.py, traffic_api.py.

Every route authenticates (`Authorization: Key <key>`, or the dashboard's session cookie
with its CSRF token on changes, sessions.py); failed authentications count
against the caller's address (429 past the limit). Handlers are plain functions run in a
thread with a database transaction; they raise ApiError for a clear 4xx.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from plumbline.platform.server import auth, sessions
from plumbline.platform.server.auth import AuthError, Caller, Forbidden
from plumbline.platform.server.bundles import BundleError, TooLarge
from plumbline.platform.server.db import (
    ACCESS_TYPES,
    App,
    Bundle,
    Permission,
    Task,
    User,
)
from plumbline.platform.server.tasks import task_view
from plumbline.platform.server.views import app_view, bundle_view

log = logging.getLogger("plumbline.server.api")
MAX_JSON = 1024 * 1024
_APP_NAME = re.compile(r"^[A-Za-z0-9_-]{3,64}$")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **detail: Any):
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


@dataclass
class Call:
    """One authenticated request, as a handler sees it."""

    request: Request
    caller: Caller
    session: Any
    body: dict
    server: Any  # the Server (app.py): db, deployer, store, config

    def param(self, name: str) -> str:
        return self.request.path_params[name]

    def query_int(self, name: str, default: int, minimum: int = 0, maximum: int = 10**9) -> int:
        raw = self.request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an integer") from None
        return min(max(value, minimum), maximum)


def error(status: int, message: str, **detail) -> JSONResponse:
    return JSONResponse({"error": message, **detail}, status_code=status)


def endpoint(role: str = "viewer", *, raw_body: bool = False):
    """Wrap a handler: rate limit, authenticate, check the role, JSON in and out.

    A plain handler gets a Call with an open transaction, in a thread. A `raw_body`
    handler is a coroutine given (request, caller, server) that reads the body itself
    (uploads stream to disk) and opens its own transactions.
    """

    def wrap(handler: Callable):
        async def route(request: Request):
            server = request.app.state.server
            client, limited = await rate_limited(request)
            if limited is not None:
                return limited
            credential = sessions.from_request(request)
            if credential is None:
                await run_in_threadpool(server.limiter.failed, client, "no key", request.url.path)
                return error(
                    401,
                    "authentication needed: send `Authorization: Key <API key>` "
                    "(create a key with `plumbline server bootstrap` or in the API)",
                )
            try:
                if raw_body:
                    caller = await run_in_threadpool(server.authenticate, credential, role)
                    return await handler(request, caller, server)
                body = await _json_body(request)
                return await run_in_threadpool(
                    _run, server, credential, role, handler, request, body
                )
            except AuthError as exc:
                if not isinstance(exc, sessions.SessionEnded):
                    await run_in_threadpool(
                        server.limiter.failed, client, str(exc), request.url.path
                    )
                return error(401, str(exc))
            except Forbidden as exc:
                return error(403, str(exc))
            except ApiError as exc:
                return error(exc.status, exc.message, **exc.detail)

        route.__name__ = handler.__name__
        return route

    return wrap


async def rate_limited(request: Request) -> tuple[str, JSONResponse | None]:
    """The client's address, and the 429 to answer when it failed to authenticate too often."""
    client = request.client.host if request.client else "unknown"
    wait = await run_in_threadpool(request.app.state.server.limiter.retry_after, client)
    if wait <= 0:
        return client, None
    seconds = max(1, round(wait))
    return client, JSONResponse(
        {"error": f"too many failed authentications from this address; try again in {seconds}s"},
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


def _run(server, credential, role: str, handler, request: Request, body: dict):
    with server.db.session() as session:
        caller = sessions.identify(session, credential)
        caller.require(role)
        result = handler(Call(request, caller, session, body, server))
    if isinstance(result, Response):  # a handler that sets headers (a sign-in cookie)
        return result
    if isinstance(result, tuple):
        payload, status = result
        return JSONResponse(payload, status_code=status)
    return JSONResponse(result)


async def _json_body(request: Request) -> dict:
    if request.method not in ("POST", "PUT", "PATCH"):
        return {}
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_JSON:
            raise ApiError(413, "the JSON body is too large")
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


# ---- helpers ------------------------------------------------------------------------------


def find_app(call: Call, ref: str | None = None) -> App:
    ref = ref if ref is not None else call.param("app")
    s = call.session
    app = (
        s.get(App, int(ref))
        if ref.isdigit()
        else s.scalar(select(App).where(or_(App.name == ref, App.slug == ref, App.guid == ref)))
    )
    if app is None or not can_see(call, app):
        raise ApiError(404, f"no app {ref!r}")
    return app


def can_see(call: Call, app: App) -> bool:
    c = call.caller
    return (
        c.role == "admin"
        or app.access_type in ("all", "logged_in")
        or auth.app_role(call.session, c, app) is not None
    )


def show_app(call: Call, app: App) -> dict:
    owner = call.session.get(User, app.owner_id)
    return app_view(
        app,
        owner,
        call.server.deployer.app_url(app),
        role=auth.app_role(call.session, call.caller, app),
        can_change=auth.can_change(call.session, call.caller, app),
        vanity_full_url=call.server.deployer.vanity_url(app),
    )


def visible_apps(call: Call):
    query = select(App).order_by(App.id)
    c = call.caller
    if c.role != "admin":
        granted = select(Permission.app_id).where(Permission.user_id == c.id)
        query = query.where(
            or_(
                App.access_type.in_(("all", "logged_in")), App.owner_id == c.id, App.id.in_(granted)
            )
        )
    return query


def slug_for(name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"app-{slug}".rstrip("-")
    return slug[:63].rstrip("-")


def create_app(call: Call) -> tuple[dict, int]:
    name = call.body.get("name")
    if not isinstance(name, str) or not _APP_NAME.match(name):
        raise ApiError(400, "name must be 3 to 64 letters, digits, '_' or '-'", name=name)
    title = call.body.get("title")
    access = call.body.get("access_type", "acl")
    if access not in ACCESS_TYPES:
        raise ApiError(400, f"access_type must be one of {', '.join(ACCESS_TYPES)}")
    slug = slug_for(name)
    s = call.session
    if s.scalar(select(App.id).where(or_(App.name == name, App.slug == slug))) is not None:
        raise ApiError(
            409,
            f"an app named {name!r} exists already (names are unique on "
            "the server; choose another with appName=)",
            name=name,
        )
    app = App(
        guid=str(uuid.uuid4()),
        name=name,
        slug=slug,
        title=title if isinstance(title, str) and title else None,
        owner_id=call.caller.id,
        access_type=access,
        replicas=replicas_param(call, 1),
    )
    s.add(app)
    try:
        s.flush()
    except IntegrityError:
        raise ApiError(409, f"an app named {name!r} exists already") from None
    return show_app(call, app), 200


def replicas_param(call: Call, default: int) -> int:
    value = call.body.get("replicas", default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 50:
        raise ApiError(400, "replicas must be a whole number from 0 to 50")
    return value


async def upload(request: Request, caller: Caller, server) -> JSONResponse:
    """Stream the body to the bundle store, then record the bundle (Connect's upload)."""
    ref = request.path_params["app"]

    def check() -> int:
        with server.db.session() as s:
            call = Call(request, caller, s, {}, server)
            app = find_app(call, ref)
            auth.require_change(s, caller, app)
            return app.id

    try:
        app_id = await run_in_threadpool(check)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > server.store.limits.max_bundle_size:
            raise TooLarge(
                f"the bundle ({length} bytes) is larger than the server's limit of "
                f"{server.store.limits.max_bundle_size} bytes (--max-bundle-size)"
            )
        stored = await server.store.receive(request.stream())
    except TooLarge as exc:
        return error(413, str(exc))
    except BundleError as exc:
        return error(400, str(exc))

    def record() -> dict:
        with server.db.session() as s:
            bundle = Bundle(
                app_id=app_id, sha256=stored.sha256, size=stored.size, created_by=caller.id
            )
            s.add(bundle)
            s.flush()
            app = s.get(App, app_id)
            return bundle_view(bundle, app.active_bundle_id)

    return JSONResponse(await run_in_threadpool(record))


def deploy_bundle(call: Call, app: App, bundle_id) -> dict:
    auth.require_change(call.session, call.caller, app)
    s = call.session
    if bundle_id is None:  # the newest upload
        bundle_id = s.scalar(select(func.max(Bundle.id)).where(Bundle.app_id == app.id))
        if bundle_id is None:
            raise ApiError(400, f"{app.name} has no bundle to deploy: upload one first")
    try:
        bundle_id = int(bundle_id)
    except (TypeError, ValueError):
        raise ApiError(400, "bundle must be a bundle id") from None
    bundle = s.get(Bundle, bundle_id)
    if bundle is None or bundle.app_id != app.id:
        raise ApiError(
            404,
            f"no bundle {bundle_id} of {app.name} (kept versions: see "
            f"/__api__/v1/apps/{app.id}/versions)",
        )
    s.commit()  # the task reads what this transaction saw
    task_id = call.server.deployer.submit_deploy(app.id, bundle.id, call.caller.id)
    return {"task_id": task_id, "id": task_id, "app_id": app.id, "bundle_id": bundle.id}


def find_task(call: Call) -> Task:
    task = call.session.get(Task, call.param("task"))
    if task is None:
        raise ApiError(404, "no such task")
    c = call.caller
    if c.role != "admin" and task.user_id != c.id:
        app = call.session.get(App, task.app_id) if task.app_id else None
        if app is None or not auth.can_change(call.session, c, app):
            raise ApiError(404, "no such task")
    return task


@endpoint()
def get_task(call: Call):
    task = find_task(call)
    first = (
        call.query_int("first_status", 0)
        if "first_status" in call.request.query_params
        else call.query_int("first", 0)
    )
    return task_view(call.server.db, task.id, first)


def path_id(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ApiError(404, f"{text!r} is not an id") from None


CONNECT = "/__api__"
V1 = "/__api__/v1"
