"""A Backend for the server's own tests: it records what the server asks and answers as a
backend would, without running anything. End-to-end tests use the real backends."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from plumbline.platform.backend import (
    AppRef,
    AppStatus,
    BackendError,
    NoSuchApp,
    OperationResult,
    ReplicaMetrics,
)


@dataclass
class Deployed:
    spec: object
    files: dict[str, bytes] = field(default_factory=dict)  # what was in the app folder then


class RecordingBackend:
    kind = "local"

    def __init__(self):
        self.deploys: list[Deployed] = []
        self.running: dict[str, Deployed] = {}
        self.calls: list[tuple] = []
        self.fail_next: str | None = None  # next deploy's rollout fails with this verdict
        self.raise_next: str | None = None  # next deploy raises BackendError
        self.gate: threading.Event | None = None  # deploy waits on it, when set
        # app name -> what metrics() answers (each replica's exposition), set by a test
        self.exposition: dict[str, list[ReplicaMetrics]] = {}
        self.metrics_headers: list[dict] = []
        self.lock = threading.Lock()

    def deploy(self, spec, *, emit, wait=True, timeout=None) -> OperationResult:
        if self.gate is not None:
            self.gate.wait(30)
        with self.lock:
            if self.raise_next:
                message, self.raise_next = self.raise_next, None
                raise BackendError(message)
            emit(f"rolling out {spec.name}: {spec.replicas} replicas")
            if self.fail_next:
                verdict, self.fail_next = self.fail_next, None
                emit("rollout failed; rolled back")
                return OperationResult(False, verdict)
            folder = spec.plumber_file.parent
            files = {
                p.relative_to(folder).as_posix(): p.read_bytes()
                for p in folder.rglob("*")
                if p.is_file()
            }
            record = Deployed(spec, files)
            self.deploys.append(record)
            self.running[spec.name] = record
            emit(f"{spec.name}: {spec.replicas}/{spec.replicas} replicas ready")
            return OperationResult(
                True, f"deploy of {spec.name} succeeded", revision=str(len(self.deploys))
            )

    def _require(self, app: AppRef) -> Deployed:
        if app.name not in self.running:
            raise NoSuchApp(f"no app {app.name}")
        return self.running[app.name]

    def restart(self, app, *, emit, wait=True, timeout=None):
        self._require(app)
        self.calls.append(("restart", app.name))
        return OperationResult(True, f"restart of {app.name} done")

    def scale(self, app, replicas, *, emit, wait=True, timeout=None):
        self._require(app)
        self.calls.append(("scale", app.name, replicas))
        return OperationResult(True, f"{app.name} scaled to {replicas}")

    def status(self, app):
        record = self._require(app)
        n = record.spec.replicas
        return AppStatus(
            app.name, app.namespace, self.kind, n, n, n, str(len(self.deploys)), "done"
        )

    def list_apps(self, namespace=None):
        return [self.status(AppRef(name)) for name in self.running]

    def rollback(self, app, to_revision=None, *, emit, wait=True, timeout=None):
        raise BackendError("the server rolls back by deploying a kept version")

    def logs(self, app, *, tail=None, follow=False):
        self._require(app)
        yield f"[{app.name}-1] hello from R"

    def metrics(self, app, *, headers=None, timeout=5.0):
        self._require(app)
        self.metrics_headers.append(dict(headers or {}))
        return list(self.exposition.get(app.name, []))

    def delete(self, app, *, emit):
        self.running.pop(app.name, None)
        self.calls.append(("delete", app.name))
        return OperationResult(True, f"{app.name} deleted")
