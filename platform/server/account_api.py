"""Signing in and out of the dashboard, and passwords: the part of the API behind sessions.py.

POST /__api__/v1/session takes an API key or a username and password and answers with the
session cookie; it is the one call made without a credential, so its failures count against
the caller's address like any failed authentication (429 past the limit).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plumbline.platform.server import auth, passwords, sessions
from plumbline.platform.server.api import (
    V1,
    ApiError,
    Call,
    path_id,
    _json_body,
    endpoint,
    error,
    rate_limited,
)
from plumbline.platform.server.auth import AuthError
from plumbline.platform.server.db import User
from plumbline.platform.server.tasks import iso
from plumbline.platform.server.views import user_view

log = logging.getLogger("plumbline.server.auth")


def _session_view(user: User, row, via: str) -> dict:
    return {
        "user": user_view(user),
        "has_password": user.password_hash is not None,
        "via": via,  # "key" (Authorization header) or "session" (the cookie)
        "csrf_token": row.csrf if row is not None else None,
        "expires_time": iso(row.expires_at) if row is not None else None,
    }


def _check_sign_in(server, body: dict) -> tuple[dict, str]:
    """(the session's view, its cookie token), or AuthError naming what was wrong."""
    key, username, password = body.get("key"), body.get("username"), body.get("password")
    with server.db.session() as s:
        if isinstance(key, str) and key.strip():
            caller = auth.authenticate(s, key.strip())
            user, key_id = s.get(User, caller.id), caller.key_id
        elif isinstance(username, str) and isinstance(password, str):
            user = s.scalar(select(User).where(User.username == username))
            # verify() spends the same time whether or not the user exists
            if not passwords.verify(password, user.password_hash if user else None):
                raise AuthError("wrong username or password")
            if user.locked:
                raise AuthError("this user is locked")
            key_id = None
        else:
            raise AuthError('sign in with {"key": ...} or {"username": ..., "password": ...}')
        token, row = sessions.start(s, user, key_id, server.config.session_lifetime)
        view = _session_view(user, row, "session")
    log.info(
        "signed in",
        extra={
            "fields": {
                "event": "sign_in",
                "user": user.username,
                "with": "key" if key_id else "password",
            }
        },
    )
    return view, token


async def sign_in(request: Request) -> JSONResponse:
    server = request.app.state.server
    client, limited = await rate_limited(request)
    if limited is not None:
        return limited
    json_body = request.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    if not json_body and request.headers.get("content-length", "0") != "0":
        # A page of another site can post a form here, but not JSON without asking (CORS,
        # never granted): this keeps it from signing a visitor in as someone else.
        return error(415, "sign in with a JSON body (Content-Type: application/json)")
    try:
        body = await _json_body(request)
        view, token = await run_in_threadpool(_check_sign_in, server, body)
    except ApiError as exc:
        return error(exc.status, exc.message, **exc.detail)
    except AuthError as exc:
        await run_in_threadpool(server.limiter.failed, client, str(exc), request.url.path)
        return error(401, str(exc))
    response = JSONResponse(view)
    secure = sessions.is_secure(request, server.config.url)
    response.headers["set-cookie"] = sessions.cookie(
        token, int(server.config.session_lifetime), secure
    )
    response.headers["cache-control"] = "no-store"
    return response


async def current_session(request: Request):
    """Who is signed in. A page asking before anyone signed in gets 401 without it counting
    as a failed authentication (every visit of the sign-in page asks)."""
    if sessions.from_request(request) is None:
        return error(401, "not signed in")
    return await _current_session(request)


@endpoint()
def _current_session(call: Call):
    user = call.session.get(User, call.caller.id)
    row = sessions.find(call.session, call.request.cookies.get(sessions.COOKIE, ""))
    via = "key" if auth.key_from_header(call.request.headers.get("authorization")) else "session"
    response = JSONResponse(_session_view(user, row if via == "session" else None, via))
    response.headers["cache-control"] = "no-store"
    return response


@endpoint()
def sign_out(call: Call):
    token = call.request.cookies.get(sessions.COOKIE)
    if token:
        sessions.end(call.session, token)
    response = JSONResponse({"signed_out": True})
    secure = sessions.is_secure(call.request, call.server.config.url)
    response.headers["set-cookie"] = sessions.cookie("", 0, secure)
    return response


def _set_password(call: Call, user: User, password) -> None:
    if password is None:
        user.password_hash = None  # keys only from now on
    else:
        try:
            user.password_hash = passwords.hash_password(password)
        except passwords.PasswordRefused as exc:
            raise ApiError(400, str(exc)) from None
    # Everyone signed in as that user with a password or a key signs in again; not this call.
    sessions.end_others(call.session, user.id, call.request.cookies.get(sessions.COOKIE))


@endpoint()
def change_own_password(call: Call):
    """Set or change your password (the current one is needed when there is one)."""
    user = call.session.get(User, call.caller.id)
    if user.password_hash is not None and not passwords.verify(
        str(call.body.get("current_password") or ""), user.password_hash
    ):
        raise ApiError(403, "the current password is wrong")
    if "password" not in call.body:
        raise ApiError(400, "password is required (null removes it)")
    _set_password(call, user, call.body["password"])
    return {"user": user_view(user), "has_password": user.password_hash is not None}


@endpoint("admin")
def set_user_password(call: Call):
    user = call.session.get(User, path_id(call.param("user")))
    if user is None:
        raise ApiError(404, "no such user")
    if "password" not in call.body:
        raise ApiError(400, "password is required (null removes it)")
    _set_password(call, user, call.body["password"])
    return {"user": user_view(user), "has_password": user.password_hash is not None}


ROUTES = [
    Route(f"{V1}/session", sign_in, methods=["POST"]),
    Route(f"{V1}/session", current_session),
    Route(f"{V1}/session", sign_out, methods=["DELETE"]),
    Route(f"{V1}/user/password", change_own_password, methods=["PUT"]),
    Route(f"{V1}/users/{{user}}/password", set_user_password, methods=["PUT"]),
]
