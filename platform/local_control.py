"""The local cluster's control endpoint: a small JSON API on loopback, found via a state file.

`plumbline up` serves it; `status`, `restart`, `scale`, `logs`, `deploy --local` and `down`
are its clients. Every change goes through LocalCluster.submit(), so the supervisor loop
stays the only thread that acts.
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

STATE_DIR_ENV = "PLUMBLINE_STATE_DIR"


class ControlError(RuntimeError):
    """No local cluster to talk to, or it refused the request."""


def state_dir() -> Path:
    """PLUMBLINE_STATE_DIR, else $XDG_RUNTIME_DIR/plumbline, else ~/.plumbline/local."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "plumbline"
    return Path.home() / ".plumbline" / "local"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class StateFile:
    name: str
    url: str          # the ingress
    control_url: str
    pid: int          # the `plumbline up` process

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.name}.json"

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def running(cls) -> list["StateFile"]:
        """Clusters whose `up` process is alive; stale files are removed."""
        found = []
        for path in sorted(state_dir().glob("*.json")):
            try:
                state = cls(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            if _alive(state.pid):
                found.append(state)
            else:
                path.unlink(missing_ok=True)
        return found

    @classmethod
    def find(cls, name: str | None) -> "StateFile":
        running = cls.running()
        if name:
            for state in running:
                if state.name == name:
                    return state
            raise ControlError(f"no local cluster named {name!r} is running "
                               "(start one with `plumbline up PLUMBER_R`)")
        if not running:
            raise ControlError("no local cluster is running (start one with "
                               "`plumbline up PLUMBER_R`)")
        if len(running) > 1:
            names = ", ".join(s.name for s in running)
            raise ControlError(f"several local clusters are running ({names}); name the one "
                               "you mean")
        return running[0]


class _Handler(BaseHTTPRequestHandler):
    cluster = None  # set on the subclass made per server

    def log_message(self, fmt, *args):  # the supervisor prints what matters
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 65536:
            raise ValueError("body too large")
        data = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    def do_GET(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/status":
            self._send(200, self.cluster.snapshot())
        elif url.path == "/logs":
            try:
                since = int(query.get("since", ["0"])[0])
                limit = int(query.get("lines", ["200"])[0])
            except ValueError:
                return self._send(400, {"error": "since and lines must be integers"})
            lines = self.cluster.log_lines(since, limit)
            self._send(200, {"lines": [text for _, text in lines],
                             "last": lines[-1][0] if lines else since})
        elif url.path.startswith("/operations/"):
            op = self.cluster.operations.get(_int(url.path.rsplit("/", 1)[1]))
            if op is None:
                return self._send(404, {"error": "no such operation"})
            self._send(200, {"id": op.id, "kind": op.kind, "events": op.events,
                             "done": op.done.is_set(), "ok": op.ok, "message": op.message})
        else:
            self._send(404, {"error": "not found", "path": url.path})

    def do_POST(self):
        try:
            body = self._body()
        except ValueError as exc:
            return self._send(400, {"error": f"bad request: {exc}"})
        path = urlparse(self.path).path
        if path == "/restart":
            op = self.cluster.submit("restart")
        elif path == "/scale":
            replicas = body.get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                return self._send(400, {"error": "replicas must be an integer >= 0"})
            op = self.cluster.submit("scale", replicas=replicas)
        elif path == "/deploy":
            plumber_file = body.get("plumber_file")
            if not isinstance(plumber_file, str) or not Path(plumber_file).is_file():
                return self._send(400, {"error": "plumber_file must name an existing file",
                                        "plumber_file": plumber_file})
            op = self.cluster.submit("deploy", plumber_file=plumber_file)
        elif path == "/down":
            self.cluster.request_stop("down")
            return self._send(202, {"stopping": True, "pid": os.getpid()})
        else:
            return self._send(404, {"error": "not found", "path": path})
        self._send(202, {"operation": op.id})


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


class ControlServer:
    """Serves the control API on a free loopback port in a daemon thread."""

    def __init__(self, cluster):
        handler = type("Handler", (_Handler,), {"cluster": cluster})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                       name="control")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ControlClient:
    def __init__(self, state: StateFile):
        self.state = state

    def call(self, method: str, path: str, payload: dict | None = None,
             timeout: float = 10.0) -> dict:
        data = json.dumps(payload or {}).encode() if method == "POST" else None
        req = urllib.request.Request(self.state.control_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", "")
            except ValueError:
                detail = exc.reason
            raise ControlError(f"the local cluster refused {path}: {detail}") from None
        except OSError as exc:
            raise ControlError(f"cannot reach the local cluster {self.state.name!r} at "
                               f"{self.state.control_url}: {exc}") from None

    def follow(self, operation: int, emit, timeout: float) -> tuple[bool, str]:
        """Print an operation's progress lines until it ends; (ok, final message)."""
        shown = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            op = self.call("GET", f"/operations/{operation}")
            for line in op["events"][shown:]:
                emit(line)
            shown = len(op["events"])
            if op["done"]:
                return op["ok"], op["message"]
            time.sleep(0.3)
        return False, f"gave up waiting after {timeout:.0f}s (the operation goes on)"
