"""plumbline's API for apps: create, change, delete, versions, deploy and rollback,
restart and scale, status, logs, tasks and permissions (`/__api__/v1/apps/...`)."""

from __future__ import annotations

import re


from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.routing import Route

from plumbline.platform.backend import BackendError, NoSuchApp
from plumbline.platform.server import app_health, auth
from plumbline.platform.server.db import (
    ACCESS_TYPES,
    APP_ROLES,
    App,
    Bundle,
    Permission,
    Task,
    User,
    utcnow,
)
from plumbline.platform.server.tasks import task_view
from plumbline.platform.server.views import bundle_view, user_view
from plumbline.platform.server.api import (
    get_task,
    V1,
    ApiError,
    Call,
    endpoint,
    find_app,
    show_app,
    visible_apps,
    create_app,
    replicas_param,
    upload,
    deploy_bundle,
    path_id,
)

HOST_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")


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
        if host is not None and (not isinstance(host, str) or not HOST_NAME.match(host)):
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
        bundle = call.session.get(Bundle, path_id(target))
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
    replicas = replicas_param(call, replicas)
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
    return _grant(call, app, call.session.get(User, path_id(call.param("user"))))


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
    perm = call.session.get(Permission, (app.id, path_id(call.param("user"))))
    if perm is None:
        raise ApiError(404, "that user has no grant on this app")
    call.session.delete(perm)
    call.session.commit()
    call.server.deployer.refresh_access([app.id], call.caller.id)
    return {"deleted": True}


ROUTES = [
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
