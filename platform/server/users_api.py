"""plumbline's API for users and their API keys (`/__api__/v1/user`, `/users`, `/keys`)."""

from __future__ import annotations

import re


from sqlalchemy import select
from starlette.routing import Route

from plumbline.platform.server import auth
from plumbline.platform.server.db import (
    ROLES,
    ApiKey,
    User,
    utcnow,
)
from plumbline.platform.server.views import key_view, user_view
from plumbline.platform.server.api import V1, ApiError, Call, endpoint, path_id

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@endpoint()
def v1_user(call: Call):
    return user_view(call.session.get(User, call.caller.id))


@endpoint("admin")
def v1_users(call: Call):
    return {"users": [user_view(u) for u in call.session.scalars(select(User).order_by(User.id))]}


@endpoint("admin")
def v1_create_user(call: Call):
    username, role = call.body.get("username"), call.body.get("role", "viewer")
    if not isinstance(username, str) or not USERNAME.match(username):
        raise ApiError(400, "username must be 1 to 64 letters, digits or . _ @ -")
    if role not in ROLES:
        raise ApiError(400, f"role must be one of {', '.join(ROLES)}")
    if call.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ApiError(409, f"a user {username!r} exists already")
    user = auth.create_user(call.session, username, role, call.body.get("email"))
    return user_view(user), 200


@endpoint("admin")
def v1_update_user(call: Call):
    user = call.session.get(User, path_id(call.param("user")))
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
    user = call.session.get(User, path_id(call.param("user")))
    if user is None:
        raise ApiError(404, "no such user")
    return _new_key(call, user)


@endpoint()
def v1_revoke_key(call: Call):
    key = call.session.get(ApiKey, path_id(call.param("key")))
    if key is None or (key.user_id != call.caller.id and call.caller.role != "admin"):
        raise ApiError(404, "no such key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    call.session.commit()
    call.server.deployer.refresh_access(user_id=call.caller.id)
    return key_view(key)


ROUTES = [
    Route(f"{V1}/user", v1_user),
    Route(f"{V1}/users", v1_users),
    Route(f"{V1}/users", v1_create_user, methods=["POST"]),
    Route(f"{V1}/users/{{user}}", v1_update_user, methods=["PATCH"]),
    Route(f"{V1}/users/{{user}}/keys", v1_create_user_key, methods=["POST"]),
    Route(f"{V1}/keys", v1_keys),
    Route(f"{V1}/keys", v1_create_key, methods=["POST"]),
    Route(f"{V1}/keys/{{key}}", v1_revoke_key, methods=["DELETE"]),
]
