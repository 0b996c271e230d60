"""A real PostgreSQL 15 (Debian's) for the tests: its own cluster in a temporary folder,
run as the `postgres` OS user on a Unix socket in that folder (no TCP port), stopped after."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
_names = itertools.count(1)


class PostgresUnavailable(RuntimeError):
    pass


def _as_postgres(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ("runuser", "-u", "postgres", "--", *cmd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class Postgres:
    def __init__(self):
        if not (BIN / "initdb").exists():
            raise PostgresUnavailable("postgresql-15 is not installed (scripts/install.sh)")
        self.root = Path(tempfile.mkdtemp(prefix="plumbline-pg-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = 5432  # only names the socket file; nothing listens on TCP

    def start(self) -> None:
        done = _as_postgres(
            str(BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        if done.returncode:
            raise PostgresUnavailable(f"initdb failed: {done.stderr}")
        options = (
            f"-k {self.socket_dir} -p {self.port} -c listen_addresses='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        done = _as_postgres(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "start",
        )
        if done.returncode:
            log = (
                (self.root / "server.log").read_text()
                if (self.root / "server.log").exists()
                else ""
            )
            raise PostgresUnavailable(f"pg_ctl start failed: {done.stderr}{log}")

    def stop(self) -> None:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"plumbline_{os.getpid()}_{next(_names)}"
        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
