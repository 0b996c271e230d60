"""Micro-benchmark of the pool's hot path: GET /parity of the example app, no HTTP server.

    .venv/bin/python benchmarks/pool_microbench.py [--workers 2] [--requests 4000]

Prints requests/s at a few concurrencies, the sequential latency per request, plumber's own
cost for the same request inside R (pr$call on a bare Rook environment, no pool, no pipes),
and the difference: what the pool, the pipes and the bridge add per request.
"""

from __future__ import annotations

import argparse
import asyncio
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
cat(system.time(for (i in seq_len(n)) call())[["elapsed"]] / n * 1e6)
"""


def request(i: int) -> WorkerRequest:
    return WorkerRequest("GET", "/parity", f"int={i}", [("host", "127.0.0.1:8000"),
                                                        ("user-agent", "microbench")])


async def run_clients(pool: WorkerPool, total: int, concurrency: int) -> float:
    async def client(k: int) -> None:
        for i in range(k, total, concurrency):
            response = await pool.call(request(i))
            assert response.status == 200, response

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return time.perf_counter() - started


async def bench_pool(workers: int, total: int) -> float:
    pool = WorkerPool(PoolConfig(plumber_file=EXAMPLE_APP, workers=workers, max_queue=1000))
    await pool.start()
    while sum(row["state"] == "idle" for row in pool.snapshot()) < workers:
        await asyncio.sleep(0.1)
    try:
        await run_clients(pool, 500, workers)  # warm-up
        for concurrency in sorted({1, workers, 2 * workers}):
            elapsed = await run_clients(pool, total, concurrency)
            print(f"concurrency {concurrency:2d}: {total / elapsed:8.0f} requests/s"
                  f"  ({elapsed / total * 1e6:7.0f} us/request)")
            if concurrency == 1:
                sequential_us = elapsed / total * 1e6
    finally:
        await pool.close(5)
    return sequential_us


def plumber_alone_us(n: int) -> float:
    script = PLUMBER_ALONE.format(bridge=BRIDGE, app=EXAMPLE_APP, n=n)
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="pool size (default 2)")
    parser.add_argument("--requests", type=int, default=4000, help="per measurement (default 4000)")
    args = parser.parse_args()
    sequential_us = asyncio.run(bench_pool(args.workers, args.requests))
    alone_us = plumber_alone_us(args.requests)
    print(f"plumber's own pr$call in R: {alone_us:7.0f} us/request")
    print(f"pool + pipes + bridge add : {sequential_us - alone_us:7.0f} us/request (sequential)")


if __name__ == "__main__":
    main()
