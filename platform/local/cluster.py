"""The local cluster's supervisor: N replicas of `plumbline serve` behind HAProxy.

Works like a ReplicaSet controller: one loop compares what runs with what is wanted
(replica count, revision of the plumber.R) and makes one safe step at a time. Restart and
deploy bump the revision, so a rolling update is just the loop replacing old replicas:
start one new, wait until HAProxy has it in rotation, drain an old one in HAProxy, stop it
once HAProxy has no request on it. Signal handlers and the control endpoint only enqueue
commands; the loop is the only thread that changes anything.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from plumbline.exits import ExitCode
from plumbline.platform.local.haproxy import (
    AppRoutes,
    HAProxyError,
    Server,
    backend_name,
    die_with_parent,
    ingress_routes,
)
from plumbline.platform.local.ingress import Ingress
from plumbline.platform.local.ports import listen_port
from plumbline.platform.spec.serve import (
    local_placement,
    serve_arguments,
    serve_environment,
    serve_table,
    without_serve_settings,
)
from plumbline.platform.spec.appspec import AppSpec, with_api
from plumbline.platform.spec.codec import spec_to_json
from plumbline.routes import route_table
from plumbline.runtime import settings

TICK = 0.2  # seconds between two looks at the replicas
LOG_LINES = 2000  # lines of replica output kept for `plumbline logs`
# `plumbline serve` exit codes that retrying cannot fix.
EXIT_CODES = {
    ExitCode.USAGE: "exited: bad serve settings",
    ExitCode.APP_LOAD: "exited: plumber.R failed to load",
    ExitCode.BIND: "exited: could not bind its port",
    ExitCode.PACKAGES: "exited: its R packages could not be installed",
}
ACTIVE = ("starting", "joining", "ready", "unready")  # counted as replicas of the set
# The most replicas one local app may have: each is a server process with its own R workers.
MAX_REPLICAS = 16
# Replicas loading R at the same time: more only make each slower on a small machine.
STARTING_AT_ONCE = max(2, min(os.cpu_count() or 1, 8))
HISTORY = 10  # revisions kept for `rollback --local`


class ClusterError(RuntimeError):
    """Something the user must fix (the app did not load, a port is taken, ...)."""


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    unready_timeout: float = 15.0  # a ready replica unready this long is replaced
    startup_timeout: float = 300.0  # a new replica not ready this long is replaced
    drain_timeout: float = 30.0  # longest wait for HAProxy to finish a draining replica
    access_log: bool = False
    watch: bool = False


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def replica_command(spec: AppSpec, port: int, access_log: bool) -> tuple[list[str], dict[str, str]]:
    """The app's `plumbline serve` command line and environment for one local replica.

    The same arguments a pod runs (serve_command.py), on loopback and with no drain delay:
    HAProxy has already drained a replica when it gets SIGTERM. The replica does not
    inherit PLUMBLINE_* serve settings from this shell, so plumbline.toml counts as in a
    pod. Per-request access lines are off unless `up --access-log` asks for them or the
    app's own [serve] table decides.
    """
    cmd = [sys.executable, "-m", "plumbline", *serve_arguments(spec, local_placement(spec, port))]
    env = {**without_serve_settings(os.environ), **serve_environment(spec)}
    if "access_log" not in serve_table(spec):
        env[settings.BY_NAME["access_log"].env] = "on" if access_log else "off"
    return cmd, env


def describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        return f"killed by {name}" + (" (perhaps out of memory?)" if name == "SIGKILL" else "")
    return EXIT_CODES.get(code, f"exited with code {code}")


def _why(output) -> str:
    """The replica's last plain-text lines (R's message), without JSON logs and warnings."""
    lines = [
        line
        for line in output
        if line.strip()
        and not line.lstrip().startswith("{")
        and "warnings.warn" not in line
        and "UserWarning" not in line
    ]
    return "\n".join(f"  {line}" for line in (lines or list(output))[-12:])


@dataclass
class Replica:
    name: str
    port: int
    revision: int
    plumber_file: Path
    process: subprocess.Popen
    started_at: float = field(default_factory=time.monotonic)
    state: str = "starting"  # starting, joining, ready, unready, draining, stopping, exited
    last_ready: float = 0.0
    ever_ready: bool = False
    stop_deadline: float = 0.0
    served_before_reload: int = 0
    served: int = 0
    in_flight: int = 0
    in_haproxy: bool = False
    stop_requested: bool = False
    output: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200))
    pump: threading.Thread | None = None  # reads its output into `output` and the logs

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal_group(self, sig: int) -> None:
        """The replica and its R workers share a process group (their own session)."""
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class Operation:
    """A restart, scale or deploy asked for through the control endpoint."""

    kind: str
    id: int
    app: str = ""
    events: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    message: str = ""

    def finish(self, ok: bool, message: str) -> None:
        self.ok, self.message = ok, message
        self.events.append(message)
        self.done.set()


def stripped_prefixes(spec: AppSpec) -> tuple[str, ...]:
    """The ingress path prefixes HAProxy removes: the app's own when its runtime is told it is
    served under it (--root-path), so the app sees its paths as on its own, and then its
    aliases (a vanity path), routed as the prefix is."""
    prefix = (spec.ingress.path_prefix or "").rstrip("/")
    if not prefix:
        return ()
    root = spec.env.get(settings.BY_NAME["root_path"].env) or serve_table(spec).get("root_path")
    if not root or root.rstrip("/") != prefix:
        return ()
    return (prefix, *(alias.rstrip("/") for alias in spec.ingress.path_aliases))


def only_routes_differ(old: AppSpec, new: AppSpec) -> bool:
    """Nothing a replica runs changes, only where the ingress routes the app from (a vanity
    path set or cleared, a host name): HAProxy takes it without a rollout, as an Ingress
    change rolls no pods out."""
    # api: the same plumber.R's routes, read by R or not; set_fields: which settings were
    # given (the vanity path's key is given only while there is one).
    return (
        old.ingress != new.ingress
        and replace(new, ingress=old.ingress, api=old.api, set_fields=old.set_fields) == old
    )


class LocalCluster:
    """One app's replicas behind the host's shared ingress (ingress.py)."""

    def __init__(
        self,
        spec: AppSpec,
        settings: Settings,
        *,
        ingress: Ingress,
        say: Callable[[str], None] = print,
        operations: dict[int, Operation] | None = None,
        op_ids: Iterator[int] | None = None,
        initial: Operation | None = None,
    ):
        self.spec = spec
        self.settings = settings
        self.say = say  # progress lines and replica output, for the console
        self.revision = 1
        self.plumber_file = spec.plumber_file.resolve()
        self.digest = file_digest(self.plumber_file)
        self.replicas: list[Replica] = []
        self.lock = threading.Lock()  # guards replicas/logs for readers on other threads
        self.commands: queue.Queue = queue.Queue()
        self.logs: collections.deque = collections.deque(maxlen=LOG_LINES)
        self.log_seq = itertools.count(1)
        # Shared by the apps of one host, so an operation id names one operation there.
        self.operations: dict[int, Operation] = {} if operations is None else operations
        self._op_ids = itertools.count(1) if op_ids is None else op_ids
        self.initial = initial  # a deploy that created this app: done when it first serves
        self._names = itertools.count(1)
        self.rollout: Operation | None = None
        self.rollout_deadline = 0.0
        self.pending_scale: Operation | None = None
        self.previous: tuple[int, Path, AppSpec, str] | None = None  # to roll back a deploy
        # revision -> (spec, digest of its plumber.R): what `rollback` can return to
        self.history: dict[int, tuple[AppSpec, str]] = {1: (spec, self.digest)}
        self.last_failure = ""
        self.failures = 0  # consecutive replicas that died before or after becoming ready
        self.next_start = 0.0
        self.announced_ready = False
        self.stopping = False
        self.fatal: str | None = None
        self.ingress = ingress
        self.api = ingress.api
        self.backend = backend_name(spec.name)
        self.routes = ingress_routes(spec)
        self.host_name = spec.ingress.host
        self.strip = stripped_prefixes(spec)
        self._last_watch = 0.0

    # ----- public, thread-safe: called from signal handlers and the control endpoint -----

    @property
    def url(self) -> str:
        return self.ingress.url

    def submit(self, kind: str, **params) -> Operation:
        op = Operation(kind, next(self._op_ids), self.spec.name)
        self.operations[op.id] = op
        self.commands.put((kind, params, op))
        return op

    def request_stop(self, reason: str = "stop") -> None:
        self.commands.put(("stop", {"reason": reason}, None))

    def snapshot(self) -> dict:
        with self.lock:
            replicas = [
                {
                    "name": r.name,
                    "state": r.state,
                    "ready": r.state == "ready",
                    "pid": r.pid,
                    "port": r.port,
                    "revision": r.revision,
                    "requests": r.served,
                    "in_flight": r.in_flight,
                    "age": round(time.monotonic() - r.started_at, 1),
                }
                for r in self.replicas
                if r.state != "exited"
            ]
        api = self.spec.api
        endpoints = [
            {"verbs": list(ep.verbs), "path": ep.path.raw, "url": self.url + ep.path.raw}
            for ep in (api.endpoints if api else ())
        ]
        ready = sum(r["ready"] for r in replicas)
        updated = sum(r["revision"] == self.revision for r in replicas)
        settled = (
            self.rollout is None
            and ready == self.spec.replicas == len(replicas)
            and updated == len(replicas)
        )
        return {
            "name": self.spec.name,
            "url": self.url,
            "revision": self.revision,
            "plumber_file": str(self.plumber_file),
            "desired": self.spec.replicas,
            "ready": ready,
            "updated": updated,
            "replicas": replicas,
            "state": "done" if settled else "waiting",
            "message": self.last_failure if not settled else "",
            "endpoints": endpoints,
            "pid": os.getpid(),
            "spec": spec_to_json(self.spec),
        }

    def log_lines(self, since: int = 0, limit: int = 200) -> list[tuple[int, str]]:
        with self.lock:
            lines = [(seq, line) for seq, line in self.logs if seq > since]
        return lines[-limit:]

    # ----- the loop -----

    def run(self) -> int:
        """Supervise the app's replicas until asked to stop; 0 on a clean stop.

        On 1, `fatal` says why (the app did not load, haproxy failed, ...)."""
        try:
            self.ingress.add(self.backend, self.describe)
        except HAProxyError as exc:
            self.fatal = str(exc)
            self._fail_operations()
            return 1
        try:
            while not self.stopping:
                try:
                    kind, params, op = self.commands.get(timeout=TICK)
                    self._handle(kind, params, op)
                except queue.Empty:
                    pass
                self._tick()
        finally:
            self._shutdown()
        return 1 if self.fatal else 0

    def _handle(self, kind: str, params: dict, op: Operation | None) -> None:
        if kind == "stop":
            self.say(f"stopping ({params['reason']})")
            self.stopping = True
        elif self.rollout is not None and kind in ("restart", "deploy", "rollback"):
            op.finish(False, f"a {self.rollout.kind} is already in progress")
        elif kind == "restart":
            self._begin_rollout(op, self.plumber_file, self.spec, self.digest)
        elif kind == "deploy":
            self._deploy(op, params["spec"])
        elif kind == "rollback":
            self._rollback(op, params.get("revision"))
        elif kind == "scale":
            self.spec = replace(self.spec, replicas=int(params["replicas"]))
            self.say(f"scaling to {self.spec.replicas} replicas")
            if self.pending_scale is not None:
                self.pending_scale.finish(False, "superseded by another scale")
            self.pending_scale = op

    def _deploy(self, op: Operation, spec: AppSpec) -> None:
        """Roll out `spec`, all of it: its plumber.R, serve settings, env, replicas, routes."""
        path = spec.plumber_file.resolve()
        try:
            api = route_table(path, settings.entrypoint_packages(path))  # R loads it, if there
            spec = with_api(replace(spec, plumber_file=path), api)
            ingress_routes(spec)
            digest = file_digest(path)
        except Exception as exc:  # an annotation error, a path HAProxy cannot route
            op.finish(False, f"not deployed: {exc}")
            return
        if digest == self.digest and only_routes_differ(self.spec, spec):
            self._reroute(op, spec)
            return
        self._begin_rollout(op, path, spec, digest)

    def _reroute(self, op: Operation, spec: AppSpec) -> None:
        """New routes for the same replicas: a graceful HAProxy reload, no rollout."""
        previous = (self.spec, self.routes, self.host_name, self.strip)
        self.spec = spec
        error = self._update_routes()
        if error:  # HAProxy refused them: it still runs the previous routes
            self.spec, self.routes, self.host_name, self.strip = previous
            op.finish(False, f"not deployed: {error}")
            return
        self.history[self.revision] = (spec, self.digest)
        paths = ", ".join(route.path for route in self.routes)
        op.finish(
            True,
            f"{op.kind} complete: routes updated ({paths}), revision "
            f"{self.revision} kept, no replica restarted",
        )

    def _rollback(self, op: Operation, revision: int | None) -> None:
        """Back to an earlier revision's spec, rolled out as a new revision (as Kubernetes)."""
        earlier = sorted(r for r in self.history if r != self.revision)
        target = revision if revision is not None else (earlier[-1] if earlier else None)
        if target is None or target not in self.history or target == self.revision:
            known = ", ".join(map(str, earlier)) or "none"
            op.finish(
                False, f"no revision {target} to roll back to (earlier revisions kept: {known})"
            )
            return
        spec, digest = self.history[target]
        spec = replace(spec, replicas=self.spec.replicas)  # as on Kubernetes: the template only
        try:
            current = file_digest(spec.plumber_file)
        except OSError:
            current = ""
        if current != digest:
            op.finish(
                False,
                f"revision {target}'s {spec.plumber_file} has changed or is gone "
                "since; deploy it again instead",
            )
            return
        self._begin_rollout(op, spec.plumber_file, spec, digest)

    def _begin_rollout(self, op: Operation, path: Path, spec: AppSpec, digest: str) -> None:
        self.previous = (self.revision, self.plumber_file, self.spec, self.digest)
        self.revision += 1
        self.plumber_file, self.spec, self.digest = path, spec, digest
        self.history[self.revision] = (spec, digest)
        for old in sorted(self.history)[:-HISTORY]:
            del self.history[old]
        self.rollout = op
        self.rollout_deadline = time.monotonic() + spec.rollout.progress_deadline_seconds
        self._progress(
            f"{op.kind}: rolling out revision {self.revision} "
            f"({self.spec.replicas} replicas, one at a time)"
        )

    def _progress(self, message: str) -> None:
        self.say(message)
        for op in (self.rollout, self.pending_scale):
            if op is not None:
                op.events.append(message)

    def _tick(self) -> None:
        stats = self._haproxy_stats()
        now = time.monotonic()
        for replica in list(self.replicas):
            self._observe(replica, stats, now)
        if self.stopping or self.fatal:
            return
        self._reconcile(now)
        self._check_operations()
        if self.rollout is not None and now > self.rollout_deadline:
            self._abort_rollout(
                f"no progress within {self.spec.rollout.progress_deadline_seconds}s"
                " (spec.rollout.progress_deadline_seconds)"
            )
        if self.settings.watch and now - self._last_watch > 1.0:
            self._last_watch = now
            self._watch_file()

    def _haproxy_stats(self) -> dict:
        if not self.ingress.running:
            self.fatal = "haproxy exited unexpectedly"
            self.stopping = True
            return {}
        try:
            return self.api.servers(self.backend)
        except OSError:
            return {}  # mid-reload; look again next tick

    def _observe(self, r: Replica, stats: dict, now: float) -> None:
        code = r.process.poll()
        stat = stats.get(r.name)
        if stat is not None:
            r.served = r.served_before_reload + stat.total_sessions
            r.in_flight = stat.current_sessions + stat.queued
        if code is not None:
            self._reap(r, code)
            return
        if r.state == "starting":
            if self._probe_ready(r):
                self._join(r)
            elif now - r.started_at > self.settings.startup_timeout:
                self._progress(
                    f"{r.name} not ready after {self.settings.startup_timeout:.0f}s; replacing it"
                )
                self._stop(r, now)
        elif r.state in ("joining", "ready", "unready") and stat is not None:
            if stat.in_rotation:
                if r.state != "ready":
                    self._progress(
                        f"{r.name} ready and in rotation "
                        f"(revision {r.revision}, pid {r.pid}, port {r.port})"
                    )
                r.state, r.last_ready, r.ever_ready = "ready", now, True
                self.failures = 0
            elif r.state == "ready":
                self.say(f"{r.name} unready (health check: {stat.check_status}); out of rotation")
                r.state = "unready"
            elif r.state == "unready" and now - r.last_ready > self.settings.unready_timeout:
                self._progress(
                    f"{r.name} unready for {self.settings.unready_timeout:.0f}s; replacing it"
                )
                self._stop(r, now)
        elif r.state == "draining":
            if stat is None or stat.current_sessions + stat.queued == 0 or now > r.stop_deadline:
                self._stop(r, now)
        elif r.state == "stopping" and now > r.stop_deadline:
            self.say(f"{r.name} did not stop in time; killing it")
            r.signal_group(signal.SIGKILL)
            r.stop_deadline = now + 3600

    def _probe_ready(self, r: Replica) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{r.port}/readyz", timeout=0.5) as resp:
                return resp.status == 200
        except OSError:
            return False

    def _join(self, r: Replica) -> None:
        try:
            self.api.add_server(self.backend, Server(r.name, r.port, self.spec.workers))
        except (OSError, HAProxyError) as exc:
            self.say(f"{r.name}: could not add it to haproxy ({exc}); will retry")
            return
        r.in_haproxy, r.state = True, "joining"

    def _drain(self, r: Replica, now: float, why: str) -> None:
        self._progress(f"{r.name} draining ({why})")
        r.state, r.stop_requested = "draining", True
        r.stop_deadline = now + self.settings.drain_timeout
        if r.in_haproxy:
            try:
                self.api.set_state(self.backend, r.name, "drain")
            except (OSError, HAProxyError) as exc:
                self.say(f"{r.name}: drain failed in haproxy: {exc}")

    def _stop(self, r: Replica, now: float) -> None:
        """Out of HAProxy, then SIGTERM: the runtime finishes what it still has."""
        self._remove_from_haproxy(r)
        r.state, r.stop_requested = "stopping", True
        r.stop_deadline = now + self.spec.rollout.graceful_timeout_seconds + 10
        try:
            r.process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        r.signal_group(signal.SIGCONT)  # a frozen replica must wake up to drain

    def _remove_from_haproxy(self, r: Replica) -> None:
        if not r.in_haproxy:
            return
        try:
            self.api.del_server(self.backend, r.name)
            r.in_haproxy = False
        except (OSError, HAProxyError):
            # Requests still attached (e.g. a frozen replica): keep it in maintenance and
            # delete it once it exits.
            try:
                self.api.set_state(self.backend, r.name, "maint")
            except (OSError, HAProxyError):
                pass

    def _reap(self, r: Replica, code: int) -> None:
        r.signal_group(signal.SIGKILL)  # R workers left behind by a killed replica
        self._remove_from_haproxy(r)
        with self.lock:
            self.replicas.remove(r)
        r.state = "exited"
        if r.stop_requested:
            self.say(f"{r.name} stopped ({describe_exit(code)})")
            return
        reason = describe_exit(code)
        if not r.ever_ready:
            r.pump.join(2.0)  # its last words (R's error) may still be in the pipe
            message = f"{r.name} {reason} before becoming ready:\n" + _why(r.output)
            if not self.announced_ready and not any(x.ever_ready for x in self.replicas):
                self.fatal = "the app did not start; " + message
                self.stopping = True
                return
            if self.rollout is not None and r.revision == self.revision:
                self._abort_rollout(message)
                return
        self.failures += 1
        delay = min(30.0, 2.0 ** (self.failures - 1)) if self.failures > 1 else 0.0
        self.next_start = time.monotonic() + delay
        self._progress(
            f"{r.name} {reason}; replacing it"
            + (f" in {delay:.0f}s (crash loop back-off)" if delay else "")
        )

    def _abort_rollout(self, message: str) -> None:
        op, self.rollout = self.rollout, None
        revision, path, spec, digest = self.previous
        failed = self.revision
        self.history.pop(failed, None)
        self.revision, self.plumber_file, self.spec, self.digest = revision, path, spec, digest
        self.last_failure = message
        for r in list(self.replicas):
            if r.revision == failed and r.state in ACTIVE:
                self._stop(r, time.monotonic())
        self.say(f"rollout of revision {failed} failed; keeping revision {revision}")
        op.finish(False, f"{op.kind} failed, revision {revision} keeps serving: {message}")

    def _start_replica(self) -> None:
        port = listen_port()
        name = f"r{next(self._names)}"
        cmd, env = replica_command(self.spec, port, self.settings.access_log)
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=die_with_parent,
            cwd=self.plumber_file.parent,
            env=env,
        )
        r = Replica(name, port, self.revision, self.plumber_file, process)
        with self.lock:
            self.replicas.append(r)
        r.pump = threading.Thread(target=self._pump, args=(r,), daemon=True, name=f"log-{name}")
        r.pump.start()
        self._progress(f"{name} starting (revision {r.revision}, pid {r.pid}, port {port})")

    def _pump(self, r: Replica) -> None:
        for line in r.process.stdout:
            line = line.rstrip("\n")
            r.output.append(line)
            self._log(r.name, line)

    def _log(self, source: str, line: str) -> None:
        text = f"{source} | {line}"
        with self.lock:
            self.logs.append((next(self.log_seq), text))
        self.say(text)

    def _reconcile(self, now: float) -> None:
        desired = self.spec.replicas
        active = [r for r in self.replicas if r.state in ACTIVE]
        current = [r for r in active if r.revision == self.revision]
        old = [r for r in active if r.revision != self.revision]
        coming = [r for r in active if r.state in ("starting", "joining")]
        ready = [r for r in active if r.state == "ready"]
        if len(active) < desired:
            # Missing replicas (first start, scale up, replacement): start them a few at a
            # time (each loads R), the next as soon as one is ready. Back-off applies after
            # crashes.
            starting = sum(r.state == "starting" for r in active)
            if now >= self.next_start:
                for _ in range(min(desired - len(active), STARTING_AT_ONCE - starting)):
                    self._start_replica()
            return
        if old:
            # A rolling update: surge one replica of the new revision, retire an old one once
            # a new one serves. No old replica goes before the new revision has proven
            # itself, so a revision that never gets ready leaves the old ones untouched.
            unready_old = [r for r in old if r.state != "ready"]
            current_ready = [r for r in current if r.state == "ready"]
            if unready_old:
                self._drain(unready_old[0], now, f"revision {unready_old[0].revision}, unready")
            elif (current_ready or desired == 0) and len(ready) > desired:
                self._drain(old[0], now, f"replaced by revision {self.revision}")
            elif not coming and len(current) < desired and now >= self.next_start:
                self._start_replica()  # surge 1
            return
        if len(current) > desired:
            extra = sorted(current, key=lambda r: (r.state == "ready", -r.started_at))
            for r in extra[: len(current) - desired]:
                self._drain(r, now, "scale down")

    def _check_operations(self) -> None:
        settled = (
            not any(r.revision != self.revision for r in self.replicas)
            and sum(r.state == "ready" for r in self.replicas) == self.spec.replicas
            and all(r.state == "ready" for r in self.replicas)
        )
        if settled and not self.announced_ready:
            self.announced_ready = True
            self.say(f"ready: {self.url} ({self.spec.replicas}/{self.spec.replicas} replicas)")
        if settled and self.initial is not None:
            initial, self.initial = self.initial, None
            initial.finish(
                True,
                f"deployed: {self.spec.replicas}/{self.spec.replicas} replicas ready at {self.url}",
            )
        if settled and self.rollout is not None:
            op, self.rollout = self.rollout, None
            self._update_routes()
            op.finish(
                True,
                f"{op.kind} complete: revision {self.revision}, "
                f"{self.spec.replicas}/{self.spec.replicas} replicas ready",
            )
        if settled and self.pending_scale is not None:
            pending, self.pending_scale = self.pending_scale, None
            pending.finish(True, f"scaled to {self.spec.replicas} replicas, all ready")

    def _update_routes(self) -> str | None:
        """A new plumber.R may bring new paths: reload HAProxy gracefully with them. The
        error, if HAProxy refused them."""
        routes = (ingress_routes(self.spec), self.spec.ingress.host, stripped_prefixes(self.spec))
        if routes == (self.routes, self.host_name, self.strip):
            return None
        self.routes, self.host_name, self.strip = routes
        for r in self.replicas:
            r.served_before_reload = r.served
        try:
            self.ingress.reload()
            self.say("haproxy reloaded with the new routes")
        except HAProxyError as exc:
            self.say(f"error: {exc}")
            return str(exc)
        return None

    def describe(self) -> AppRoutes:
        """This app's part of the ingress: its routes and the replicas HAProxy has now."""
        with self.lock:
            servers = tuple(
                Server(r.name, r.port, self.spec.workers) for r in self.replicas if r.in_haproxy
            )
        return AppRoutes(
            self.backend,
            tuple(self.routes),
            servers,
            host=self.host_name,
            strip=self.strip,
            server_timeout=max(120, self.spec.rollout.graceful_timeout_seconds + 60),
        )

    def _watch_file(self) -> None:
        if self.rollout is not None:
            return
        try:
            digest = file_digest(self.plumber_file)
        except OSError:
            return
        if digest != self.digest:
            self.say(f"{self.plumber_file} changed; rolling it out")
            self.submit("deploy", spec=self.spec)
            self.digest = digest  # a failed deploy is not retried until the file changes

    def _shutdown(self) -> None:
        """Drain every replica in HAProxy, stop them, then take the app out of the ingress;
        leave nothing behind."""
        now = time.monotonic()
        for r in self.replicas:
            if r.in_haproxy and r.state in ACTIVE:
                try:
                    self.api.set_state(self.backend, r.name, "drain")
                except (OSError, HAProxyError):
                    pass
        deadline = now + self.settings.drain_timeout
        while time.monotonic() < deadline and self.ingress.running:
            try:
                stats = self.api.servers(self.backend)
            except OSError:
                break
            if all(s.current_sessions + s.queued == 0 for s in stats.values()):
                break
            time.sleep(TICK)
        for r in self.replicas:
            if r.process.poll() is None:
                r.process.send_signal(signal.SIGTERM)
                r.signal_group(signal.SIGCONT)
        deadline = time.monotonic() + self.spec.rollout.graceful_timeout_seconds + 10
        for r in self.replicas:
            try:
                r.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{r.name} did not stop in time; killing it")
            r.signal_group(signal.SIGKILL)
            r.process.wait()
            self.say(f"{r.name} stopped")
        with self.lock:
            self.replicas.clear()
        try:
            self.ingress.remove(self.backend)
        except HAProxyError as exc:
            self.say(f"error: {exc}")
        self._fail_operations()

    def _fail_operations(self) -> None:
        message = f"not deployed: {self.fatal}" if self.fatal else "the local cluster stopped"
        for op in list(self.operations.values()):
            if op.app == self.spec.name and not op.done.is_set():
                op.finish(False, message)
