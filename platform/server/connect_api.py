"""The part of Posit Connect's API that rsconnect 0.8.29 calls to publish an API: server
settings, the current user, applications, bundle upload, deploy and tasks."""

from __future__ import annotations


from sqlalchemy import func, or_, select
from starlette.routing import Route

from plumbline import __version__
from plumbline.platform.server.db import (
    App,
    Permission,
    User,
)
from plumbline.platform.server.views import user_view
from plumbline.platform.server.api import (
    get_task,
    CONNECT,
    ApiError,
    Call,
    endpoint,
    find_app,
    show_app,
    visible_apps,
    create_app,
    upload,
    deploy_bundle,
)


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


ROUTES = [
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
]
