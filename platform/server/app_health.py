"""Each app's health as the dashboard's badge shows it, from the backend's view of its replicas.

The app list asks for every app at once, every few seconds, from every open dashboard: the
backend is asked once (`list_apps`) and its answer kept for a moment, so many dashboards
cost the backend what one does.
"""

from __future__ import annotations

import threading
import time

from plumbline.platform.backend import AppStatus, Backend, BackendError

# The badge's words, from best to worst.
HEALTHY, DEPLOYING, DEGRADED, DOWN, STOPPED, NOT_DEPLOYED, UNKNOWN = (
    "healthy",
    "deploying",
    "degraded",
    "down",
    "stopped",
    "not deployed",
    "unknown",
)


def health(deployed: bool, status: AppStatus | None, busy: bool) -> str:
    """The badge: `deployed` (has an active version), `status` (None: the backend runs no
    such app), `busy` (a deploy, restart or scale task is queued or running)."""
    if not deployed:
        return DEPLOYING if busy else NOT_DEPLOYED
    if status is None:
        return DEPLOYING if busy else DOWN
    if busy:
        return DEPLOYING
    if status.desired == 0:
        return STOPPED
    if status.healthy:
        return HEALTHY
    if status.ready == 0:
        return DOWN
    if status.ready < status.desired:
        return DEGRADED
    return DEPLOYING  # enough ready, the rollout not settled yet


def summary(deployed: bool, status: AppStatus | None, busy: bool, error: str = "") -> dict:
    badge = UNKNOWN if error else health(deployed, status, busy)
    return {
        "health": badge,
        "ready": status.ready if status else 0,
        "desired": status.desired if status else 0,
        "state": status.state if status else None,
        "message": error or (status.message if status else ""),
    }


class StatusCache:
    """The backend's `list_apps()`, asked at most once per `ttl` seconds."""

    def __init__(self, backend: Backend, namespace: str | None, ttl: float = 2.0):
        self.backend, self.namespace, self.ttl = backend, namespace, ttl
        self._lock = threading.Lock()
        self._at = -1e9
        self._statuses: dict[str, AppStatus] = {}
        self._error = ""

    def snapshot(self) -> tuple[dict[str, AppStatus], str]:
        """({app name on the backend: status}, "" or why the backend could not say)."""
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                try:
                    listed = self.backend.list_apps(self.namespace)
                    self._statuses, self._error = {s.name: s for s in listed}, ""
                except BackendError as exc:
                    self._statuses, self._error = {}, f"the backend could not say: {exc}"
                self._at = time.monotonic()
            return self._statuses, self._error

    def forget(self) -> None:
        """Ask again next time (an operation just changed something)."""
        with self._lock:
            self._at = -1e9
