"""Who is calling, from an API key or a dashboard sign-in (a session cookie).

An API call carries `Authorization: Key <key>` (rsconnect, scripts), or the cookie the
dashboard got when its user signed in with a key or a password. The cookie holds a random
token (the database keeps its sha256), is HttpOnly (no script reads it), SameSite=Strict (no
other site's page sends it) and Secure behind https. A call that changes something with a
cookie must also send the session's CSRF token in `X-CSRF-Token`, which only a page of this
origin can read (GET /__api__/v1/session): a second fence behind SameSite. Key calls need no
token: no browser sends a key by itself.

A session ends when it expires (--session-lifetime), when its user signs out or is locked,
and when the key it signed in with is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from starlette.requests import Request

from plumbline.platform.server import auth
from plumbline.platform.server.auth import AuthError, Caller, Forbidden
from plumbline.platform.server.db import ApiKey, LoginSession, User, utcnow

COOKIE = "plumbline_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SessionEnded(AuthError):
    """401 for a cookie that no longer signs anyone in (not counted as a failed attempt:
    the token is 256 random bits, and a dashboard left open meets this every day)."""


@dataclass(frozen=True)
class Credential:
    key: str | None = None  # an API key from the Authorization header
    session: str | None = None  # the token of the session cookie
    csrf: str | None = None  # the X-CSRF-Token header
    method: str = "GET"


def from_request(request: Request) -> Credential | None:
    """The request's credential: an API key wins over a cookie."""
    key = auth.key_from_header(request.headers.get("authorization"))
    if key is not None:
        return Credential(key=key, method=request.method)
    token = request.cookies.get(COOKIE)
    if token:
        return Credential(
            session=token, csrf=request.headers.get(CSRF_HEADER), method=request.method
        )
    return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def identify(s, credential: Credential) -> Caller:
    """The caller, or AuthError (401) / Forbidden (403: a change without its CSRF token)."""
    if credential.key is not None:
        return auth.authenticate(s, credential.key)
    row = find(s, credential.session or "")
    if row is None:
        raise SessionEnded("signed out (the session ended or is unknown): sign in again")
    user = s.get(User, row.user_id)
    if user is None or user.locked:
        raise SessionEnded("the session's user is locked")
    if row.key_id is not None:
        key = s.get(ApiKey, row.key_id)
        if key is None or key.revoked_at is not None:
            s.delete(row)
            raise SessionEnded("the key this session signed in with was revoked: sign in again")
    if credential.method not in SAFE_METHODS and not hmac.compare_digest(
        (credential.csrf or "").encode(), row.csrf.encode()
    ):
        raise Forbidden(
            "a change made with the session cookie needs the session's X-CSRF-Token header "
            "(GET /__api__/v1/session gives it)"
        )
    return Caller(user.id, user.guid, user.username, user.role, row.key_id or 0)


def find(s, token: str) -> LoginSession | None:
    """The live session of a cookie's token, or None."""
    if not token or len(token) > 200:
        return None
    row = s.get(LoginSession, token_hash(token))
    if row is None:
        return None
    if _aware(row.expires_at) <= utcnow():
        s.delete(row)
        return None
    return row


def start(s, user: User, key_id: int | None, lifetime: float) -> tuple[str, LoginSession]:
    """A new session for `user`: (the cookie's token, never stored, and its row)."""
    s.execute(delete(LoginSession).where(LoginSession.expires_at <= utcnow()))  # tidy up
    token = secrets.token_urlsafe(32)
    row = LoginSession(
        id=token_hash(token),
        user_id=user.id,
        key_id=key_id,
        csrf=secrets.token_urlsafe(32),
        expires_at=utcnow() + timedelta(seconds=lifetime),
    )
    s.add(row)
    s.flush()
    return token, row


def end(s, token: str) -> None:
    s.execute(delete(LoginSession).where(LoginSession.id == token_hash(token)))


def end_others(s, user_id: int, keep_token: str | None) -> None:
    """Sign the user out everywhere else (their password changed)."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep_token:
        query = query.where(LoginSession.id != token_hash(keep_token))
    s.execute(query)


def cookie(token: str, max_age: int, secure: bool) -> str:
    """The Set-Cookie value: HttpOnly, SameSite=Strict, the whole site, Secure behind https."""
    parts = [f"{COOKIE}={token}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def is_secure(request: Request, public_url: str) -> bool:
    return public_url.startswith("https://") or request.url.scheme == "https"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
