"""`plumbline server` (run it), `plumbline server bootstrap` (the first admin key) and
`plumbline server migrate`."""

from __future__ import annotations

import logging
import re
import sys

from plumbline.platform.server import config as server_config

STORAGE = ("data_dir", "database_url")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "server",
        help="run plumbline server: R users publish to it with rsconnect",
        description="Run the publishing server: rsconnect::deployAPI() and `plumbline "
        "publish` upload bundles to it; it keeps users, API keys, apps and "
        "versions in a database and deploys through the configured backend. "
        "Every setting can also come from PLUMBLINE_SERVER_<SETTING>.",
    )
    server_config.add_arguments(parser)
    parser.set_defaults(func=cmd_run)
    sub = parser.add_subparsers(dest="server_command", metavar="SUBCOMMAND")

    boot = sub.add_parser(
        "bootstrap",
        help="create the first admin and print its API key (once)",
        description="Create an admin user and print a new API key for it. The key is shown "
        "only now: the server stores its sha256. Refused when an admin exists, "
        "unless --another is given.",
    )
    server_config.add_arguments(boot, STORAGE)
    boot.add_argument("--username", default="admin", help="the admin's user name")
    boot.add_argument(
        "--another", action="store_true", help="create an admin even though one exists already"
    )
    boot.set_defaults(func=cmd_bootstrap)

    migrate = sub.add_parser(
        "migrate",
        help="bring the database schema up to date",
        description="Apply the database migrations (the server also does it when it starts).",
    )
    server_config.add_arguments(migrate, STORAGE)
    migrate.set_defaults(func=cmd_migrate)


def _config(args) -> server_config.ServerConfig | None:
    try:
        return server_config.resolve(args)
    except server_config.ConfigError as exc:
        print(f"plumbline server: {exc}", file=sys.stderr)
        return None


def cmd_migrate(args) -> int:
    from plumbline.platform.server.db import Database

    config = _config(args)
    if config is None:
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(config.sqlalchemy_url())
    db.migrate()
    db.dispose()
    print(f"database is up to date ({_safe_url(config)})")
    return 0


def cmd_bootstrap(args) -> int:
    from sqlalchemy import select

    from plumbline.platform.server import auth
    from plumbline.platform.server.db import Database, User

    config = _config(args)
    if config is None:
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.data_dir.chmod(0o700)
    db = Database(config.sqlalchemy_url())
    db.migrate()
    try:
        with db.session() as s:
            admin = s.scalar(select(User).where(User.role == "admin").limit(1))
            if admin is not None and not args.another:
                print(
                    f"plumbline server bootstrap: an admin exists already ({admin.username}); "
                    "create keys through the API, or pass --another",
                    file=sys.stderr,
                )
                return 1
            if s.scalar(select(User.id).where(User.username == args.username)) is not None:
                print(
                    f"plumbline server bootstrap: a user {args.username!r} exists already; "
                    "choose another --username",
                    file=sys.stderr,
                )
                return 1
            user = auth.create_user(s, args.username, "admin")
            _, key = auth.create_key(s, user, "bootstrap")
    finally:
        db.dispose()
    print(
        f"admin {args.username!r} created. Its API key, shown only this once:\n\n  {key}\n\n"
        'In R:  rsconnect::addServer("<server URL>", name = "plumbline")\n'
        f'       rsconnect::connectApiUser(account = "{args.username}", server = '
        '"plumbline", apiKey = "<the key>")'
    )
    return 0


def cmd_run(args) -> int:
    import uvicorn

    from plumbline.platform.backend import BackendError
    from plumbline.platform.server.app import Server, create_app
    from plumbline.platform.server.backends import open_backend

    config = _config(args)
    if config is None:
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        backend = open_backend(config)
    except BackendError as exc:
        print(f"plumbline server: {exc}", file=sys.stderr)
        return 1
    server = Server(config, backend)
    app = create_app(server)
    print(
        f"plumbline server on http://{config.host}:{config.port} "
        f"(database {_safe_url(config)}, {config.backend} backend, data in {config.data_dir})",
        flush=True,
    )
    uv = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    try:
        uv.run()
    finally:
        server.close()
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    return 0


def _safe_url(config) -> str:
    """The database URL without a password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", config.sqlalchemy_url())
