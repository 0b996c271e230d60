"""The Backend interface: what the CLI and the push server ask of a place where apps run.

Two implementations: Kubernetes (the engine for scale) and local (replicas of
`plumbline serve` behind HAProxy on one machine). Callers (the CLI commands, `plumbline
server`) hold a `Backend` and know neither implementation; the implementations never import
each other. Every method is synchronous and may take long (a rollout): progress goes to
`emit` one line at a time, and the one-line verdict is the result's `verdict`.

Errors a user must act on (no such app, the cluster refused, the app failed to load) raise
`BackendError` with a message that says what and why; `Refused` when nothing was changed
because the request itself is wrong (a broken plumber.R, a spec the backend cannot run). A
rollout that ran but failed is not an exception, it is a result with `ok=False`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from plumbline.platform.spec.appspec import AppSpec

Emit = Callable[[str], None]  # one progress line, without a trailing newline


class BackendError(RuntimeError):
    """An operation that cannot be done; the message says what and why."""


class NoSuchApp(BackendError):
    """The backend runs no app of that name."""


class Refused(BackendError):
    """Refused before anything changed: the request, spec or plumber.R is wrong."""


@dataclass(frozen=True)
class AppRef:
    """Which app: its name and, on Kubernetes, its namespace (ignored by the local backend).

    namespace None: the backend's own default (on Kubernetes, the kubeconfig context's
    namespace, else "default").
    """

    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class OperationResult:
    ok: bool
    verdict: str  # one line: what happened, for a person
    revision: str | None = None  # the revision serving when the operation ended


@dataclass(frozen=True)
class ReplicaStatus:
    name: str  # pod name, or the local replica's name
    state: str  # backend's word: Running/Pending/... or starting/ready/draining/...
    ready: bool
    revision: str | None = None
    restarts: int = 0
    # Backend-specific facts worth a column in `plumbline status`: (heading, value).
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AppStatus:
    name: str
    namespace: str
    backend: str  # "kubernetes" or "local"
    desired: int
    ready: int
    updated: int
    revision: str | None
    state: str  # "done" (rolled out), "waiting" or "failed"
    message: str = ""
    url: str | None = None  # where clients reach the app (ingress), when known
    endpoints: tuple[str, ...] = ()  # "GET http://host/path", one per route
    replicas: tuple[ReplicaStatus, ...] = field(default=())
    available: int = 0  # replicas ready long enough to count (Kubernetes' minReadySeconds)
    images: tuple[str, ...] = ()  # container images (Kubernetes)
    location: str = ""  # where it runs, for a person: "namespace shop", "local"

    @property
    def healthy(self) -> bool:
        return self.state == "done" and self.ready >= self.desired


@dataclass(frozen=True)
class ReplicaMetrics:
    """One ready replica's Prometheus exposition (its /metrics), or why it could not be read."""

    replica: str  # pod name, or the local replica's name
    text: str | None  # None when the read failed
    error: str = ""


@runtime_checkable
class Backend(Protocol):
    kind: str  # "kubernetes" or "local"

    def deploy(
        self, spec: AppSpec, *, emit: Emit, wait: bool = True, timeout: float | None = None
    ) -> OperationResult:
        """Create or update the app so it runs `spec`: a rolling update that keeps serving."""
        ...

    def restart(
        self, app: AppRef, *, emit: Emit, wait: bool = True, timeout: float | None = None
    ) -> OperationResult:
        """Replace every replica, one by one, with no failed request."""
        ...

    def scale(
        self,
        app: AppRef,
        replicas: int,
        *,
        emit: Emit,
        wait: bool = True,
        timeout: float | None = None,
    ) -> OperationResult: ...

    def status(self, app: AppRef) -> AppStatus: ...

    def list_apps(self, namespace: str | None = None) -> list[AppStatus]:
        """Every app this backend runs (on Kubernetes: those plumbline manages)."""
        ...

    def rollback(
        self,
        app: AppRef,
        to_revision: str | None = None,
        *,
        emit: Emit,
        wait: bool = True,
        timeout: float | None = None,
    ) -> OperationResult:
        """Back to the previous revision, or to `to_revision`."""
        ...

    def logs(self, app: AppRef, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        """The replicas' output, one line at a time, each prefixed with its replica."""
        ...

    def metrics(
        self, app: AppRef, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0
    ) -> list[ReplicaMetrics]:
        """The /metrics of every ready replica, read now, each on its own (not through the
        ingress, which would pick one). `headers` go with each read (the server's scrape
        key, for apps that need a key)."""
        ...

    def delete(self, app: AppRef, *, emit: Emit) -> OperationResult:
        """Remove everything the backend created for the app."""
        ...
