"""Who is calling: API keys (stored as sha256, shown once), roles, and failed-auth limits.

A key is 40 random URL-safe characters after a `plk_` prefix (about 240 bits), so a plain
sha256 is enough to store it: nobody can guess a key from its hash, and a lookup is one
indexed query. Clients send it as rsconnect does: `Authorization: Key <key>`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from plumbline.platform.server.db import (
    ROLES,
    ApiKey,
    App,
    AuthFailure,
    Database,
    Permission,
    User,
    utcnow,
)

KEY_PREFIX = "plk_"
log = logging.getLogger("plumbline.server.auth")


class AuthError(Exception):
    """401: no credential, or one that is not valid."""


class Forbidden(Exception):
    """403: a valid caller that may not do this."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def key_from_header(value: str | None) -> str | None:
    """The key in `Authorization: Key <key>` (rsconnect's form; `Bearer` is accepted too)."""
    if not value:
        return None
    scheme, _, key = value.strip().partition(" ")
    if scheme.lower() not in ("key", "bearer") or not key.strip():
        return None
    return key.strip()


@dataclass(frozen=True)
class Caller:
    """The authenticated user of one request (a detached snapshot, safe across sessions)."""

    id: int
    guid: str
    username: str
    role: str
    key_id: int

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: str) -> None:
        if not self.at_least(role):
            raise Forbidden(f"this needs the {role} role; {self.username} is a {self.role}")


def authenticate(session: Session, key: str) -> Caller:
    api_key = session.scalar(select(ApiKey).where(ApiKey.hash == hash_key(key)))
    if api_key is None or api_key.revoked_at is not None:
        raise AuthError("invalid or revoked API key")
    user = session.get(User, api_key.user_id)
    if user is None or user.locked:
        raise AuthError("the key's user is locked")
    api_key.last_used_at = utcnow()
    return Caller(user.id, user.guid, user.username, user.role, api_key.id)


def create_user(session: Session, username: str, role: str, email: str | None = None) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    user = User(guid=str(uuid.uuid4()), username=username, role=role, email=email)
    session.add(user)
    session.flush()
    return user


def create_key(session: Session, user: User, name: str) -> tuple[ApiKey, str]:
    """A new key for `user`: (its row, the key itself, which is never stored)."""
    key = new_key()
    row = ApiKey(user_id=user.id, name=name, hint=key[: len(KEY_PREFIX) + 4], hash=hash_key(key))
    session.add(row)
    session.flush()
    return row, key


# ---- what a caller may do with an app ---------------------------------------------------


def app_role(session: Session, caller: Caller, app: App) -> str | None:
    """'owner', 'collaborator', 'viewer' or None (admins act as owners)."""
    if app.owner_id == caller.id:
        return "owner"
    perm = session.get(Permission, (app.id, caller.id))
    return perm.role if perm else None


def can_change(session: Session, caller: Caller, app: App) -> bool:
    if caller.role == "admin":
        return True
    return caller.role == "publisher" and app_role(session, caller, app) in (
        "owner",
        "collaborator",
    )


def require_change(session: Session, caller: Caller, app: App) -> None:
    if not can_change(session, caller, app):
        raise Forbidden(
            f"{caller.username} may not change the app {app.name!r} (only its "
            "owner, its collaborators and admins may)"
        )


def require_owner(session: Session, caller: Caller, app: App) -> None:
    if caller.role != "admin" and app.owner_id != caller.id:
        raise Forbidden(f"only the owner of {app.name!r} or an admin may do this")


def key_hashes_for_app(session: Session, app: App) -> list[str]:
    """sha256 of every key that may call the app's endpoints (for key-only apps)."""
    query = (
        select(ApiKey.hash)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.revoked_at.is_(None), User.locked.is_(False))
    )
    if app.access_type == "acl":
        allowed = select(Permission.user_id).where(Permission.app_id == app.id)
        query = query.where(
            (User.id == app.owner_id) | (User.role == "admin") | User.id.in_(allowed)
        )
    return sorted(session.scalars(query))


# ---- failed authentications -------------------------------------------------------------


class FailureLimiter:
    """At most `limit` failed authentications per client address within `window` seconds;
    past that the address gets 429 until the window has passed. Counted in the database, so
    several server replicas (on one PostgreSQL) limit together: an address cannot multiply
    its guesses by the number of replicas. Both methods query it: call them in a thread."""

    def __init__(self, db: Database, limit: int, window: float, clock=time.time):
        self.db, self.limit, self.window, self.clock = db, limit, window, clock

    def retry_after(self, client: str) -> float:
        """Seconds this client must wait, or 0 when it may try."""
        now = self.clock()
        with self.db.session() as s:
            count, oldest = s.execute(
                select(func.count(), func.min(AuthFailure.at)).where(self._recent(client, now))
            ).one()
        if count < self.limit:
            return 0.0
        return max(0.0, oldest + self.window - now)

    def _recent(self, client: str, now: float):
        """This client's failures within the window (its column keeps 64 characters)."""
        return and_(AuthFailure.client == client[:64], AuthFailure.at > now - self.window)

    def failed(self, client: str, reason: str, path: str) -> None:
        now = self.clock()
        with self.db.session() as s:
            # Failures past the window count for nobody: the table stays as small as the window.
            s.execute(delete(AuthFailure).where(AuthFailure.at <= now - self.window))
            s.add(AuthFailure(client=client[:64], at=now))
            s.flush()
            count = s.scalar(select(func.count()).where(self._recent(client, now)))
        log.warning(
            "authentication failed",
            extra={
                "fields": {
                    "event": "auth_failed",
                    "client": client,
                    "reason": reason,
                    "path": path,
                    "failures_in_window": count,
                }
            },
        )
