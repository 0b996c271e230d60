"""HAProxy as the local ingress: its configuration, its process and its runtime API.

The configuration routes each app's ingress paths to the app's own backend, whose servers
are its replicas; one HAProxy can front several apps (today `plumbline up` runs one).
Replicas come and go at run time through the admin socket (`add server`,
`set server ... state drain`, `del server`), so the process is reloaded only when the
routes themselves change (a new plumber.R with other paths).
"""

from __future__ import annotations

import csv
import ctypes
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from plumbline.platform.spec.ingress import ingress_paths

INSTALL_HINT = "HAProxy is not installed: run `apt-get install haproxy` (or scripts/install.sh)"
MIN_VERSION = (2, 6)
PR_SET_PDEATHSIG = 1

# Health checks every 500 ms, out after 2 failures: an unready replica leaves rotation
# within about 1 s; one good answer puts it back.
# A refused connection on live traffic marks the server down at once (observe layer4):
# otherwise leastconn would keep picking a dead replica, which has the fewest connections.
CHECK_OPTIONS = (
    "check inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1 "
    "observe layer4 error-limit 1 on-error mark-down"
)


class HAProxyMissing(RuntimeError):
    """No usable haproxy binary; the message says how to install it."""


class HAProxyError(RuntimeError):
    """HAProxy refused a configuration or a runtime command."""


@dataclass(frozen=True)
class Route:
    kind: str  # "exact" or "prefix" (element-wise, as an Ingress Prefix rule)
    path: str


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    maxconn: int


@dataclass(frozen=True)
class AppRoutes:
    """One app behind the ingress: its HAProxy backend, the paths routed to it, its replicas.

    `host`: only requests for that host name (the Host header, as an Ingress rule's host).
    `strip`: path prefixes removed before the request reaches a replica (an app served under
    /content/NAME, and maybe a vanity path, whose runtime knows the prefix as its --root-path
    sees /parity, not the prefix).
    """

    backend: str
    routes: tuple[Route, ...]
    servers: tuple[Server, ...] = ()
    host: str | None = None
    strip: tuple[str, ...] = ()
    server_timeout: int | None = None  # seconds a replica may take to answer


def backend_name(app: str) -> str:
    return f"app-{app}"


@dataclass(frozen=True)
class ServerStat:
    name: str
    status: str  # UP, DOWN, DRAIN, MAINT, "UP 1/2", ...
    current_sessions: int  # scur: requests on that replica right now
    total_sessions: int  # stot: requests sent to it since HAProxy (re)started
    queued: int
    check_status: str

    @property
    def in_rotation(self) -> bool:
        return self.status.startswith("UP")


def ingress_routes(spec) -> list[Route]:
    """The Ingress rules `plumbline render` writes for the spec, as HAProxy routes: the local
    ingress routes exactly what the cluster's would."""
    return [Route(rule["pathType"].lower(), rule["path"]) for rule in ingress_paths(spec)]


def server_line(server: Server) -> str:
    # maxconn = R workers of the replica: HAProxy queues the rest, so a replica busy on a
    # slow call is not handed requests another replica could answer now, and a frozen
    # replica holds at most that many requests.
    return f"127.0.0.1:{server.port} {CHECK_OPTIONS} maxconn {server.maxconn}"


def _quote(text: str) -> str:
    if not re.fullmatch(r"[\x21-\x7e]+", text) or any(c in text for c in "\"'\\#"):
        raise ValueError(f"path {text!r} cannot be routed by the local ingress")
    return text


def _frontend_rules(app: AppRoutes) -> list[str]:
    acl = f"{app.backend}_path"
    lines = []
    for route in app.routes:
        path = _quote(route.path)
        if route.kind == "exact" or path != "/":
            lines.append(f"    acl {acl} path {path}")
        if route.kind == "prefix":
            # Kubernetes' Prefix matches whole path elements: /users and /users/..., not /usersX.
            lines.append(f"    acl {acl} path_beg {path.rstrip('/')}/")
    if app.host is None:
        return lines + [f"    use_backend {app.backend} if {acl}"]
    # The Host header without its port, case-insensitively, as an Ingress rule's host.
    lines.append(f"    acl {app.backend}_host req.hdr(host),field(1,:) -i {_quote(app.host)}")
    return lines + [f"    use_backend {app.backend} if {app.backend}_host {acl}"]


def _strip_rule(prefixes: tuple[str, ...]) -> str:
    """One rule, so a path is stripped once: by the prefix it starts with (the longest)."""
    patterns = [
        re.sub(r"([.+*?()\[\]{}|^$\\])", r"\\\1", _quote(prefix.rstrip("/")))
        for prefix in sorted(prefixes, key=len, reverse=True)
    ]
    if len(patterns) == 1:
        return f"    http-request replace-path ^{patterns[0]}/?(.*)$ /\\1"
    return f"    http-request replace-path ^({'|'.join(patterns)})/?(.*)$ /\\2"


def _backend(app: AppRoutes) -> list[str]:
    json_error = "content-type application/json string"
    return [
        f"backend {app.backend}",
        "    balance leastconn",
        "    option httpchk",
        "    http-check send meth GET uri /readyz",
        "    http-check expect status 200",
        # Retry only what never reached a replica (connection refused/reset) or got no
        # byte back from it; a non-idempotent request is retried only on connect failure.
        "    retry-on conn-failure empty-response",
        "    retries 3",
        "    option redispatch 1",
        "    acl idempotent method GET HEAD OPTIONS",
        "    http-request disable-l7-retry unless idempotent",
        f'    http-error status 502 {json_error} \'{{"error":"bad gateway"}}\'',
        f'    http-error status 503 {json_error} \'{{"error":"no replica available"}}\'',
        f'    http-error status 504 {json_error} \'{{"error":"replica timed out"}}\'',
        *([f"    timeout server {app.server_timeout}s"] if app.server_timeout else []),
        *([_strip_rule(app.strip)] if app.strip else []),
        *[f"    server {s.name} {server_line(s)}" for s in app.servers],
        "",
    ]


def render_config(
    *,
    apps: Iterable[AppRoutes],
    bind_host: str,
    port: int,
    admin_socket: Path,
    server_timeout: float,
) -> str:
    apps = list(apps)
    return "\n".join(
        [
            "# Written by plumbline (local cluster); changes are overwritten.",
            "global",
            f"    stats socket {admin_socket} mode 600 level admin expose-fd listeners",
            "    stats timeout 10s",
            "    hard-stop-after 120s",
            # Only info-level lines: the failed requests (dontlog-normal); haproxy prints its
            # own warnings (server up/down) on stderr already.
            "    log stderr format raw local0 info info",
            "",
            "defaults",
            "    mode http",
            "    log global",
            "    option httplog",
            "    option dontlog-normal",  # only failed or abnormal requests reach the log
            # On a reload the old process would close idle keep-alive connections at once, and
            # a client sending on one just then gets no answer: it answers one more request
            # (with Connection: close) first, within hard-stop-after.
            "    option idle-close-on-response",
            "    timeout connect 2s",
            "    timeout client 60s",
            "    timeout queue 30s",
            "    timeout http-request 10s",
            "    timeout check 600ms",  # a frozen replica fails its checks within ~2 s
            f"    timeout server {int(server_timeout)}s",
            "",
            "frontend ingress",
            f"    bind {bind_host}:{port}",
            "    option forwardfor",
            # Rules with a host first: a host's own app wins over a host-less app's same path.
            *[
                line
                for app in sorted(apps, key=lambda a: a.host is None)
                for line in _frontend_rules(app)
            ],
            "    default_backend no_route",
            "",
            "backend no_route",
            "    http-request return status 404 content-type application/json "
            'lf-string \'{"error":"no route","path":"%[path,json(utf8s)]"}\'',
            "",
            *[line for app in apps for line in _backend(app)],
        ]
    )


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: no dlopen after fork


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM if the supervisor dies, even by SIGKILL."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def find_binary(name: str = "haproxy") -> str:
    path = shutil.which(name)
    if path is None:
        raise HAProxyMissing(INSTALL_HINT)
    out = subprocess.run([path, "-v"], capture_output=True, text=True).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < MIN_VERSION:
        raise HAProxyMissing(
            f"HAProxy {'.'.join(map(str, MIN_VERSION))} or newer is needed "
            f"(found: {out.splitlines()[0] if out else 'unknown'}); "
            "run `apt-get install haproxy`"
        )
    return path


class RuntimeAPI:
    """HAProxy's admin socket, one connection per command."""

    def __init__(self, socket_path: Path):
        self.socket_path = socket_path

    def command(self, line: str, timeout: float = 5.0) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def _checked(self, line: str, ok: Callable[[str], bool] = lambda out: not out.strip()):
        out = self.command(line)
        if not ok(out):
            raise HAProxyError(f"haproxy refused `{line}`: {out.strip()}")
        return out

    def add_server(self, backend: str, server: Server) -> None:
        self._checked(
            f"add server {backend}/{server.name} {server_line(server)}",
            lambda out: "New server registered" in out,
        )
        self._checked(f"enable health {backend}/{server.name}")
        self._checked(f"enable server {backend}/{server.name}")

    def set_state(self, backend: str, name: str, state: str) -> None:
        """state: ready, drain or maint."""
        self._checked(f"set server {backend}/{name} state {state}")

    def del_server(self, backend: str, name: str) -> None:
        self.set_state(backend, name, "maint")
        self._checked(f"del server {backend}/{name}", lambda out: "Server deleted" in out)

    def servers(self, backend: str) -> dict[str, ServerStat]:
        text = self.command("show stat")
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        found = {}
        for row in rows:
            if row.get("pxname") != backend or row["svname"] in ("FRONTEND", "BACKEND"):
                continue
            found[row["svname"]] = ServerStat(
                name=row["svname"],
                status=row["status"],
                current_sessions=int(row["scur"] or 0),
                total_sessions=int(row["stot"] or 0),
                queued=int(row["qcur"] or 0),
                check_status=row.get("check_status", ""),
            )
        return found


class HAProxy:
    """One master-worker haproxy process owned by the local cluster."""

    def __init__(self, workdir: Path, on_log: Callable[[str], None], binary: str | None = None):
        self.binary = binary or find_binary()
        self.workdir = workdir
        self.config_path = workdir / "haproxy.cfg"
        self.admin_socket = workdir / "admin.sock"
        self.master_socket = workdir / "master.sock"
        self.api = RuntimeAPI(self.admin_socket)
        self.process: subprocess.Popen | None = None
        self._on_log = on_log
        self._log_tail: list[str] = []

    def _write(self, config: str) -> None:
        candidate = self.workdir / "haproxy.cfg.new"
        candidate.write_text(config)
        check = subprocess.run(
            [self.binary, "-c", "-q", "-f", str(candidate)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise HAProxyError(
                f"haproxy rejected its configuration: {(check.stderr or check.stdout).strip()}"
            )
        os.replace(candidate, self.config_path)

    def start(self, config: str, timeout: float = 10.0) -> None:
        self._write(config)
        self.admin_socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "-W", "-db", "-f", str(self.config_path), "-S", str(self.master_socket)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        threading.Thread(target=self._pump, daemon=True, name="haproxy-log").start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                time.sleep(0.1)  # let the log pump collect the reason
                raise HAProxyError("haproxy did not start: " + " ".join(self._log_tail[-3:]))
            try:
                self.api.command("show info", timeout=1.0)
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise HAProxyError("haproxy did not open its admin socket in time")

    def _pump(self) -> None:
        previous = ""
        for line in self.process.stdout:
            line = line.rstrip()
            if line and previous.endswith(" : " + line):
                continue  # the log line repeating the warning haproxy just printed
            previous = line
            self._log_tail = (self._log_tail + [line])[-20:]
            self._on_log(line)

    def reload(self, config: str) -> None:
        """Graceful reload: new workers take the listeners, old ones finish their requests."""
        self._write(config)
        before = self._worker_pid()
        self.process.send_signal(signal.SIGUSR2)
        # The admin socket is the new worker's once it reports another pid.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.1)
            pid = self._worker_pid()
            if pid is not None and pid != before:
                return
        raise HAProxyError(
            "haproxy did not come back after a reload: " + " ".join(self._log_tail[-3:])
        )

    def _worker_pid(self) -> int | None:
        try:
            info = self.api.command("show info", timeout=1.0)
        except OSError:
            return None
        m = re.search(r"^Pid: (\d+)", info, re.M)
        return int(m.group(1)) if m else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Soft stop (finish open requests), then hard stop past the timeout."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        for path in (self.admin_socket, self.master_socket):
            path.unlink(missing_ok=True)
