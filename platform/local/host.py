"""A local host: one process running apps behind one HAProxy, answering its private control
socket until it is stopped.

`plumbline up` runs a host with one app (the host's name is the app's). A host opened
`open_to_new_apps` (what `plumbline server` runs) starts with none: a deploy of a name it
does not run yet adds that app beside the others, each with its own replicas and its own
routes in the shared HAProxy; deleting an app stops its replicas and its routes only.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from plumbline.platform.local.cluster import MAX_REPLICAS, LocalCluster, Operation, Settings
from plumbline.platform.local.control import ControlError, HostRecord
from plumbline.platform.local.control_server import ControlServer
from plumbline.platform.local.haproxy import HAProxyError
from plumbline.platform.local.ingress import Ingress
from plumbline.platform.spec.appspec import AppSpec
from plumbline.platform.spec.codec import spec_from_json


class LocalHost:
    def __init__(
        self,
        spec: AppSpec | None,
        settings: Settings,
        *,
        say: Callable[[str], None],
        name: str | None = None,
        open_to_new_apps: bool = False,
    ):
        if spec is None and not (name and open_to_new_apps):
            raise ValueError("a host without an app needs a name and open_to_new_apps")
        self.name = name or spec.name
        self.settings = settings
        self.say = say
        self.open_to_new_apps = open_to_new_apps
        for other in HostRecord.running():
            taken = {other.name, *other.apps}
            if self.name in taken or (spec is not None and spec.name in taken):
                raise ControlError(
                    f"a local cluster named {spec.name if spec else self.name!r}"
                    f" is already running at {other.url} (pid {other.pid}); "
                    "stop it with `plumbline down` or give --name"
                )
        if spec is not None and spec.replicas > MAX_REPLICAS:
            raise ControlError(
                f"replicas {spec.replicas}: the local backend runs at most {MAX_REPLICAS}"
            )
        self.workdir = Path(tempfile.mkdtemp(prefix="plumbline-local-"))
        self.ingress = Ingress(
            settings.host, settings.port, self.workdir, on_log=lambda line: self._log_haproxy(line)
        )
        self.lock = threading.Lock()
        self.operations: dict[int, Operation] = {}
        self._op_ids = itertools.count(1)
        self.clusters: dict[str, LocalCluster] = {}
        self._threads: dict[str, threading.Thread] = {}
        self.main: LocalCluster | None = None
        if spec is not None:
            self.main = self._new_cluster(spec)
        self.stopped = threading.Event()
        self.fatal: str | None = None
        self.control = ControlServer(
            self,
            HostRecord.socket_for(self.name),
            load_spec=spec_from_json,
            max_replicas=MAX_REPLICAS,
        )
        self.record = self._current_record()

    @property
    def url(self) -> str:
        return self.ingress.url

    def _new_cluster(self, spec: AppSpec, initial: Operation | None = None) -> LocalCluster:
        cluster = LocalCluster(
            spec,
            self.settings,
            ingress=self.ingress,
            say=self.say,
            operations=self.operations,
            op_ids=self._op_ids,
            initial=initial,
        )
        self.clusters[spec.name] = cluster
        return cluster

    def _log_haproxy(self, line: str) -> None:
        if self.main is not None:  # one app: HAProxy's lines are part of its logs
            self.main._log("haproxy", line)
        else:
            self.say(f"haproxy | {line}")

    # ---- what the control server asks (any thread) ---------------------------------------

    def app(self, name: str) -> LocalCluster | None:
        with self.lock:
            return self.clusters.get(name)

    def apps(self) -> list[LocalCluster]:
        with self.lock:
            return list(self.clusters.values())

    def operation(self, op_id: int) -> Operation | None:
        return self.operations.get(op_id)

    def deploy(self, spec: AppSpec) -> Operation:
        """Roll out `spec` on its app; on an open host, a new name starts a new app."""
        with self.lock:
            cluster = self.clusters.get(spec.name)
            if cluster is not None:
                return cluster.submit("deploy", spec=spec)
            if not self.open_to_new_apps:
                raise ControlError(
                    f"no app named {spec.name!r} on this local cluster (it runs "
                    f"{', '.join(self.clusters)})",
                    404,
                )
            op = Operation("deploy", next(self._op_ids), spec.name)
            self.operations[op.id] = op
            op.events.append(
                f"{spec.name}: starting {spec.replicas} replicas behind the ingress {self.url}"
            )
            cluster = self._new_cluster(spec, initial=op)
            self._start(cluster)
        self._write_record()
        return op

    def delete(self, name: str) -> Operation:
        """Stop one app: drain and stop its replicas, then take its routes out."""
        with self.lock:
            cluster = self.clusters.get(name)
            if cluster is None:
                raise ControlError(f"no app named {name!r} on this local cluster", 404)
            op = Operation("delete", next(self._op_ids), "")  # not the app's: outlives it
            self.operations[op.id] = op
            thread = self._threads.get(name)
        cluster.request_stop("delete")

        def wait() -> None:
            if thread is not None:
                thread.join()
            op.finish(True, f"deleted {name}: replicas stopped, routes removed")

        threading.Thread(target=wait, daemon=True, name=f"delete-{name}").start()
        return op

    def request_stop(self, reason: str) -> None:
        for cluster in self.apps():
            cluster.request_stop(reason)
        self.stopped.set()

    # ---- running --------------------------------------------------------------------------

    def _start(self, cluster: LocalCluster) -> None:
        name = cluster.spec.name

        def run() -> None:
            try:
                cluster.run()
            finally:
                with self.lock:
                    if self.clusters.get(name) is cluster:
                        del self.clusters[name]
                        self._threads.pop(name, None)
                if cluster.fatal:
                    self.say(f"{name}: {cluster.fatal}")
                self._write_record()

        thread = threading.Thread(target=run, daemon=True, name=f"app-{name}")
        self._threads[name] = thread
        thread.start()

    def _current_record(self) -> HostRecord:
        return HostRecord(
            self.name,
            self.ingress.url,
            str(self.control.path),
            os.getpid(),
            tuple(self.clusters),
            self.open_to_new_apps,
        )

    def _write_record(self) -> None:
        with self.lock:
            self.record = self._current_record()
        if not self.stopped.is_set():
            self.record.write()

    def run(self) -> int:
        """Serve until stopped (request_stop, or `plumbline down`); 0 on a clean stop."""
        try:
            self.ingress.start()
        except HAProxyError as exc:
            self.fatal = str(exc)
            shutil.rmtree(self.workdir, ignore_errors=True)
            return 1
        self.say(f"ingress: haproxy on {self.url} (pid {self.ingress.haproxy.process.pid})")
        self.control.start()
        self.record.write()
        try:
            if self.main is not None:  # `plumbline up`: the app runs in this thread
                code = self.main.run()
                self.fatal = self.main.fatal
                return code
            self.stopped.wait()
            for thread in list(self._threads.values()):
                thread.join()
            return 0
        finally:
            self.stopped.set()
            self.record.remove()
            self.control.stop()
            self.ingress.stop()
            self.say("haproxy stopped")
            shutil.rmtree(self.workdir, ignore_errors=True)
