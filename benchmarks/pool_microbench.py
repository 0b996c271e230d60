"""Micro-benchmark of the pool's hot path: GET /parity of the example app, no HTTP server.

    .venv/bin/python benchmarks/pool_microbench.py [--workers 2] [--requests 1000] [--rounds 5]

Prints requests/s through the pool at a few concurrencies, and the CPU time one request
costs: through the pool (the pool process and the worker together, sequential requests),
and in a plain R process (no pool, no pipes, no rpy2) both for plumber's own pr$call() and
for the worker's R entry point plumbline_handle(). Pool minus plumbline_handle() is what the
pool, the pipes and the Python side of the worker add.
Measurements alternate between the two for --rounds rounds and the best of each is kept:
on a shared machine CPU time is the honest measure, wall time also counts waiting for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import uvloop

from plumbline.runtime.pool import PoolConfig, WorkerPool
from plumbline.runtime.protocol import WorkerRequest

EXAMPLE_APP = Path(__file__).parents[1] / "examples" / "plumber-on-k8s" / "plumber.R"
BRIDGE = Path(__file__).parents[1] / "runtime" / "bridge.R"
FASTPATH = Path(__file__).parents[1] / "runtime" / "fastpath.R"

# R alone, the app loaded as the workers load it. Each line on stdin is a request count;
# the answer is the CPU seconds they took through plumber's own pr$call() and through the
# worker's R entry point plumbline_handle() (Rook environment, pipeline, flattened answer).
R_ALONE = r"""
bridge <- new.env()
for (source in c("{bridge}", "{fastpath}")) sys.source(source, envir = bridge)
stopifnot(is.null(bridge$plumbline_load("{app}", character(), TRUE)))
pr <- bridge$plumbline$pr
call <- function() {{
  req <- new.env()
  req$REQUEST_METHOD <- "GET"; req$PATH_INFO <- "/parity"; req$QUERY_STRING <- "?int=3"
  req$HTTP_HOST <- "127.0.0.1"; req$rook.input <- bridge$rook_input(raw())
  pr$call(req)
}}
fields <- c("GET", "/parity", "int=3", "127.0.0.1", "0", "127.0.0.1", "8000", "http",
            "host", "user-agent", "HTTP_HOST", "HTTP_USER_AGENT", "127.0.0.1:8000", "microbench")
handle <- function() bridge$plumbline_handle(fields, raw())
for (i in 1:200) {{ call(); handle() }}
cpu <- function(t) t[["user.self"]] + t[["sys.self"]]
cat("ready\n")
input <- file("stdin", "r")
while (length(line <- readLines(input, n = 1L)) > 0L) {{
  n <- seq_len(as.integer(line))
  cat(cpu(system.time(for (i in n) call())), cpu(system.time(for (i in n) handle())), "\n")
}}
"""


def request(i: int) -> WorkerRequest:
    headers = [("host", "127.0.0.1:8000"), ("user-agent", "microbench")]
    return WorkerRequest("GET", "/parity", f"int={i}", headers)


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) these processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def run_clients(pool: WorkerPool, total: int, concurrency: int) -> float:
    async def client(k: int) -> None:
        for i in range(k, total, concurrency):
            response = await pool.call(request(i))
            assert response.status == 200, response

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return time.perf_counter() - started


class RAlone:
    async def start(self) -> None:
        script = R_ALONE.format(bridge=BRIDGE, fastpath=FASTPATH, app=EXAMPLE_APP)
        self.proc = await asyncio.create_subprocess_exec(
            "Rscript", "-e", script, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert (await self.proc.stdout.readline()).strip() == b"ready"

    async def cpu_per_request(self, count: int) -> tuple[float, float]:
        """(plumber's pr$call, the worker's plumbline_handle) CPU seconds per request."""
        self.proc.stdin.write(f"{count}\n".encode())
        prcall, handle = (float(x) for x in (await self.proc.stdout.readline()).split())
        return prcall / count, handle / count

    async def stop(self) -> None:
        self.proc.stdin.close()
        await self.proc.wait()


async def bench(workers: int, total: int, rounds: int) -> None:
    pool = WorkerPool(PoolConfig(plumber_file=EXAMPLE_APP, workers=workers, max_queue=1000))
    alone = RAlone()
    await asyncio.gather(pool.start(), alone.start())
    while sum(row["state"] == "idle" for row in pool.snapshot()) < workers:
        await asyncio.sleep(0.1)
    try:
        await run_clients(pool, 300, workers)  # warm-up
        worker_pids = [row["pid"] for row in pool.snapshot()]
        concurrencies = sorted({1, workers, 2 * workers})
        best_wall = {c: float("inf") for c in concurrencies}
        best_pool_cpu = best_workers_cpu = best_prcall = best_handle = float("inf")
        for _ in range(rounds):
            for concurrency in concurrencies:
                pool_before, workers_before = cpu_seconds([os.getpid()]), cpu_seconds(worker_pids)
                elapsed = await run_clients(pool, total, concurrency)
                best_wall[concurrency] = min(best_wall[concurrency], elapsed)
                if concurrency == 1:
                    pool_cpu = (cpu_seconds([os.getpid()]) - pool_before) / total
                    workers_cpu = (cpu_seconds(worker_pids) - workers_before) / total
                    if pool_cpu + workers_cpu < best_pool_cpu + best_workers_cpu:
                        best_pool_cpu, best_workers_cpu = pool_cpu, workers_cpu
            prcall, handle = await alone.cpu_per_request(total)
            best_prcall, best_handle = min(best_prcall, prcall), min(best_handle, handle)
    finally:
        await asyncio.gather(pool.close(5), alone.stop())

    for concurrency in concurrencies:
        print(f"concurrency {concurrency:2d}, {workers} workers: "
              f"{total / best_wall[concurrency]:7.0f} requests/s")
    total_cpu = best_pool_cpu + best_workers_cpu
    print(f"CPU per request through the pool     : {total_cpu * 1e6:6.0f} us"
          f" (pool process {best_pool_cpu * 1e6:.0f}, worker {best_workers_cpu * 1e6:.0f})")
    print(f"CPU per request, R alone, pr$call()  : {best_prcall * 1e6:6.0f} us (plumber's pipeline)")
    print(f"CPU per request, R alone, bridge     : {best_handle * 1e6:6.0f} us (plumbline_handle())")
    print(f"added by pool + pipes + rpy2 (not R) : {(total_cpu - best_handle) * 1e6:6.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="pool size (default 2)")
    parser.add_argument("--requests", type=int, default=1000,
                        help="requests per measurement (default 1000)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of measurements; the best of each is kept (default 5)")
    args = parser.parse_args()
    # uvloop: the event loop `plumbline serve` runs the pool on.
    uvloop.run(bench(args.workers, args.requests, args.rounds))


if __name__ == "__main__":
    main()
