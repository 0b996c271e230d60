"""Drive a real WorkerPool from synchronous tests: the pool lives on an event loop in a thread.

A pool (R workers take a second or two each to start) can then be shared by a module's tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import psutil

from plumbline.runtime.pool.pool import PoolConfig, WorkerPool
from plumbline.runtime.protocol import WorkerRequest, WorkerResponse

APPS = Path(__file__).parent / "apps"
EXAMPLE_APP = Path(__file__).parents[2] / "examples" / "plumber-on-k8s" / "plumber.R"


class PoolHarness:
    def __init__(self, config: PoolConfig):
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.pool = WorkerPool(config)

    def run(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        """Start the pool and wait until its first worker, forked before the zygote settled,
        has been replaced: tests then see the workers that stay."""
        self.run(self.pool.start())
        self.wait_settled()

    def wait_settled(self, timeout: float = 60) -> None:
        async def settling():
            return self.pool.settling

        wait_for(lambda: not self.run(settling()), timeout, interval=0.02)

    def request(
        self,
        method: str,
        path: str,
        query: str = "",
        headers=(),
        body: bytes = b"",
        timeout: float = 120,
        route=None,
    ) -> WorkerResponse:
        headers = [("host", "127.0.0.1:8000"), *headers]
        if body:
            headers.append(("content-length", str(len(body))))
        request = WorkerRequest(method, path, query, headers, body)
        return self.run(self.pool.call(request, route), timeout)

    def get(self, path: str, query: str = "", **kwargs) -> WorkerResponse:
        return self.request("GET", path, query, **kwargs)

    def submit(self, method: str, path: str, query: str = "", route=None):
        """Start a request without waiting for it; returns a concurrent.futures.Future.
        `route` names its endpoint for pipelining, as the front passes it (None: never
        pipelined behind)."""
        request = WorkerRequest(method, path, query, [("host", "127.0.0.1:8000")], b"")
        return asyncio.run_coroutine_threadsafe(self.pool.call(request, route), self.loop)

    def snapshot(self) -> list[dict]:
        async def take():
            return self.pool.snapshot()

        return self.run(take())

    def wait_until_idle(self, count: int | None = None, timeout: float = 60) -> list[dict]:
        """Until `count` (default: all) workers are loaded and idle, and no others exist."""
        count = self.config.workers if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.snapshot()
            if len(rows) == count and all(row["state"] == "idle" for row in rows):
                return rows
            time.sleep(0.1)
        raise AssertionError(f"workers not all idle after {timeout} s: {self.snapshot()}")

    def close(self, timeout: float = 10) -> None:
        try:
            self.run(self.pool.close(timeout))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@contextlib.contextmanager
def running_pool(plumber_file: Path, **settings):
    others = {process.pid for process in worker_processes()}  # e.g. a module-scoped pool's
    harness = PoolHarness(PoolConfig(plumber_file=plumber_file, **settings))
    try:
        harness.start()
        yield harness
    finally:
        harness.close()
    left = [process for process in worker_processes() if process.pid not in others]
    assert left == [], "the pool left worker processes behind"


R_PROCESS_MODULES = ("plumbline.runtime.r.worker", "plumbline.runtime.r.zygote")


def worker_processes() -> list[psutil.Process]:
    """Live R processes started by this test process: workers, zygotes and the workers
    forked from a zygote (which carry its command line)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = child.cmdline()
            if child.status() != psutil.STATUS_ZOMBIE and any(
                m in cmdline for m in R_PROCESS_MODULES
            ):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_for(predicate, timeout: float = 30, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
