"""Side-by-side harness: real plumber 1.2.1 and `plumbline serve` on the same plumber.R.
(A module name of its own, so `from compat_harness import ...` never meets another conftest.)

Each test class (or module, for tests outside a class) gets one pair of servers from the
`pair` fixture, configured by its attributes (see PairSpec), and sends every request to both
exactly as written (compat_wire.py: no client normalises the path), comparing the status
the test expects, the body and every response header but a short list that differs by
nature (IGNORED_HEADERS). While a class runs, the next class's pair is already starting. Plumber is started the way a user runs it
(`pr(file) |> pr_run()`), from the file's folder, with the packages an entrypoint.R beside
the file attaches; plumbline (`plumbline serve FILE --workers 2`) is started from a neutral
folder, so the tests also show that it finds files relative to the plumber.R as plumber does.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

import compat_wire
from compat_wire import Response
from support import free_port

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
EXAMPLE_APP = REPO / "examples" / "plumber-on-k8s" / "plumber.R"
PLUMBLINE = Path(sys.executable).parent / "plumbline"
START_TIMEOUT = 120.0
# Response headers not compared: the time, the framing and transfer encoding (plumbline sends
# Content-Length, httpuv may chunk or compress), and what plumbline adds by design (its request
# id; ETag and Accept-Ranges on assets; docs/compatibility.md). Every other header, repeated
# ones included, must be the same list of values on both sides.
IGNORED_HEADERS = frozenset(
    {
        "date",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "content-encoding",
        "x-request-id",
        "etag",
        "accept-ranges",
    }
)
_LIBRARY_CALL = re.compile(r"""\b(?:library|require)\(\s*["']?([A-Za-z][A-Za-z0-9._]*)["']?""")


@functools.cache
def plumber_examples_dir() -> Path:
    out = subprocess.run(
        ["Rscript", "-e", 'cat(system.file("plumber", package="plumber"))'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(out)


@functools.cache
def r_package_installed(name: str) -> bool:
    code = f'cat(requireNamespace("{name}", quietly = TRUE))'
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True).stdout
    return out.strip() == "TRUE"


def entrypoint_packages(plumber_file: Path) -> list[str]:
    """Packages that library()/require() calls in an entrypoint.R beside the file attach."""
    entrypoint = plumber_file.parent / "entrypoint.R"
    if not entrypoint.is_file():
        return []
    found = _LIBRARY_CALL.findall(entrypoint.read_text(encoding="utf-8"))
    return list(dict.fromkeys(found))


def _r_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid R string literal here


class Server:
    """A server process in its own session, so stopping it also stops its children."""

    def __init__(self, name: str, argv: list[str], cwd: Path, port: int, ready_path: str):
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = tempfile.NamedTemporaryFile(
            prefix=f"compat-{name}-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._ready_path = ready_path

    def log_tail(self, chars: int = 3000) -> str:
        return Path(self._log.name).read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                reply = httpx.get(self.url + self._ready_path, timeout=2)
                if self._ready_path == "/" or reply.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:  # whatever is left of the session (R workers, future sessions)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()
        os.unlink(self._log.name)


def start_plumber(plumber_file: Path, *, from_dir: bool = False, docs: bool = False) -> Server:
    """Real plumber: `pr(file) |> pr_run()`, or `plumb(dir=)` when the folder has an entrypoint.R
    that builds the router (from_dir); `docs` serves its /openapi.json (off by default, so
    that plumber's GET /openapi.json is a 404 like any unknown path)."""
    port = free_port()
    packages = entrypoint_packages(plumber_file)
    lines = ["options(warn = 1)", "library(plumber)"]
    lines += [f"library({_r_string(p)}, character.only = TRUE)" for p in packages]
    if from_dir:
        lines.append(f"router <- plumber::plumb(dir = {_r_string(str(plumber_file.parent))})")
    else:
        lines.append(f"router <- plumber::pr({_r_string(str(plumber_file))})")
    lines.append(
        f'router |> plumber::pr_run(host = "127.0.0.1", port = {port}, '
        f"docs = {'TRUE' if docs else 'FALSE'})"
    )
    return Server("plumber", ["Rscript", "-e", "; ".join(lines)], plumber_file.parent, port, "/")


def serve_problem() -> str | None:
    """Why `plumbline serve` of this checkout cannot even show its help, if it cannot."""
    if not PLUMBLINE.exists():
        return f"{PLUMBLINE} does not exist (run ./scripts/install.sh)"
    done = subprocess.run([str(PLUMBLINE), "serve", "--help"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"exit {done.returncode}:\n{done.stderr[-3000:]}"


def start_plumbline(plumber_file: Path, *, workers: int = 2, flags: tuple[str, ...] = ()) -> Server:
    port = free_port()
    # --drain-delay 0: tests stop servers often and no load balancer needs time to notice.
    argv = [
        str(PLUMBLINE),
        "serve",
        str(plumber_file),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--drain-delay",
        "0",
        *flags,
    ]
    return Server("plumbline", argv, Path(tempfile.gettempdir()), port, "/readyz")


@dataclass
class Exchange:
    """One request sent to both servers and their two answers."""

    method: str
    path: str
    plumber: Response
    plumbline: Response

    def describe(self) -> str:
        def side(name: str, r: Response) -> str:
            shown = [(k, v) for k, v in r.headers.items() if k.lower() != "date"]
            return f"  {name}: {r.status_code} {shown}\n    body: {r.content[:600]!r}"

        return (
            f"{self.method} {self.path}\n"
            + side("plumber  ", self.plumber)
            + "\n"
            + side("plumbline", self.plumbline)
        )


@dataclass
class ServerPair:
    plumber: Server
    plumbline: Server

    def request(self, which: str, method: str, path: str, **kwargs) -> Response:
        """One request to one side, on the wire exactly as written (compat_wire)."""
        return compat_wire.request(getattr(self, which).port, method, path, **kwargs)

    def send(self, method: str, path: str, **kwargs) -> Exchange:
        """The same request to both servers, concurrently (slow endpoints cost their time once)."""
        chunks = kwargs.get("content")
        if isinstance(chunks, Iterator):  # a streamed (chunked) body: one stream per server
            chunks = list(chunks)
            kwargs_for = lambda: {**kwargs, "content": iter(chunks)}  # noqa: E731
        else:
            kwargs_for = lambda: kwargs  # noqa: E731
        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(self.request, "plumber", method, path, **kwargs_for())
            b = pool.submit(self.request, "plumbline", method, path, **kwargs_for())
            return Exchange(method, path, a.result(), b.result())

    def compare(
        self,
        method: str,
        path: str,
        *,
        status: int,
        body: str | Callable[[bytes], object] = "exact",
        present: tuple[str, ...] = (),
        masks: dict[str, Callable[[str], str]] | None = None,
        **kwargs,
    ) -> Exchange:
        """Assert both answers are `status` and agree. body: "exact" (bytes), "json" (parsed
        value), "ignore", or a function whose results must be equal (time stamps, random
        numbers). Every header not in IGNORED_HEADERS must agree; `present`: headers both
        must carry (what the test is about); `masks`: header name -> a function applied to
        each of its values before comparing (a random session cookie). kwargs: the body and
        request headers (httpx's content/data/files/json/headers)."""
        ex = self.send(method, path, **kwargs)
        assert ex.plumber.status_code == status, (
            f"plumber answered {ex.plumber.status_code}, the test expects {status}\n"
            + ex.describe()
        )
        assert_same(ex, body=body, present=present, masks=masks)
        return ex

    def wait_ready(self) -> None:
        try:
            self.plumber.wait_ready()
            self.plumbline.wait_ready()
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        with ThreadPoolExecutor(2) as pool:  # each stop waits for its process to exit
            list(pool.map(Server.stop, (self.plumber, self.plumbline)))


def assert_same(
    ex: Exchange,
    *,
    body="exact",
    present: tuple[str, ...] = (),
    masks: dict[str, Callable[[str], str]] | None = None,
) -> None:
    """Both answers agree: status, every header but IGNORED_HEADERS, and the body."""
    p, q = ex.plumber, ex.plumbline
    assert p.status_code == q.status_code, "status differs\n" + ex.describe()
    assert p.complete and q.complete, "a body shorter than its Content-Length\n" + ex.describe()
    for name in present:
        assert name in p.headers and name in q.headers, f"header {name} missing\n" + ex.describe()
    masks = {name.lower(): mask for name, mask in (masks or {}).items()}
    for name in dict.fromkeys(p.headers.names() + q.headers.names()):
        if name in IGNORED_HEADERS:
            continue
        mask = masks.get(name, lambda value: value)
        assert [mask(v) for v in p.headers.get_list(name)] == [
            mask(v) for v in q.headers.get_list(name)
        ], f"header {name} differs\n" + ex.describe()
    if body == "exact":
        assert p.content == q.content, "body differs\n" + ex.describe()
    elif body == "json":
        assert p.json() == q.json(), "JSON body differs\n" + ex.describe()
    elif callable(body):
        assert body(p.content) == body(q.content), "body differs\n" + ex.describe()
    else:
        assert body == "ignore", body


# PLUMBLINE_COMPAT_SELFCHECK=1 puts a second real plumber in plumbline's place: every comparison
# that is not about a deliberate improvement must then pass, which shows the harness itself
# (masking of time stamps, random numbers, addresses) compares only what is deterministic.
SELFCHECK = os.environ.get("PLUMBLINE_COMPAT_SELFCHECK") == "1"


def launch_pair(
    plumber_file: Path,
    *,
    workers: int = 2,
    plumber_from_dir: bool = False,
    plumbline_file: Path | None = None,
    flags: tuple[str, ...] = (),
    plumber_docs: bool = False,
) -> ServerPair:
    """Start both servers (their start-ups overlap); call wait_ready() before use."""
    if SELFCHECK:
        plumbline = start_plumber(plumber_file, from_dir=plumber_from_dir, docs=plumber_docs)
    else:
        plumbline = start_plumbline(plumbline_file or plumber_file, workers=workers, flags=flags)
    plumber = start_plumber(plumber_file, from_dir=plumber_from_dir, docs=plumber_docs)
    return ServerPair(plumber, plumbline)


def deliberate(reason: str) -> None:
    """Mark a test of a deliberate improvement: it checks plumbline's own behaviour."""
    if SELFCHECK:
        pytest.skip(f"deliberate improvement ({reason}): nothing to check plumber against itself")


@dataclass(frozen=True)
class PairSpec:
    """What a test class (or module) serves, from its attributes:
    EXAMPLE (folder under plumber's examples) or APP (a folder), FILE (default plumber.R),
    WORKERS (default 2), PLUMBER_FROM_DIR (plumber runs the folder's entrypoint.R),
    PLUMBLINE_FILE (plumbline serves this file instead; relative to the folder),
    PLUMBLINE_FLAGS (more `plumbline serve` flags), NEEDS (R packages the app attaches),
    PLUMBER_DOCS (plumber serves its /openapi.json)."""

    plumber_file: Path
    workers: int
    plumber_from_dir: bool
    plumbline_file: Path | None
    flags: tuple[str, ...]
    needs: tuple[str, ...]
    plumber_docs: bool = False

    @classmethod
    def of(cls, owner) -> "PairSpec | None":
        if hasattr(owner, "EXAMPLE"):
            folder = plumber_examples_dir() / owner.EXAMPLE
        elif hasattr(owner, "APP"):
            folder = Path(owner.APP)
        else:
            return None
        other = getattr(owner, "PLUMBLINE_FILE", None)
        return cls(
            folder / getattr(owner, "FILE", "plumber.R"),
            getattr(owner, "WORKERS", 2),
            getattr(owner, "PLUMBER_FROM_DIR", False),
            folder / other if other else None,
            tuple(getattr(owner, "PLUMBLINE_FLAGS", ())),
            tuple(getattr(owner, "NEEDS", ())),
            bool(getattr(owner, "PLUMBER_DOCS", False)),
        )

    def missing_package(self) -> str | None:
        return next((p for p in self.needs if not r_package_installed(p)), None)

    def launch(self) -> ServerPair:
        return launch_pair(
            self.plumber_file,
            workers=self.workers,
            plumber_from_dir=self.plumber_from_dir,
            plumbline_file=self.plumbline_file,
            flags=self.flags,
            plumber_docs=self.plumber_docs,
        )


def assert_405_with_allow(ex: Exchange, allowed: str) -> None:
    """A wrong verb where plumbline answers (no filter, no `#* @plumber` block): plumber's 405
    and body with its empty Allow header; plumbline fills Allow (deliberate,
    docs/compatibility.md); every other header the same."""
    p, q = ex.plumber, ex.plumbline
    assert p.status_code == q.status_code == 405, ex.describe()
    assert p.content == q.content == b'{"error":"405 - Method Not Allowed"}', ex.describe()
    assert p.headers["content-type"] == q.headers["content-type"] == "application/json"
    assert p.headers["allow"] == "", ex.describe()
    deliberate("405 Allow header filled")
    assert q.headers["allow"] == allowed, ex.describe()
    assert_same(ex, masks={"allow": lambda _: "(compared above)"})


def wait_for_unhealthy_restart(pair: ServerPair, timeout: float = 90) -> None:
    """Until plumbline's pool has replaced a worker whose /health failed (its metrics say)."""

    def restarts() -> float:
        text = pair.request("plumbline", "GET", "/metrics").text
        found = re.search(
            r'^plumbline_worker_restarts_total\{reason="unhealthy"\} (\S+)$', text, re.M
        )
        return float(found.group(1)) if found else 0.0

    deadline = time.monotonic() + timeout
    while restarts() < 1:
        assert time.monotonic() < deadline, "plumbline did not replace the worker failing /health"
        time.sleep(0.2)


class Launcher:
    """Hands each test class its pair of servers and starts the next class's pair meanwhile,
    so R start-up overlaps with the tests (the suite stays near its time budget)."""

    def __init__(self, order: list[PairSpec]):
        self.order = order  # the pairs the collected tests use, in run order
        self.next = 0
        self.pending: dict[PairSpec, ServerPair] = {}

    def take(self, spec: PairSpec) -> ServerPair:
        servers = self.pending.pop(spec, None) or spec.launch()
        if spec in self.order[self.next :]:
            self.next = self.order.index(spec, self.next) + 1
        if self.next < len(self.order):
            upcoming = self.order[self.next]
            if upcoming not in self.pending and not upcoming.missing_package():
                self.pending[upcoming] = upcoming.launch()
        servers.wait_ready()
        return servers

    def close(self) -> None:
        for servers in self.pending.values():
            servers.close()
        self.pending.clear()
