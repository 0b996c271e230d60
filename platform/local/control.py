"""The local control channel: where it lives, how hosts are found, and its client.

A local host (`plumbline up`) answers a small JSON API over HTTP on a Unix socket in a
private state directory (mode 0700, socket 0600, state files 0600), as gunicorn's `ctl/`
does: no TCP port, so neither another local user nor a web page open in a browser can reach
it. The server (control_server.py) also checks the caller's uid (SO_PEERCRED) and refuses
browser-shaped requests (an Origin header, a body that is not application/json).

API (every path under one host; `NAME` is an app on it):
  GET  /apps                        every app's status
  GET  /apps/NAME                   one app's status
  GET  /apps/NAME/logs?since=&lines=
  POST /apps/NAME/deploy   {"spec": {...}}        -> 202 {"operation": id}
  POST /apps/NAME/restart  {}                     -> 202 {"operation": id}
  POST /apps/NAME/scale    {"replicas": n}        -> 202 {"operation": id}
  POST /apps/NAME/rollback {"revision": n|null}   -> 202 {"operation": id}
  POST /apps/NAME/delete   {}                     -> 202 {"operation": id}  (stop one app)
  GET  /operations/ID                             progress lines, done, ok, message
  POST /down               {}                     stop the host (drain, then HAProxy)
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

STATE_DIR_ENV = "PLUMBLINE_STATE_DIR"
MAX_BODY = 1024 * 1024  # a shipped AppSpec is a few KiB
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with its NUL


class ControlError(RuntimeError):
    """No local host to talk to, or it refused the request; the message says which."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status  # the HTTP status of a refusal (404: no such app), else 0


def state_dir() -> Path:
    """PLUMBLINE_STATE_DIR, else $XDG_RUNTIME_DIR/plumbline, else ~/.plumbline/local."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "plumbline"
    return Path.home() / ".plumbline" / "local"


def private_state_dir() -> Path:
    """The state directory, created 0700 if missing; refused if another user owns it or
    others may enter it (tightened when it is ours)."""
    path = state_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ControlError(
            f"the state directory {path} belongs to uid {info.st_uid}, not to "
            f"you (uid {os.getuid()}); set {STATE_DIR_ENV} to a folder of yours"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class HostRecord:
    """The state file of one running local host: where its ingress and control socket are."""

    name: str
    url: str  # the ingress
    socket: str  # the control socket
    pid: int  # the `plumbline up` process
    apps: tuple[str, ...] = ()
    open: bool = False  # a deploy of another name adds an app (plumbline server's host)

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.name}.json"

    @staticmethod
    def socket_for(name: str) -> Path:
        path = private_state_dir() / f"{name}.sock"
        if len(os.fsencode(path)) > SOCKET_PATH_MAX:
            raise ControlError(
                f"the control socket path {path} is longer than a Unix socket "
                f"allows ({SOCKET_PATH_MAX} bytes); set {STATE_DIR_ENV} to a "
                "shorter folder"
            )
        return path

    def write(self) -> None:
        private_state_dir()
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({**asdict(self), "apps": list(self.apps)}, f, indent=2)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def running(cls) -> list[HostRecord]:
        """Hosts whose `up` process is alive; stale files are removed."""
        found = []
        for path in sorted(state_dir().glob("*.json")):
            try:
                data = json.loads(path.read_text())
                record = cls(**{**data, "apps": tuple(data.get("apps", ()))})
            except PermissionError as exc:
                raise ControlError(
                    f"cannot read {path}: {exc.strerror} (another user's local cluster?)"
                ) from None
            except (OSError, ValueError, TypeError):
                continue
            if _alive(record.pid):
                found.append(record)
            else:
                path.unlink(missing_ok=True)
        return found

    @classmethod
    def named(cls, name: str) -> HostRecord:
        """The running host of that name (whatever apps it runs)."""
        for record in cls.running():
            if record.name == name:
                return record
        raise ControlError(f"no local host named {name!r} is running", 404)

    @classmethod
    def find(cls, app: str | None) -> HostRecord:
        """The host running `app`, or, with no name, the only host running."""
        running = cls.running()
        if app:
            for record in running:
                if app in record.apps:
                    return record
            raise ControlError(
                f"no local cluster named {app!r} is running "
                "(start one with `plumbline up PLUMBER_R`)",
                404,
            )
        if not running:
            raise ControlError(
                "no local cluster is running (start one with `plumbline up PLUMBER_R`)", 404
            )
        if len(running) > 1:
            names = ", ".join(a for r in running for a in r.apps)
            raise ControlError(
                f"several local clusters are running ({names}); name the one you mean"
            )
        return running[0]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class ControlClient:
    """JSON calls to one host over its control socket."""

    def __init__(self, record: HostRecord):
        self.record = record

    def call(
        self, method: str, path: str, payload: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        connection = _UnixConnection(self.record.socket, timeout)
        body = json.dumps(payload or {}).encode() if method == "POST" else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except OSError as exc:
            raise ControlError(
                f"cannot reach the local cluster {self.record.name!r} at "
                f"{self.record.socket}: {exc}"
            ) from None
        finally:
            connection.close()
        try:
            answer = json.loads(data or b"{}")
        except ValueError:
            answer = {"error": data.decode(errors="replace")}
        if response.status >= 400:
            raise ControlError(answer.get("error") or response.reason, response.status)
        return answer

    def app_path(self, app: str, action: str = "") -> str:
        return f"/apps/{quote(app, safe='')}" + (f"/{action}" if action else "")

    def follow(
        self, operation: int, emit: Callable[[str], None], timeout: float
    ) -> tuple[bool, str]:
        """Emit an operation's progress lines until it ends; (ok, verdict)."""
        shown = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            op = self.call("GET", f"/operations/{operation}")
            events = op["events"]
            if op["done"] and events and events[-1] == op["message"]:
                events = events[:-1]  # the verdict is the caller's to show
            for line in events[shown:]:
                emit(line)
            shown = len(events)
            if op["done"]:
                return op["ok"], op["message"]
            time.sleep(0.3)
        return False, f"gave up waiting after {timeout:.0f}s (the operation goes on)"
