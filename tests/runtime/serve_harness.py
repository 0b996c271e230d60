"""`plumbline serve` as a user runs it, for tests: a real subprocess on a free loopback port.

`serve()` starts it and waits for /livez; `Served` has the small HTTP helpers the tests share.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support import EXAMPLE, free_port

PLUMBLINE = [sys.executable, "-m", "plumbline", "serve"]


@dataclass
class Served:
    proc: subprocess.Popen
    port: int
    stdout: Path
    stderr: Path

    def get(self, path, method="GET", headers=None, timeout=30.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def metric(self, line_start: str) -> float | None:
        _, _, body = self.get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_settled(self, timeout=60.0):
        """Until the first worker, forked before the zygote settled, has been replaced
        (docs/workers.md): the workers there are now are the ones that stay."""
        self.wait_until(
            lambda: '"reason":"unsettled"' in self.stderr.read_text(),
            timeout,
            "the first worker's swap",
        )

    def wait_until(self, predicate, timeout=60.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; stderr:\n{self.stderr.read_text()}")


@contextmanager
def serve(tmp_path: Path, *options: str, plumber_file: Path = EXAMPLE, env: dict | None = None):
    port = free_port()
    stdout, stderr = tmp_path / f"out-{port}.log", tmp_path / f"err-{port}.log"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [*PLUMBLINE, str(plumber_file), "--port", str(port), *options],
            stdout=out,
            stderr=err,
            cwd=tmp_path,
            env=env,
        )
    served = Served(proc, port, stdout, stderr)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"server exited early:\n{stderr.read_text()}"
            assert time.monotonic() < deadline, "server did not start"
            try:
                if served.get("/livez", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def in_thread(fn, *args):
    result = {}

    def run():
        try:
            result["value"] = fn(*args)
        except Exception as exc:  # surfaced by the test through result
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result
