"""`plumbline server [run|bootstrap|migrate]`: run the server, create the first admin key,
or bring the database schema up to date."""

from __future__ import annotations

import argparse
import contextlib
import re
import signal

from plumbline.exits import CommandError, ExitCode
from plumbline.platform.server import config as server_config
from plumbline.runtime import logs

ACTIONS = ("run", "bootstrap", "migrate")


def configure(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the publishing server (ACTION run, the default): rsconnect::deployAPI() and "
        "`plumbline publish` upload bundles to it; it keeps users, API keys, apps and versions "
        "in a database and deploys through the configured backend. `bootstrap` creates the "
        "first admin and prints its API key once; `migrate` brings the database schema up to "
        "date (run does it too)."
    )
    parser.add_argument(
        "action", nargs="?", choices=ACTIONS, default="run", help="what to do (default: run)"
    )
    server_config.add_arguments(parser)
    parser.add_argument("--username", default="admin", help="bootstrap: the admin's user name")
    parser.add_argument(
        "--another",
        action="store_true",
        help="bootstrap: create an admin even though one exists already",
    )
    parser.set_defaults(func=lambda args: _ACTIONS[args.action](args))


def _config(args) -> server_config.ServerConfig:
    try:
        return server_config.resolve(args)
    except server_config.ConfigError as exc:
        raise CommandError(str(exc), ExitCode.USAGE) from None


def cmd_migrate(args) -> int:
    from plumbline.platform.server.db import Database

    config = _config(args)
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
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.data_dir.chmod(0o700)
    db = Database(config.sqlalchemy_url())
    db.migrate()
    try:
        with db.session() as s:
            admin = s.scalar(select(User).where(User.role == "admin").limit(1))
            if admin is not None and not args.another:
                raise CommandError(
                    f"an admin exists already ({admin.username}); create keys through the "
                    "API, or pass --another"
                )
            if s.scalar(select(User.id).where(User.username == args.username)) is not None:
                raise CommandError(
                    f"a user {args.username!r} exists already; choose another --username"
                )
            user = auth.create_user(s, args.username, "admin")
            _, key = auth.create_key(s, user, "bootstrap")
    finally:
        db.dispose()
    print(
        f"admin {args.username!r} created. Its API key, shown only this once:\n\n  {key}\n\n"
        'In R:  rsconnect::addServer("<server URL>/__api__", name = "plumbline")\n'
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
    logs.configure("info")  # one JSON object a line, as every plumbline log
    try:
        opened = open_backend(config)
    except BackendError as exc:
        raise CommandError(str(exc)) from None
    server = None
    try:
        server = Server(opened.config, opened.backend)
        server.reconcile()
        uv = _uvicorn_server()(
            uvicorn.Config(
                create_app(server),
                host=config.host,
                port=config.port,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=5,
            )
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: setattr(uv, "should_exit", True))
        print(
            f"plumbline server on http://{config.host}:{config.port} (database "
            f"{_safe_url(config)}, {config.backend} backend, apps at "
            f"{opened.config.apps_url or opened.config.url}, data in {config.data_dir}); "
            f"dashboard at {opened.config.url}/",
            flush=True,
        )
        uv.run()
    finally:
        if server is not None:
            server.stop_taking_tasks()
        opened.close()  # the local backend's apps drain and stop; running tasks end
        if server is not None:
            server.close()
    return 0


def _uvicorn_server():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn, with SIGTERM left to the command: the apps and tasks stop after it."""

        @contextlib.contextmanager
        def capture_signals(self):
            yield

    return Server


_ACTIONS = {"run": cmd_run, "bootstrap": cmd_bootstrap, "migrate": cmd_migrate}


def _safe_url(config) -> str:
    """The database URL without a password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", config.sqlalchemy_url())
