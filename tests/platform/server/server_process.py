"""plumbline server as a user runs it: `plumbline server bootstrap`, then the server in its
own process with the local backend (replicas behind one HAProxy), stopped by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
from support import PLUMBLINE, free_port
from task_follower import wait_task


class ServerProcess:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.data = tmp / "data"
        self.port, self.apps_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.apps = f"http://127.0.0.1:{self.apps_port}"
        self.env = {**os.environ, "PLUMBLINE_STATE_DIR": str(tmp / "state")}
        self.log = tmp / "server.log"
        self.process: subprocess.Popen | None = None
        boot = subprocess.run(
            [*PLUMBLINE, "server", "bootstrap", "--data-dir", str(self.data)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        assert boot.returncode == 0, boot.stderr
        self.admin_key = re.search(r"^\s+(plk_\S+)$", boot.stdout, re.M).group(1)

    def start(self, *extra: str) -> None:
        """Start the server; `extra` flags are kept for the next start."""
        self.extra = extra or getattr(self, "extra", ())
        self.process = subprocess.Popen(
            [
                *PLUMBLINE,
                "server",
                "--backend",
                "local",
                "--data-dir",
                str(self.data),
                "--port",
                str(self.port),
                "--apps-port",
                str(self.apps_port),
                "--apps-url",
                self.apps,
                *self.extra,
            ],
            env=self.env,
            stdout=open(self.log, "a"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if self.client(self.admin_key).get("/__api__/v1/user").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("the server did not start:\n" + self.log.read_text()[-3000:])

    def add_publisher(self, username: str) -> str:
        """A publisher made by the admin through the API; their new API key."""
        admin = self.client(self.admin_key)
        made = admin.post("/__api__/v1/users", json={"username": username, "role": "publisher"})
        key = admin.post(f"/__api__/v1/users/{made.json()['id']}/keys", json={"name": "laptop"})
        return key.json()["key"]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self, key: str | None = None, base: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Key {key}"} if key else {}
        return httpx.Client(base_url=base or self.url, headers=headers, timeout=120)

    def wait_task(self, key: str, task_id: str, timeout: float = 600) -> dict:
        return wait_task(self.client(key), task_id, timeout, poll=0.3)

    def publish(self, folder: Path) -> subprocess.CompletedProcess:
        """`plumbline publish FOLDER` as alice, from a shell."""
        return subprocess.run(
            [*PLUMBLINE, "publish", str(folder), "--server", self.url],
            capture_output=True,
            text=True,
            timeout=600,
            env={**self.env, "PLUMBLINE_API_KEY": self.alice_key},
        )
