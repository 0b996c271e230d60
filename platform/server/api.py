"""The server's HTTP API: the part of Posit Connect's API that rsconnect uses, and
plumbline's own (`/__api__/v1/...`) for `plumbline publish`, scripts and the dashboard.

Every route authenticates (`Authorization: Key <key>`, or the dashboard's session cookie
with its CSRF token on changes, sessions.py); failed authentications count
against the caller's address (429 past the limit). Handlers are plain functions run in a
thread with a database transaction; they raise ApiError for a clear 4xx.
"""

from __future__ import annotations

import inspect
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
from starlette.routing import Route

from plumbline import __version__
from plumbline.platform.backend import BackendError, NoSuchApp
from plumbline.platform.server import app_health, auth, sessions
from plumbline.platform.server.auth import AuthError, Caller, Forbidden
from plumbline.platform.server.bundles import BundleError, TooLarge
from plumbline.platform.server.db import (
    ACCESS_TYPES,
    APP_ROLES,
    ROLES,
    ApiKey,
    App,
    Bundle,
    Permission,
    Task,
    User,
    utcnow,
)
from plumbline.platform.server.tasks import task_view
from plumbline.platform.server.views import app_view, bundle_view, key_view, user_view

log = logging.getLogger("plumbline.server.api")
MAX_JSON = 1024 * 1024
_APP_NAME = re.compile(r"^[A-Za-z0-9_-]{3,64}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_HOST = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")


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
            client, limited = rate_limited(request)
            if limited is not None:
                return limited
            credential = sessions.from_request(request)
            if credential is None:
                server.limiter.failed(client, "no key", request.url.path)
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
                    server.limiter.failed(client, str(exc), request.url.path)
                return error(401, str(exc))
            except Forbidden as exc:
                return error(403, str(exc))
            except ApiError as exc:
                return error(exc.status, exc.message, **exc.detail)

        route.__name__ = handler.__name__
        return route

    return wrap


def rate_limited(request: Request) -> tuple[str, JSONResponse | None]:
    """The client's address, and the 429 to answer when it failed to authenticate too often."""
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.server.limiter.retry_after(client)
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
        replicas=_replicas(call, 1),
    )
    s.add(app)
    try:
        s.flush()
    except IntegrityError:
        raise ApiError(409, f"an app named {name!r} exists already") from None
    return show_app(call, app), 200


def _replicas(call: Call, default: int) -> int:
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


# ---- Connect's API, as rsconnect 0.8.29 calls it ---------------------------------------


@endpoint()
def server_settings(call: Call):
    return {
        "version": "plumbline " + __version__,
        "build": __version__,
        "api_enabled": True,
        "authentication": {"name": "api-key"},
        "runtimes": ["R"],
        "content_types": ["api"],
    }


@endpoint()
def current_user(call: Call):
    return user_view(call.session.get(User, call.caller.id))


@endpoint()
def list_applications(call: Call):
    query = visible_apps(call)
    for item in call.request.query_params.getlist("filter"):
        key, _, value = item.partition(":")
        if key == "name":
            query = query.where(App.name == value)
        elif key == "account_id":  # Connect: apps this account owns or collaborates on
            try:
                user_id = int(value)
            except ValueError:
                raise ApiError(400, "account_id must be a user id") from None
            granted = select(Permission.app_id).where(
                Permission.user_id == user_id, Permission.role == "collaborator"
            )
            query = query.where(or_(App.owner_id == user_id, App.id.in_(granted)))
        elif key:
            raise ApiError(400, f"unknown filter {key!r} (known: name, account_id)")
    count = call.query_int("count", 100, 1, 1000)
    offset = call.query_int("offset", 0)
    total = call.session.scalar(select(func.count()).select_from(query.subquery()))
    apps = list(call.session.scalars(query.offset(offset).limit(count)))
    return {"applications": [show_app(call, a) for a in apps], "count": len(apps), "total": total}


@endpoint("publisher")
def create_application(call: Call):
    return create_app(call)


@endpoint()
def get_application(call: Call):
    return show_app(call, find_app(call))


@endpoint("publisher")
def deploy_application(call: Call):
    return deploy_bundle(call, find_app(call), call.body.get("bundle"))


@endpoint()
def application_config(call: Call):
    app = find_app(call)
    base = call.server.config.url
    return {
        "config_url": call.server.deployer.app_url(app),
        "logs_url": f"{base}/__api__/v1/apps/{app.id}/logs",
    }


@endpoint()
def get_task(call: Call):
    task = find_task(call)
    first = (
        call.query_int("first_status", 0)
        if "first_status" in call.request.query_params
        else call.query_int("first", 0)
    )
    return task_view(call.server.db, task.id, first)


# ---- plumbline's API ------------------------------------------------------------------


@endpoint()
def v1_user(call: Call):
    return user_view(call.session.get(User, call.caller.id))


@endpoint("admin")
def v1_users(call: Call):
    return {"users": [user_view(u) for u in call.session.scalars(select(User).order_by(User.id))]}


@endpoint("admin")
def v1_create_user(call: Call):
    username, role = call.body.get("username"), call.body.get("role", "viewer")
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise ApiError(400, "username must be 1 to 64 letters, digits or . _ @ -")
    if role not in ROLES:
        raise ApiError(400, f"role must be one of {', '.join(ROLES)}")
    if call.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ApiError(409, f"a user {username!r} exists already")
    user = auth.create_user(call.session, username, role, call.body.get("email"))
    return user_view(user), 200


@endpoint("admin")
def v1_update_user(call: Call):
    user = call.session.get(User, _int(call.param("user")))
    if user is None:
        raise ApiError(404, "no such user")
    if "role" in call.body:
        if call.body["role"] not in ROLES:
            raise ApiError(400, f"role must be one of {', '.join(ROLES)}")
        user.role = call.body["role"]
    if "locked" in call.body:
        if not isinstance(call.body["locked"], bool):
            raise ApiError(400, "locked must be true or false")
        if user.id == call.caller.id and call.body["locked"]:
            raise ApiError(400, "you cannot lock yourself out")
        user.locked = call.body["locked"]
    call.session.commit()
    call.server.deployer.refresh_access(user_id=call.caller.id)
    return user_view(user)


@endpoint()
def v1_keys(call: Call):
    keys = call.session.scalars(
        select(ApiKey).where(ApiKey.user_id == call.caller.id).order_by(ApiKey.id)
    )
    return {"keys": [key_view(k) for k in keys]}


def _new_key(call: Call, user: User):
    name = call.body.get("name", "")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise ApiError(400, "name must be 1 to 100 characters (what the key is for)")
    row, key = auth.create_key(call.session, user, name)
    call.session.commit()
    call.server.deployer.refresh_access(user_id=call.caller.id)
    # The only time the key is shown: the server keeps its sha256 alone.
    return {**key_view(row), "key": key}, 200


@endpoint()
def v1_create_key(call: Call):
    return _new_key(call, call.session.get(User, call.caller.id))


@endpoint("admin")
def v1_create_user_key(call: Call):
    user = call.session.get(User, _int(call.param("user")))
    if user is None:
        raise ApiError(404, "no such user")
    return _new_key(call, user)


@endpoint()
def v1_revoke_key(call: Call):
    key = call.session.get(ApiKey, _int(call.param("key")))
    if key is None or (key.user_id != call.caller.id and call.caller.role != "admin"):
        raise ApiError(404, "no such key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    call.session.commit()
    call.server.deployer.refresh_access(user_id=call.caller.id)
    return key_view(key)


@endpoint()
def v1_apps(call: Call):
    search = call.request.query_params.get("search")
    query = visible_apps(call)
    if search:
        query = query.where(App.name.contains(search))
    apps = list(call.session.scalars(query))
    views = [show_app(call, a) for a in apps]
    if "status" in call.request.query_params.getlist("include"):  # the dashboard's list
        statuses, failed = call.server.statuses.snapshot()
        busy = busy_apps(call.session, [a.id for a in apps])
        for view, app in zip(views, apps):
            view["status"] = app_health.summary(
                app.active_bundle_id is not None, statuses.get(app.slug), app.id in busy, failed
            )
    return {"apps": views}


def busy_apps(session, app_ids: list[int]) -> set[int]:
    """Apps with a task queued or running (a deploy, restart, scale or delete)."""
    if not app_ids:
        return set()
    return set(
        session.scalars(
            select(Task.app_id).where(
                Task.app_id.in_(app_ids), Task.state.in_(("queued", "running"))
            )
        )
    )


@endpoint("publisher")
def v1_create_app(call: Call):
    return create_app(call)


@endpoint()
def v1_app(call: Call):
    return show_app(call, find_app(call))


@endpoint("publisher")
def v1_update_app(call: Call):
    app = find_app(call)
    auth.require_change(call.session, call.caller, app)
    body = call.body
    unknown = set(body) - {"title", "access_type", "host"}
    if unknown:
        raise ApiError(
            400,
            f"cannot change {', '.join(sorted(unknown))} here (title, "
            "access_type, host); scale with POST .../scale",
        )
    if "title" in body:
        if not isinstance(body["title"], str):
            raise ApiError(400, "title must be a string")
        app.title = body["title"] or None
    redeploy = False
    if "access_type" in body:
        if body["access_type"] not in ACCESS_TYPES:
            raise ApiError(400, f"access_type must be one of {', '.join(ACCESS_TYPES)}")
        redeploy |= body["access_type"] != app.access_type
        app.access_type = body["access_type"]
    if "host" in body:
        host = body["host"] or None
        if host is not None and (not isinstance(host, str) or not _HOST.match(host)):
            raise ApiError(400, "host must be a DNS name such as api.example.com, or null")
        redeploy |= host != app.host
        app.host = host
    app.updated_at = utcnow()
    try:
        call.session.commit()
    except IntegrityError:
        raise ApiError(409, "another app uses that host name") from None
    result = show_app(call, app)
    if redeploy and app.active_bundle_id is not None:  # where and how it is served changed
        result["task_id"] = call.server.deployer.submit_deploy(
            app.id, app.active_bundle_id, call.caller.id
        )
    return result


@endpoint("publisher")
def v1_delete_app(call: Call):
    app = find_app(call)
    auth.require_owner(call.session, call.caller, app)
    call.session.commit()
    return {"task_id": call.server.deployer.submit_delete(app.id, call.caller.id)}, 202


@endpoint()
def v1_versions(call: Call):
    app = find_app(call)
    bundles = list(
        call.session.scalars(
            select(Bundle).where(Bundle.app_id == app.id).order_by(Bundle.id.desc())
        )
    )
    ids = {b.created_by for b in bundles if b.created_by is not None}
    names = dict(call.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
    return {
        "app_id": app.id,
        "active_bundle_id": app.active_bundle_id,
        "retention": call.server.config.retention,
        "versions": [
            {**bundle_view(b, app.active_bundle_id), "created_by_username": names.get(b.created_by)}
            for b in bundles
        ],
    }


@endpoint("publisher")
def v1_deploy(call: Call):
    app = find_app(call)
    return deploy_bundle(call, app, call.body.get("bundle_id", call.body.get("bundle"))), 202


@endpoint("publisher")
def v1_rollback(call: Call):
    """Activate a kept version: the one given, else the one deployed before the active one."""
    app = find_app(call)
    target = call.body.get("bundle_id")
    if target is None:
        target = call.session.scalar(
            select(Bundle.id)
            .where(
                Bundle.app_id == app.id,
                Bundle.deployed_at.is_not(None),
                Bundle.id != (app.active_bundle_id or 0),
            )
            .order_by(Bundle.deployed_at.desc())
            .limit(1)
        )
        if target is None:
            raise ApiError(409, f"{app.name} has no earlier version to roll back to")
    else:
        bundle = call.session.get(Bundle, _int(target))
        if bundle is None or bundle.app_id != app.id or bundle.deployed_at is None:
            raise ApiError(404, f"bundle {target} is not a kept version of {app.name}")
    return deploy_bundle(call, app, target), 202


@endpoint("publisher")
def v1_restart(call: Call):
    app = find_app(call)
    auth.require_change(call.session, call.caller, app)
    _needs_active(app)
    call.session.commit()
    return {"task_id": call.server.deployer.submit_restart(app.id, call.caller.id)}, 202


@endpoint("publisher")
def v1_scale(call: Call):
    app = find_app(call)
    auth.require_change(call.session, call.caller, app)
    replicas = call.body.get("replicas")
    if replicas is None:
        raise ApiError(400, "replicas is required")
    replicas = _replicas(call, replicas)
    if app.active_bundle_id is None:  # nothing runs yet: the first deploy uses it
        app.replicas = replicas
        return show_app(call, app), 200
    call.session.commit()
    return {"task_id": call.server.deployer.submit_scale(app.id, replicas, call.caller.id)}, 202


def _needs_active(app: App) -> None:
    if app.active_bundle_id is None:
        raise ApiError(409, f"{app.name} is not deployed yet")


@endpoint()
def v1_status(call: Call):
    app = find_app(call)
    _needs_active(app)
    try:
        status = call.server.backend.status(call.server.deployer.ref(app))
    except NoSuchApp:
        raise ApiError(
            404, f"{app.name} is not running on the {call.server.backend.kind} backend"
        ) from None
    except BackendError as exc:
        raise ApiError(502, f"the backend could not say: {exc}") from None
    busy = app.id in busy_apps(call.session, [app.id])
    return {
        "app_id": app.id,
        "health": app_health.health(True, status, busy),
        "backend": status.backend,
        "desired": status.desired,
        "ready": status.ready,
        "updated": status.updated,
        "revision": status.revision,
        "state": status.state,
        "message": status.message,
        "healthy": status.healthy,
        "url": call.server.deployer.app_url(app),
        "replicas": [
            {
                "name": r.name,
                "state": r.state,
                "ready": r.ready,
                "revision": r.revision,
                "restarts": r.restarts,
            }
            for r in status.replicas
        ],
    }


@endpoint("publisher")
def v1_logs(call: Call):
    app = find_app(call)
    auth.require_change(call.session, call.caller, app)
    _needs_active(app)
    tail = call.query_int("tail", 200, 1, 10000)
    try:
        lines = list(call.server.backend.logs(call.server.deployer.ref(app), tail=tail))
    except BackendError as exc:
        raise ApiError(502, f"the backend could not give the logs: {exc}") from None
    return {"app_id": app.id, "lines": lines[-tail:]}


@endpoint()
def v1_app_tasks(call: Call):
    app = find_app(call)
    auth.require_change(call.session, call.caller, app)
    tasks = call.session.scalars(
        select(Task).where(Task.app_id == app.id).order_by(Task.created_at.desc()).limit(50)
    )
    return {
        "tasks": [
            {k: v for k, v in task_view(call.server.db, t.id, 10**9).items() if k != "status"}
            for t in tasks
        ]
    }


@endpoint()
def v1_permissions(call: Call):
    app = find_app(call)
    rows = call.session.execute(
        select(Permission, User)
        .join(User, User.id == Permission.user_id)
        .where(Permission.app_id == app.id)
    )
    owner = call.session.get(User, app.owner_id)
    return {
        "owner": user_view(owner),
        "permissions": [{"user": user_view(u), "role": p.role} for p, u in rows],
    }


@endpoint("publisher")
def v1_set_permission(call: Call):
    app = find_app(call)
    auth.require_owner(call.session, call.caller, app)
    return _grant(call, app, call.session.get(User, _int(call.param("user"))))


@endpoint("publisher")
def v1_add_permission(call: Call):
    """A grant by user name (the dashboard's "add collaborator"; only admins list users)."""
    app = find_app(call)
    auth.require_owner(call.session, call.caller, app)
    username = call.body.get("username")
    if not isinstance(username, str) or not username:
        raise ApiError(400, "username is required")
    return _grant(call, app, call.session.scalar(select(User).where(User.username == username)))


def _grant(call: Call, app: App, user: User | None):
    role = call.body.get("role")
    if user is None:
        raise ApiError(404, "no such user")
    if role not in APP_ROLES:
        raise ApiError(400, f"role must be one of {', '.join(APP_ROLES)}")
    if user.id == app.owner_id:
        raise ApiError(400, "the owner needs no grant")
    perm = call.session.get(Permission, (app.id, user.id))
    if perm is None:
        call.session.add(Permission(app_id=app.id, user_id=user.id, role=role))
    else:
        perm.role = role
    call.session.commit()
    call.server.deployer.refresh_access([app.id], call.caller.id)
    return {"user": user_view(user), "role": role}


@endpoint("publisher")
def v1_delete_permission(call: Call):
    app = find_app(call)
    auth.require_owner(call.session, call.caller, app)
    perm = call.session.get(Permission, (app.id, _int(call.param("user"))))
    if perm is None:
        raise ApiError(404, "that user has no grant on this app")
    call.session.delete(perm)
    call.session.commit()
    call.server.deployer.refresh_access([app.id], call.caller.id)
    return {"deleted": True}


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ApiError(404, f"{text!r} is not an id") from None


CONNECT = "/__api__"
V1 = "/__api__/v1"
ROUTES = [
    # Posit Connect's API (rsconnect 0.8.29)
    Route(f"{CONNECT}/server_settings", server_settings),
    Route(f"{CONNECT}/users/current", current_user),
    Route(f"{CONNECT}/applications", list_applications),
    Route(f"{CONNECT}/applications", create_application, methods=["POST"]),
    Route(f"{CONNECT}/applications/{{app}}", get_application),
    Route(
        f"{CONNECT}/applications/{{app}}/upload",
        endpoint("publisher", raw_body=True)(upload),
        methods=["POST"],
    ),
    Route(f"{CONNECT}/applications/{{app}}/deploy", deploy_application, methods=["POST"]),
    Route(f"{CONNECT}/applications/{{app}}/config", application_config),
    Route(f"{CONNECT}/tasks/{{task}}", get_task),
    # plumbline's own
    Route(f"{V1}/user", v1_user),
    Route(f"{V1}/users", v1_users),
    Route(f"{V1}/users", v1_create_user, methods=["POST"]),
    Route(f"{V1}/users/{{user}}", v1_update_user, methods=["PATCH"]),
    Route(f"{V1}/users/{{user}}/keys", v1_create_user_key, methods=["POST"]),
    Route(f"{V1}/keys", v1_keys),
    Route(f"{V1}/keys", v1_create_key, methods=["POST"]),
    Route(f"{V1}/keys/{{key}}", v1_revoke_key, methods=["DELETE"]),
    Route(f"{V1}/apps", v1_apps),
    Route(f"{V1}/apps", v1_create_app, methods=["POST"]),
    Route(f"{V1}/apps/{{app}}", v1_app),
    Route(f"{V1}/apps/{{app}}", v1_update_app, methods=["PATCH"]),
    Route(f"{V1}/apps/{{app}}", v1_delete_app, methods=["DELETE"]),
    Route(
        f"{V1}/apps/{{app}}/bundles", endpoint("publisher", raw_body=True)(upload), methods=["POST"]
    ),
    Route(f"{V1}/apps/{{app}}/versions", v1_versions),
    Route(f"{V1}/apps/{{app}}/deploy", v1_deploy, methods=["POST"]),
    Route(f"{V1}/apps/{{app}}/rollback", v1_rollback, methods=["POST"]),
    Route(f"{V1}/apps/{{app}}/restart", v1_restart, methods=["POST"]),
    Route(f"{V1}/apps/{{app}}/scale", v1_scale, methods=["POST"]),
    Route(f"{V1}/apps/{{app}}/status", v1_status),
    Route(f"{V1}/apps/{{app}}/logs", v1_logs),
    Route(f"{V1}/apps/{{app}}/tasks", v1_app_tasks),
    Route(f"{V1}/apps/{{app}}/permissions", v1_permissions),
    Route(f"{V1}/apps/{{app}}/permissions", v1_add_permission, methods=["POST"]),
    Route(f"{V1}/apps/{{app}}/permissions/{{user}}", v1_set_permission, methods=["PUT"]),
    Route(f"{V1}/apps/{{app}}/permissions/{{user}}", v1_delete_permission, methods=["DELETE"]),
    Route(f"{V1}/tasks/{{task}}", get_task),
]
assert all(inspect.iscoroutinefunction(r.endpoint) for r in ROUTES)
