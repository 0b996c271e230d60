"""Fixtures for plumbline server: a real PostgreSQL (started once), a database URL per test
for SQLite and PostgreSQL alike, and a running server (uvicorn on loopback) around them."""

from __future__ import annotations

import pytest
from postgres_harness import Postgres
from recording_backend import RecordingBackend
from running_server import RunningServer
from support import free_port

from plumbline.platform.server.config import ServerConfig


@pytest.fixture(scope="session")
def postgres():
    pg = Postgres()
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def make_server(tmp_path, database_url):
    started = []

    def make(use_backend=None, **settings) -> RunningServer:
        config = ServerConfig(
            data_dir=tmp_path / "data", database_url=database_url, port=free_port(), **settings
        )
        running = RunningServer(config, use_backend or RecordingBackend())
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()
