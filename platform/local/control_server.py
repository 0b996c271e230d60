"""The local host's control server: the API of control.py on a private Unix socket.

Every change goes through an app's `submit()` (or the host, which adds and removes apps),
so each app's supervisor loop stays the only thread that changes its replicas. A request is
answered only when it comes from this user (the socket's peer credentials), carries no
Origin header (a browser always sends one on a cross-origin POST) and, when it has a body,
the body is application/json (a web page cannot send that to another origin without a CORS
preflight, which this server never grants).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from plumbline.platform.local.control import MAX_BODY, ControlError


class Deployer(Protocol):
    """Turns the JSON of a shipped AppSpec into one the host can run (or ValueError)."""

    def __call__(self, data: dict[str, Any]) -> Any: ...


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class _Handler(BaseHTTPRequestHandler):
    host: Any = None  # the LocalHost; set on the subclass made per server
    load_spec: Deployer | None = None
    max_replicas = 0

    def log_message(self, format: str, *args: Any) -> None:  # the supervisor says what matters
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refusal(self) -> tuple[int, str] | None:
        uid = peer_uid(self.connection)
        if uid != os.getuid():
            return 403, f"uid {uid} may not control this local cluster (it is uid {os.getuid()}'s)"
        if self.headers.get("Origin") is not None:
            return 403, "requests from web pages are refused"
        return None

    def _body(self) -> dict[str, Any]:
        if self.headers.get_content_type() != "application/json":
            raise _Rejected(415, "the body must be application/json")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _Rejected(400, "bad Content-Length") from None
        if length > MAX_BODY:
            raise _Rejected(413, f"body over {MAX_BODY} bytes")
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise _Rejected(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise _Rejected(400, "the body must be a JSON object")
        return data

    def _app(self, name: str) -> Any:
        cluster = self.host.app(name)
        if cluster is None:
            running = ", ".join(repr(c.spec.name) for c in self.host.apps()) or "no app"
            raise _Rejected(404, f"no app named {name!r} on this local cluster (it runs {running})")
        return cluster

    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def _dispatch(self, action: Any) -> None:
        refusal = self._refusal()
        if refusal is not None:
            self.close_connection = True
            return self._send(refusal[0], {"error": refusal[1]})
        try:
            status, payload = action(urlparse(self.path))
        except _Rejected as exc:
            status, payload = exc.status, {"error": exc.message}
        self._send(status, payload)

    def _get(self, url: Any) -> tuple[int, dict[str, Any]]:
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        if parts == ["apps"]:
            return 200, {"apps": [cluster.snapshot() for cluster in self.host.apps()]}
        if len(parts) == 2 and parts[0] == "apps":
            return 200, self._app(parts[1]).snapshot()
        if len(parts) == 3 and parts[0] == "apps" and parts[2] == "logs":
            cluster = self._app(parts[1])
            try:
                since = int(query.get("since", ["0"])[0])
                limit = int(query.get("lines", ["200"])[0])
            except ValueError:
                raise _Rejected(400, "since and lines must be integers") from None
            lines = cluster.log_lines(since, limit)
            return 200, {
                "lines": [text for _, text in lines],
                "last": lines[-1][0] if lines else since,
            }
        if len(parts) == 2 and parts[0] == "operations":
            op = self.host.operation(_int(parts[1]))
            if op is None:
                raise _Rejected(404, "no such operation")
            return 200, {
                "id": op.id,
                "kind": op.kind,
                "events": list(op.events),
                "done": op.done.is_set(),
                "ok": op.ok,
                "message": op.message,
            }
        raise _Rejected(404, f"not found: {url.path}")

    def _post(self, url: Any) -> tuple[int, dict[str, Any]]:
        body = self._body()
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["down"]:
            self.host.request_stop("down")
            return 202, {"stopping": True, "pid": os.getpid()}
        if len(parts) != 3 or parts[0] != "apps":
            raise _Rejected(404, f"not found: {url.path}")
        action = parts[2]
        if action == "deploy":
            return 202, {"operation": self._deploy(parts[1], body).id}
        cluster = self._app(parts[1])
        if action == "delete":
            op = self.host.delete(parts[1])
        elif action == "restart":
            op = cluster.submit("restart")
        elif action == "scale":
            replicas = body.get("replicas")
            if (
                not isinstance(replicas, int)
                or isinstance(replicas, bool)
                or not 0 <= replicas <= self.max_replicas
            ):
                raise _Rejected(
                    400,
                    f"replicas must be a whole number from 0 to "
                    f"{self.max_replicas} (the local backend's limit)",
                )
            op = cluster.submit("scale", replicas=replicas)
        elif action == "rollback":
            revision = body.get("revision")
            if revision is not None and (
                not isinstance(revision, int) or isinstance(revision, bool)
            ):
                raise _Rejected(400, "revision must be a whole number or null")
            op = cluster.submit("rollback", revision=revision)
        else:
            raise _Rejected(404, f"not found: {url.path}")
        return 202, {"operation": op.id}

    def _deploy(self, name: str, body: dict[str, Any]) -> Any:
        if not isinstance(body.get("spec"), dict) or self.load_spec is None:
            raise _Rejected(400, 'the body must hold the app spec: {"spec": {...}}')
        try:
            spec = self.load_spec(body["spec"])
        except (ValueError, TypeError, KeyError) as exc:
            raise _Rejected(400, f"not deployed: {exc}") from None
        if spec.name != name:
            raise _Rejected(400, f"the spec is for {spec.name!r}, not {name!r}")
        if spec.replicas > self.max_replicas:
            raise _Rejected(
                400, f"replicas {spec.replicas}: the local backend runs at most {self.max_replicas}"
            )
        try:
            return self.host.deploy(spec)
        except ControlError as exc:
            raise _Rejected(exc.status or 400, str(exc)) from None


class _Rejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # Created 0600 from the start (umask), so there is no moment another user could
        # connect; the 0700 directory is the first fence, this the second.
        old = os.umask(0o177)
        try:
            super().server_bind()
        finally:
            os.umask(old)


class ControlServer:
    """Serves the control API on a Unix socket in a daemon thread."""

    def __init__(self, host: Any, socket_path: Path, *, load_spec: Deployer, max_replicas: int):
        if socket_path.exists() or socket_path.is_symlink():
            # a socket left by a host that died (the caller checked no live host has it)
            socket_path.unlink()
        handler = type(
            "Handler",
            (_Handler,),
            {"host": host, "load_spec": staticmethod(load_spec), "max_replicas": max_replicas},
        )
        try:
            self.server = _UnixServer(str(socket_path), handler)
        except OSError as exc:
            raise ControlError(f"cannot open the control socket {socket_path}: {exc}") from None
        os.chmod(socket_path, 0o600)
        self.path = socket_path
        self.thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="control"
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)
