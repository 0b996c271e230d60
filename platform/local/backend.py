"""`LocalBackend`: the Backend interface over the local hosts (`plumbline up`) of this user.

A client of each host's private control socket (control.py). `deploy` ships the whole
AppSpec (every flag and plumbline.toml, as a cluster deploy gets them), to the host that
runs an app of that name, or, when no name was chosen, to the only one running. The
settings that only mean something on Kubernetes (image, resources, namespace, ...) are
named in a note, since a local replica cannot honour them.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from plumbline.platform.backend import (
    AppRef,
    AppStatus,
    BackendError,
    Emit,
    NoSuchApp,
    OperationResult,
    Refused,
    ReplicaMetrics,
    ReplicaStatus,
)
from plumbline.platform.local.control import ControlClient, ControlError, HostRecord
from plumbline.platform.local.packages import install_packages
from plumbline.platform.spec.appspec import AppSpec
from plumbline.platform.spec.codec import spec_to_json

OPERATION_TIMEOUT = 900.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
# Spec fields (as in AppSpec.set_fields) a local replica cannot honour.
KUBERNETES_ONLY = (
    "namespace",
    "image",
    "image_pull_secrets",
    "resources",
    "secret_env",
    "volumes",
    "labels",
    "annotations",
    "node_selector",
    "autoscaling",
    "ingress.class_name",
    "ingress.tls_secret",
    "ingress.annotations",
    "probes",
    "files_in_image",
    "disruption_budget",
    "tmp_size",
    "rollout.max_surge",
    "rollout.max_unavailable",
    "rollout.revision_history_limit",
    "network_policy.enabled",
    "network_policy.ingress_namespace",
    "network_policy.server_namespace",
    "network_policy.namespaces",
    "packages.cache_claim",
    "packages.cache_size",
    "image_digest",
)


def _errors(exc: ControlError) -> BackendError:
    if exc.status == 404:
        return NoSuchApp(str(exc))
    if 400 <= exc.status < 500:
        return Refused(f"refused: {exc}")
    return BackendError(str(exc))


class LocalBackend:
    kind = "local"

    def __init__(self, host: str | None = None):
        """`host`: talk to that local host only (`plumbline server`'s, which takes new apps);
        None: the host that runs the app named, as `plumbline up` made them."""
        self.host = host

    def _client(self, app: AppRef | None) -> tuple[ControlClient, str]:
        """The host running the app (any app, with an empty name, when only one runs)."""
        try:
            if self.host is not None:
                return ControlClient(HostRecord.named(self.host)), app.name if app else ""
            record = HostRecord.find(app.name if app and app.name else None)
        except ControlError as exc:
            raise _errors(exc) from None
        name = app.name if app and app.name else record.apps[0]
        return ControlClient(record), name

    def _call(
        self, client: ControlClient, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            return client.call(method, path, payload)
        except ControlError as exc:
            raise _errors(exc) from None

    def _operation(
        self,
        client: ControlClient,
        reply: dict[str, Any],
        emit: Emit,
        wait: bool,
        timeout: float | None,
        started: str,
    ) -> OperationResult:
        if not wait:
            return OperationResult(True, f"{started} (not watched)")
        try:
            ok, message = client.follow(reply["operation"], emit, timeout or OPERATION_TIMEOUT)
        except ControlError as exc:
            raise _errors(exc) from None
        return OperationResult(ok, message)

    def deploy(
        self, spec: AppSpec, *, emit: Emit, wait: bool = True, timeout: float | None = None
    ) -> OperationResult:
        named = "name" in spec.set_fields
        client, name = self._client(AppRef(spec.name if named else ""))
        if name != spec.name:
            emit(f"deploying to the local cluster {name!r} (the only one running)")
            spec = replace(spec, name=name)
        ignored = [f for f in KUBERNETES_ONLY if f in spec.set_fields]
        if ignored:
            emit(f"note: the local backend ignores {', '.join(ignored)} (Kubernetes only)")
        from plumbline.packages.library import PackageError
        from plumbline.packages.requirements import RequirementsError

        try:  # before any replica starts: nothing changes when a package cannot be installed
            install_packages(spec, emit)
        except (PackageError, RequirementsError) as exc:
            raise Refused(f"refused: {exc}") from None
        reply = self._call(
            client, "POST", client.app_path(name, "deploy"), {"spec": spec_to_json(spec)}
        )
        return self._operation(client, reply, emit, wait, timeout, f"deploy of {name} started")

    def restart(
        self, app: AppRef, *, emit: Emit, wait: bool = True, timeout: float | None = None
    ) -> OperationResult:
        client, name = self._client(app)
        reply = self._call(client, "POST", client.app_path(name, "restart"))
        return self._operation(client, reply, emit, wait, timeout, f"restart of {name} started")

    def scale(
        self,
        app: AppRef,
        replicas: int,
        *,
        emit: Emit,
        wait: bool = True,
        timeout: float | None = None,
    ) -> OperationResult:
        client, name = self._client(app)
        reply = self._call(client, "POST", client.app_path(name, "scale"), {"replicas": replicas})
        return self._operation(client, reply, emit, wait, timeout, f"{name} scaling to {replicas}")

    def rollback(
        self,
        app: AppRef,
        to_revision: str | None = None,
        *,
        emit: Emit,
        wait: bool = True,
        timeout: float | None = None,
    ) -> OperationResult:
        client, name = self._client(app)
        try:
            revision = int(to_revision) if to_revision is not None else None
        except ValueError:
            raise Refused(f"refused: revision {to_revision!r} is not a number") from None
        reply = self._call(
            client, "POST", client.app_path(name, "rollback"), {"revision": revision}
        )
        return self._operation(client, reply, emit, wait, timeout, f"rollback of {name} started")

    def status(self, app: AppRef) -> AppStatus:
        client, name = self._client(app)
        return _status(self._call(client, "GET", client.app_path(name)))

    def list_apps(self, namespace: str | None = None) -> list[AppStatus]:
        found = []
        try:
            records = HostRecord.running()
        except ControlError as exc:
            raise _errors(exc) from None
        for record in records:
            if self.host is not None and record.name != self.host:
                continue  # a backend bound to one host lists that host's apps only
            client = ControlClient(record)
            found += [_status(s) for s in self._call(client, "GET", "/apps")["apps"]]
        return found

    def logs(self, app: AppRef, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        client, name = self._client(app)
        path = client.app_path(name, "logs")
        reply = self._call(client, "GET", f"{path}?lines={tail or 200}")
        yield from reply["lines"]
        last = reply["last"]
        while follow:
            time.sleep(0.5)
            reply = self._call(client, "GET", f"{path}?since={last}&lines=1000")
            yield from reply["lines"]
            last = reply["last"]

    def metrics(
        self, app: AppRef, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0
    ) -> list[ReplicaMetrics]:
        """Each ready replica's /metrics, read from its own port on loopback."""
        client, name = self._client(app)
        snapshot = self._call(client, "GET", client.app_path(name))
        found = []
        for replica in snapshot["replicas"]:
            if not replica["ready"]:
                continue
            url = f"http://127.0.0.1:{replica['port']}/metrics"
            request = urllib.request.Request(url, headers=dict(headers or {}))
            try:
                with _DIRECT.open(request, timeout=timeout) as response:
                    text = response.read().decode("utf-8", "replace")
                found.append(ReplicaMetrics(replica["name"], text))
            except urllib.error.HTTPError as exc:
                found.append(ReplicaMetrics(replica["name"], None, f"HTTP {exc.code}"))
            except (OSError, ValueError) as exc:  # stopped since the snapshot, or hung
                found.append(ReplicaMetrics(replica["name"], None, str(exc)))
        return found

    def delete(self, app: AppRef, *, emit: Emit) -> OperationResult:
        """Stop the app: its host drains the replicas, then stops HAProxy (a host that takes
        new apps stops that app only)."""
        client, name = self._client(app)
        record = client.record
        if record.open:
            reply = self._call(client, "POST", client.app_path(name, "delete"))
            return self._operation(client, reply, emit, True, None, f"delete of {name} started")
        self._call(client, "POST", "/down")
        emit(f"stopping {name} (pid {record.pid}): draining replicas, then haproxy")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if record.pid not in {r.pid for r in HostRecord.running()}:
                return OperationResult(True, f"stopped: {name}")
            time.sleep(0.2)
        return OperationResult(False, f"{name} (pid {record.pid}) is still running after 120s")


def _status(snapshot: dict[str, Any]) -> AppStatus:
    replicas = tuple(
        ReplicaStatus(
            name=r["name"],
            state=r["state"],
            ready=r["ready"],
            revision=str(r["revision"]),
            details=(
                ("PID", str(r["pid"])),
                ("PORT", str(r["port"])),
                ("REQUESTS", str(r["requests"])),
                ("IN-FLIGHT", str(r["in_flight"])),
                ("AGE", f"{r['age']:.0f}s"),
            ),
        )
        for r in snapshot["replicas"]
    )
    return AppStatus(
        name=snapshot["name"],
        namespace="local",
        backend="local",
        desired=snapshot["desired"],
        ready=snapshot["ready"],
        updated=snapshot["updated"],
        revision=str(snapshot["revision"]),
        state=snapshot["state"],
        message=snapshot["message"],
        url=snapshot["url"],
        endpoints=tuple(f"{','.join(e['verbs'])} {e['url']}" for e in snapshot["endpoints"]),
        replicas=replicas,
        available=snapshot["ready"],
        location=f"local, {snapshot['url']}",
    )
