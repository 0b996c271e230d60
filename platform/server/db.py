"""The server's database: tables as SQLAlchemy models, and the engine with its migrations.

SQLite (one file in the data folder) by default; PostgreSQL by URL for several server
replicas. The schema is owned by Alembic migrations (`migrations/`); `Database.migrate()`
brings any database to the newest one, and a test checks that the models and the
migrations describe the same schema.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
ROLES = ("viewer", "publisher", "admin")  # each can do what the one before can
ACCESS_TYPES = ("all", "logged_in", "acl")  # Connect's words: public, any key, listed
APP_ROLES = ("viewer", "collaborator")  # per-app grants beside the owner


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guid: Mapped[str] = mapped_column(String(36), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # scrypt; None: keys only
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """Only the key's sha256 is stored; the key itself is shown once, when created."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    hint: Mapped[str] = mapped_column(String(16))  # the key's first characters, to tell keys apart
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class App(Base):
    __tablename__ = "apps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # as rsconnect names it
    slug: Mapped[str] = mapped_column(String(63), unique=True)  # DNS label: routes, k8s names
    title: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    access_type: Mapped[str] = mapped_column(String(16), default="acl")
    host: Mapped[str | None] = mapped_column(String(253), unique=True)  # its own host name
    # Served at this path too, as "/parity/" (Connect's vanity URL): vanity.py checks it.
    vanity_path: Mapped[str | None] = mapped_column(String(200), unique=True)
    vanity_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    active_bundle_id: Mapped[int | None] = mapped_column(Integer)  # no FK: bundles point here
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Permission(Base):
    __tablename__ = "permissions"
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))


class Bundle(Base):
    """One upload of an app's folder; a version once it deployed successfully."""

    __tablename__ = "bundles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deployed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    manifest: Mapped[str | None] = mapped_column(Text)  # the bundle's manifest.json, if any


class BundleToken(Base):
    """A short-lived token that lets a pod download one bundle (only its sha256 is kept)."""

    __tablename__ = "bundle_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id", ondelete="CASCADE"), index=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # deploy, restart, scale, delete
    app_id: Mapped[int | None] = mapped_column(
        ForeignKey("apps.id", ondelete="SET NULL"), index=True
    )
    bundle_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued running done failed
    code: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str | None] = mapped_column(Text)  # JSON the task returns, if any
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


class TaskLine(Base):
    """A task's output, one row per line, so that any server replica can stream it."""

    __tablename__ = "task_lines"
    __table_args__ = (UniqueConstraint("task_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    line: Mapped[str] = mapped_column(Text)


class LoginSession(Base):
    """A dashboard sign-in: the cookie holds a random token, this row only its sha256."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Signed in with this key: revoking it ends the session too.
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))  # sent back in X-CSRF-Token on changes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ServerSecret(Base):
    """Secrets the server makes for itself, shared by its replicas (the scrape key)."""

    __tablename__ = "server_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuthFailure(Base):
    """A failed authentication from a client address, kept for the limiter's window: in the
    database so that every server replica counts every other's (auth.FailureLimiter)."""

    __tablename__ = "auth_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)  # Unix time: compared as a number


class Database:
    def __init__(self, url: str):
        self.url = url
        kwargs: dict = {"future": True}
        if url.startswith("sqlite"):
            # Task threads and request threads share the file; wait for locks, do not fail.
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (creating it in an empty database)."""
        from alembic import command

        with self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """Committed when the block ends (a block may commit earlier too); rolled back on
        an exception."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the task writing lines
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
