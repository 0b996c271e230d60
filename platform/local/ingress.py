"""The one HAProxy in front of every app of a local host, shared by their supervisors.

Each app's supervisor (cluster.py) registers how to describe its part of the configuration
(its routes and the replicas HAProxy has now) and changes its replicas through `api`. Every
runtime-API command and every reload goes through one lock: a reload renders the
configuration from every app's current replicas, so a replica added by one app while
another app's new routes are loaded is never lost between the old HAProxy worker and the
new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from plumbline.platform.local.haproxy import AppRoutes, HAProxy, Server, ServerStat, render_config

DEFAULT_SERVER_TIMEOUT = 120  # seconds; an app's own is set in its backend section


class LockedAPI:
    """HAProxy's runtime API, one command at a time and never during a reload."""

    def __init__(self, ingress: Ingress):
        self._ingress = ingress

    def add_server(self, backend: str, server: Server) -> None:
        with self._ingress.lock:
            self._ingress.haproxy.api.add_server(backend, server)

    def set_state(self, backend: str, name: str, state: str) -> None:
        with self._ingress.lock:
            self._ingress.haproxy.api.set_state(backend, name, state)

    def del_server(self, backend: str, name: str) -> None:
        with self._ingress.lock:
            self._ingress.haproxy.api.del_server(backend, name)

    def servers(self, backend: str) -> dict[str, ServerStat]:
        with self._ingress.lock:
            return self._ingress.haproxy.api.servers(backend)


class Ingress:
    def __init__(self, host: str, port: int, workdir: Path, on_log: Callable[[str], None]):
        self.host, self.port = host, port
        self.haproxy = HAProxy(workdir, on_log=on_log)
        self.lock = threading.RLock()
        self.api = LockedAPI(self)
        self._apps: dict[str, Callable[[], AppRoutes]] = {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.haproxy.running

    def render(self) -> str:
        with self.lock:
            apps = [describe() for describe in self._apps.values()]
        return render_config(
            apps=apps,
            bind_host=self.host,
            port=self.port,
            admin_socket=self.haproxy.admin_socket,
            server_timeout=DEFAULT_SERVER_TIMEOUT,
        )

    def start(self) -> None:
        with self.lock:
            self.haproxy.start(self.render())

    def add(self, backend: str, describe: Callable[[], AppRoutes]) -> None:
        """Route an app (its routes as `describe()` gives them) from now on."""
        with self.lock:
            self._apps[backend] = describe
            if self.running:
                self.haproxy.reload(self.render())

    def remove(self, backend: str) -> None:
        with self.lock:
            if self._apps.pop(backend, None) is not None and self.running:
                self.haproxy.reload(self.render())

    def reload(self) -> None:
        """New routes for some app: a graceful reload with everyone's current replicas."""
        with self.lock:
            self.haproxy.reload(self.render())

    def stop(self) -> None:
        self.haproxy.stop()
