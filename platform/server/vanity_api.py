"""Vanity paths through the API, as Posit Connect has them:
`GET/PUT/DELETE /__api__/v1/content/{guid}/vanity` (`{"path": "/parity/", "force": false}`)
and `GET /__api__/v1/vanities` (admins), plus `/__api__/v1/apps/{app}/vanity` alike.

Setting or clearing one is checked completely before anything is stored (vanity.py: the
form, the reserved paths, the other apps' vanity paths); then an app that runs is deployed
again with its new routes (the local ingress reloads, a Kubernetes Ingress is applied).
"""

from __future__ import annotations

import threading

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response
from starlette.routing import Route

from plumbline.platform.server import auth
from plumbline.platform.server.api import V1, ApiError, Call, can_see, endpoint, find_app
from plumbline.platform.server.db import App, utcnow
from plumbline.platform.server.vanity import VanityError, normalise, overlapping
from plumbline.platform.server.views import vanity_view

# Check-then-store of vanity paths, one at a time: in this process, and across server
# replicas on PostgreSQL (an advisory lock held until the transaction ends).
_LOCK = threading.Lock()
_PG_LOCK_KEY = 0x76616E69  # "vani"
TASK_HEADER = "X-Plumbline-Task-Id"


def _view(call: Call, app: App) -> dict:
    return vanity_view(app, call.server.deployer.vanity_url(app))


def _redeploy(call: Call, app: App) -> str | None:
    """Its routes changed: an app that runs is deployed again (same version), a task."""
    if app.active_bundle_id is None:
        return None  # the first deploy routes it
    return call.server.deployer.submit_deploy(app.id, app.active_bundle_id, call.caller.id)


@endpoint()
def get_vanity(call: Call):
    app = find_app(call)
    if app.vanity_path is None:
        raise ApiError(404, f"{app.name} has no vanity path")
    return _view(call, app)


@endpoint("publisher")
def set_vanity(call: Call):
    app = find_app(call)
    auth.require_change(call.session, call.caller, app)
    unknown = set(call.body) - {"path", "force"}
    if unknown:
        raise ApiError(400, f"unknown fields {', '.join(sorted(unknown))} (path, force)")
    force = call.body.get("force", False)
    if not isinstance(force, bool):
        raise ApiError(400, "force must be true or false")
    try:
        path = normalise(call.body.get("path"))
    except VanityError as exc:
        raise ApiError(exc.status, str(exc), path=call.body.get("path")) from None
    with _LOCK:
        s = call.session
        if s.bind.dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        if app.vanity_path == path:
            return _view(call, app)  # nothing changes
        taken = dict(
            s.execute(
                select(App.vanity_path, App).where(App.vanity_path.is_not(None), App.id != app.id)
            ).all()
        )
        moved_from = _check_free(call, path, taken, force)
        if moved_from is not None:  # force: the path leaves the other app first
            moved_from.vanity_path = moved_from.vanity_created_at = None
            moved_from.updated_at = utcnow()
            s.flush()
        app.vanity_path, app.vanity_created_at = path, utcnow()
        app.updated_at = utcnow()
        try:
            s.commit()
        except IntegrityError:
            raise ApiError(409, f"{path} was taken by another app just now") from None
    result = _view(call, app)
    task = _redeploy(call, app)
    if task:
        result["task_id"] = task
    if moved_from is not None:
        result["moved_from_app_id"] = moved_from.id
        moved = _redeploy(call, moved_from)
        if moved:
            result["moved_from_task_id"] = moved
    return result


def _check_free(call: Call, path: str, taken: dict[str, App], force: bool) -> App | None:
    """409 unless `path` is free; with `force`, the app it belongs to (when the caller may
    change that app too), to take it from."""
    # Paths around or inside it first: force moves an equal path only.
    for other in sorted(overlapping(path, taken), key=lambda other: other == path):
        holder = taken[other]
        name = repr(holder.name) if can_see(call, holder) else "another app"
        if other != path:
            raise ApiError(
                409,
                f"{path} overlaps the vanity path {other} of {name}: one would hide the other",
                path=path,
            )
        if not force:
            raise ApiError(
                409,
                f'{path} is the vanity path of {name} already ("force": true moves it, '
                "for who may change both apps)",
                path=path,
            )
        if not auth.can_change(call.session, call.caller, holder):
            raise ApiError(409, f"{path} belongs to {name}, which you may not change", path=path)
        return holder
    return None


@endpoint("publisher")
def delete_vanity(call: Call):
    app = find_app(call)
    auth.require_change(call.session, call.caller, app)
    if app.vanity_path is None:
        raise ApiError(404, f"{app.name} has no vanity path")
    app.vanity_path = app.vanity_created_at = None
    app.updated_at = utcnow()
    call.session.commit()
    result = _view(call, app)
    task = _redeploy(call, app)
    if "/content/" in call.request.url.path:
        # Connect's form answers 204 and no body; the redeploy's task is in a header.
        return Response(status_code=204, headers={TASK_HEADER: task} if task else None)
    if task:
        result["task_id"] = task
    return result


@endpoint("admin")
def list_vanities(call: Call):
    apps = call.session.scalars(
        select(App).where(App.vanity_path.is_not(None)).order_by(App.vanity_path)
    )
    return [_view(call, app) for app in apps]


ROUTES = [
    route
    for prefix in (f"{V1}/content/{{app}}", f"{V1}/apps/{{app}}")
    for route in (
        Route(f"{prefix}/vanity", get_vanity),
        Route(f"{prefix}/vanity", set_vanity, methods=["PUT"]),
        Route(f"{prefix}/vanity", delete_vanity, methods=["DELETE"]),
    )
] + [Route(f"{V1}/vanities", list_vanities)]
