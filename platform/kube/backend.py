"""`KubernetesBackend`: the Backend interface over a Kubernetes cluster (operations.py).

Connects lazily (a kubeconfig, its context, or the in-cluster service account), and turns
the client's and the operations' errors into BackendError messages a person can act on.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace

from plumbline.platform.backend import (
    AppRef,
    AppStatus,
    BackendError,
    Emit,
    NoSuchApp,
    OperationResult,
    Refused,
    ReplicaMetrics,
)
from plumbline.platform.kube import operations
from plumbline.platform.kube.apply import ApplyError
from plumbline.platform.kube.client import Cluster, ConnectError, KubeError, Unreachable, connect
from plumbline.platform.kube.rollout import RolloutResult
from plumbline.platform.spec.appspec import AppSpec, SpecError


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (operations.InvalidPlumberFile, SpecError) as exc:
        raise Refused(f"refused: {exc}") from exc
    except operations.NoDeployment as exc:
        raise NoSuchApp(str(exc)) from exc
    except ConnectError as exc:
        raise BackendError(f"cannot connect: {exc}") from exc
    except Unreachable as exc:
        raise BackendError(f"cannot reach the Kubernetes API at {exc.message}") from exc
    except (operations.OperationError, ApplyError) as exc:
        raise BackendError(str(exc)) from exc
    except KubeError as exc:
        raise BackendError(f"the Kubernetes API answered {exc}") from exc


class KubernetesBackend:
    kind = "kubernetes"

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        force_conflicts: bool = False,
        poll_interval: float = 1.0,
        cluster: Cluster | None = None,
    ):
        """`namespace`: where apps go when neither the spec nor an AppRef names one (default:
        the context's). `force_conflicts`: take over fields another field manager owns."""
        self._connect = {"kubeconfig": kubeconfig, "context": context, "namespace": namespace}
        self._cluster = cluster
        self.force_conflicts = force_conflicts
        self.poll_interval = poll_interval

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            with _errors():
                self._cluster = connect(**self._connect)
        return self._cluster

    def _in(self, app: AppRef) -> Cluster:
        cluster = self.cluster
        return replace(cluster, namespace=app.namespace) if app.namespace else cluster

    def deploy(
        self, spec: AppSpec, *, emit: Emit, wait: bool = True, timeout: float | None = None
    ) -> OperationResult:
        with _errors():
            if "namespace" not in spec.set_fields:  # neither a flag nor plumbline.toml chose
                spec = replace(spec, namespace=self.cluster.namespace)
            result = operations.deploy(
                spec,
                self.cluster,
                wait=wait,
                force_conflicts=self.force_conflicts,
                timeout=timeout,
                poll_interval=self.poll_interval,
                out=emit,
            )
        revision = result.rollout.revision if result.rollout else None
        return OperationResult(result.ok, result.verdict, revision)

    def restart(
        self, app: AppRef, *, emit: Emit, wait: bool = True, timeout: float | None = None
    ) -> OperationResult:
        with _errors():
            result = operations.restart(
                self._in(app),
                app.name,
                wait=wait,
                timeout=timeout,
                poll_interval=self.poll_interval,
                out=emit,
            )
        return _verdict(result, f"restart of {app.name} started", emit)

    def scale(
        self,
        app: AppRef,
        replicas: int,
        *,
        emit: Emit,
        wait: bool = True,
        timeout: float | None = None,
    ) -> OperationResult:
        with _errors():
            result = operations.scale(
                self._in(app),
                app.name,
                replicas,
                wait=wait,
                timeout=timeout,
                poll_interval=self.poll_interval,
                out=emit,
            )
        return _verdict(result, f"{app.name} scaled to {replicas}", emit)

    def rollback(
        self,
        app: AppRef,
        to_revision: str | None = None,
        *,
        emit: Emit,
        wait: bool = True,
        timeout: float | None = None,
    ) -> OperationResult:
        with _errors():
            result = operations.rollback(
                self._in(app),
                app.name,
                to_revision,
                wait=wait,
                timeout=timeout,
                poll_interval=self.poll_interval,
                out=emit,
            )
        return _verdict(result, f"rollback of {app.name} applied", emit)

    def status(self, app: AppRef) -> AppStatus:
        with _errors():
            return self._status(operations.status(self._in(app), app.name))

    def _status(self, st: operations.AppStatus) -> AppStatus:
        return AppStatus(
            name=st.name,
            namespace=st.namespace,
            backend=self.kind,
            desired=st.desired,
            ready=st.ready,
            updated=st.updated,
            revision=st.revision,
            state=st.state,
            message=st.message,
            endpoints=tuple(st.urls),
            available=st.available,
            images=tuple(st.images),
            location=f"namespace {st.namespace}",
        )

    def list_apps(self, namespace: str | None = None) -> list[AppStatus]:
        """Every app of the namespace from a few list calls, not a round of calls per app."""
        with _errors():
            found = operations.statuses(self._in(AppRef("", namespace)))
        return [self._status(st) for st in found]

    def logs(self, app: AppRef, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        """Lines as the pods write them, read side by side when following."""
        lines: queue.Queue[tuple[str, str | BaseException | None]] = queue.Queue()
        cluster = self._in(app)

        def read() -> None:
            try:
                with _errors():
                    operations.logs(
                        cluster,
                        app.name,
                        tail=tail,
                        follow=follow,
                        out=lambda line: lines.put(("line", line)),
                    )
            except BaseException as exc:  # handed to the reading thread
                lines.put(("error", exc))
            finally:
                lines.put(("end", None))

        threading.Thread(target=read, daemon=True, name=f"logs-{app.name}").start()
        while True:
            kind, item = lines.get()
            if kind == "end":
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, str)
            yield item

    def metrics(
        self, app: AppRef, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0
    ) -> list[ReplicaMetrics]:
        """Each ready pod's /metrics through the API server's pod proxy (RBAC: pods/proxy)."""
        with _errors():
            found = operations.replica_metrics(self._in(app), app.name, headers=dict(headers or {}))
        return [ReplicaMetrics(pod, text, error) for pod, text, error in found]

    def delete(self, app: AppRef, *, emit: Emit) -> OperationResult:
        with _errors():
            cluster = self._in(app)
            deleted = operations.delete(cluster, app.name, out=emit)
        if deleted:
            return OperationResult(True, f"deleted {len(deleted)} objects of {app.name}")
        return OperationResult(
            True, f"nothing of {app.name} to delete in namespace {cluster.namespace}"
        )


def _verdict(result: RolloutResult | None, done: str, emit: Emit) -> OperationResult:
    if result is None:
        return OperationResult(True, f"{done} (rollout not watched)")
    if not result.ok:
        emit(f"rollout failed: {result.reason}")
        for line in result.details:
            emit(f"  {line}")
    return OperationResult(result.ok, result.verdict, result.revision)
