"""Micro-benchmark of the pool's hot path: GET /parity of the example app, no HTTP server.

    .venv/bin/python benchmarks/pool_microbench.py [--workers 2] [--requests 4000]

Prints requests/s at a few concurrencies (best of --repeat runs) with the CPU time per
request of the pool process and the workers together, plumber's own CPU cost for the same
request inside R (pr$call on a bare Rook environment: no pool, no pipes), and the
difference: what the pool, the pipes and the bridge add. CPU time is the honest measure on a
shared machine; wall-clock requests/s also count time spent waiting for a free core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
from pathlib import Path

from plumbline.runtime.pool import PoolConfig, WorkerPool
from plumbline.runtime.protocol import WorkerRequest

EXAMPLE_APP = Path(__file__).parents[1] / "examples" / "plumber-on-k8s" / "plumber.R"
BRIDGE = Path(__file__).parents[1] / "runtime" / "bridge.R"

# plumber alone: the same request through pr$call in one R process, inline futures as the pool.
PLUMBER_ALONE = r"""
bridge <- new.env(); sys.source("{bridge}", envir = bridge)
stopifnot(is.null(bridge$plumbline_load("{app}", character(), TRUE)))
pr <- bridge$plumbline$pr
call <- function() {{
  req <- new.env()
  req$REQUEST_METHOD <- "GET"; req$PATH_INFO <- "/parity"; req$QUERY_STRING <- "?int=3"
  req$HTTP_HOST <- "127.0.0.1"; req$rook.input <- bridge$rook_input(raw())
  pr$call(req)
}}
for (i in 1:200) call()
n <- {n}
cpu <- function(t) t[["user.self"]] + t[["sys.self"]]
best <- min(replicate({repeats}, cpu(system.time(for (i in seq_len(n)) call()))))
cat(best / n * 1e6)
"""


def request(i: int) -> WorkerRequest:
    return WorkerRequest("GET", "/parity", f"int={i}", [("host", "127.0.0.1:8000"),
                                                        ("user-agent", "microbench")])


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes: unlike wall time, it does
    not grow when other jobs share the machine."""
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


async def bench_pool(workers: int, total: int, repeats: int) -> float:
    pool = WorkerPool(PoolConfig(plumber_file=EXAMPLE_APP, workers=workers, max_queue=1000))
    await pool.start()
    while sum(row["state"] == "idle" for row in pool.snapshot()) < workers:
        await asyncio.sleep(0.1)
    try:
        await run_clients(pool, 500, workers)  # warm-up
        pids = [os.getpid()] + [row["pid"] for row in pool.snapshot()]
        for concurrency in sorted({1, workers, 2 * workers}):
            best = None
            for _ in range(repeats):
                cpu_before = cpu_seconds(pids)
                elapsed = await run_clients(pool, total, concurrency)
                cpu = cpu_seconds(pids) - cpu_before
                if best is None or elapsed < best[0]:
                    best = (elapsed, cpu)
            elapsed, cpu = best
            print(f"concurrency {concurrency:2d}: {total / elapsed:8.0f} requests/s"
                  f"  ({elapsed / total * 1e6:6.0f} us wall, {cpu / total * 1e6:6.0f} us CPU"
                  f" per request, pool process and workers together)")
            if concurrency == 1:
                sequential_cpu_us = cpu / total * 1e6
    finally:
        await pool.close(5)
    return sequential_cpu_us


def plumber_alone_us(n: int, repeats: int) -> float:
    script = PLUMBER_ALONE.format(bridge=BRIDGE, app=EXAMPLE_APP, n=n, repeats=repeats)
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="pool size (default 2)")
    parser.add_argument("--requests", type=int, default=2000, help="per measurement (default 2000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement, the best is kept: a shared machine is noisy (default 3)")
    args = parser.parse_args()
    pool_cpu_us = asyncio.run(bench_pool(args.workers, args.requests, args.repeat))
    alone_us = plumber_alone_us(args.requests, args.repeat)
    print(f"plumber's own pr$call in R: {alone_us:6.0f} us CPU per request")
    print(f"pool + pipes + bridge add : {pool_cpu_us - alone_us:6.0f} us CPU per request")


if __name__ == "__main__":
    main()
