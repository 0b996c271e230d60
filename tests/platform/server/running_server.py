"""plumbline server in the test's own process: uvicorn on a free loopback port, in a thread."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn
from sqlalchemy import delete
from task_follower import wait_task

from plumbline.platform.server import auth
from plumbline.platform.server.app import Server, create_app
from plumbline.platform.server.config import ServerConfig
from plumbline.platform.server.db import AuthFailure


class RunningServer:
    """plumbline server in this process: uvicorn on a free loopback port, in a thread."""

    def __init__(self, config: ServerConfig, backend):
        self.config, self.backend = config, backend
        self.url = f"http://127.0.0.1:{config.port}"
        self.start()

    def start(self) -> None:
        self.server = Server(self.config, self.backend)
        self.uvicorn = uvicorn.Server(
            uvicorn.Config(
                create_app(self.server),
                host="127.0.0.1",
                port=self.config.port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        self.thread = threading.Thread(target=self.uvicorn.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.uvicorn.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(20)
        self.server.close()

    def restart(self) -> None:
        """A new server process's worth of state: everything must come from the database."""
        self.stop()
        self.start()

    def user(self, username: str, role: str) -> str:
        """A new user with that role; its API key."""
        with self.server.db.session() as s:
            user = auth.create_user(s, username, role)
            _, key = auth.create_key(s, user, "test")
        return key

    def forget_failed_authentications(self) -> None:
        """For tests that fail on purpose many times, about something else than the limit."""
        with self.server.db.session() as s:
            s.execute(delete(AuthFailure))

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Key {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def wait_task(self, client: httpx.Client, task_id: str, timeout: float = 120) -> dict:
        return wait_task(client, task_id, timeout)
