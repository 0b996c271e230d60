"""Micro-benchmark of the pool's hot path, no HTTP server: CPU per request, pool vs plain R.

    .venv/bin/python benchmarks/pool_microbench.py [--workers 2] [--requests 1000] [--rounds 5]

For each endpoint of benchmarks/api.R measured here (a plain text one, a JSON data frame and
a model's predict() on a JSON body), prints requests/s through the pool at a few
concurrencies, and the CPU time one request costs: through the pool (the pool process and the
worker, sequential requests), and in a plain R process (Rscript: no pool, no pipes, no rpy2,
no Python) for the very R the worker runs for it (plumbline_direct(), see runtime/direct.R),
for the worker's full pipeline (plumbline_handle()) and for plumber's own pr$call(). Worker
minus plain-R direct is what the worker adds around the same R work (issue 11's target: at
most 100 us).
A worker sleeps between requests (it waits on its pipe) and R runs slower just after a
wake-up (cold caches; on a virtual machine the idle vCPU is descheduled): the same plain-R
calls with a short sleep before each show how much of the worker's excess is that alone.
Measurements alternate between the pool and plain R for --rounds rounds and the best of each
is kept: on a shared machine CPU time is the honest measure, wall time also counts waiting.
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

HERE = Path(__file__).resolve().parent
API = HERE / "api.R"
RUNTIME = HERE.parent / "runtime"
# (method, path, query, argument, value, JSON body): the body's rows go to predict().
PREDICT_BODY = (
    '{"rows":[' + ",".join(f'{{"wt":{2 + i % 3}.5,"hp":{100 + 10 * i}}}' for i in range(10)) + "]}"
)
ENDPOINTS = (
    ("GET", "/parity", "int=3", "int", "3", ""),
    ("GET", "/frame", "n=20", "n", "20", ""),
    ("POST", "/predict", "", "", "", PREDICT_BODY),
)
PAUSE = 0.0002  # seconds slept before each call in the "after a wake-up" plain-R measurement

# R alone, the app loaded as a worker loads it. Each line on stdin is "path count"; the
# answer is the CPU seconds that many calls took through plumbline_direct() (the worker's
# R for that endpoint), plumbline_handle() (its full pipeline), plumber's pr$call(), and
# plumbline_direct() with a sleep before each call (less the sleeps' own CPU).
R_ALONE = r"""
bridge <- new.env()
for (source in c("bridge.R", "fastpath.R", "direct.R", "json_writer.R")) {{
  sys.source(file.path("{runtime}", source), envir = bridge)
}}
stopifnot(is.null(bridge$plumbline_load("{app}", character(), TRUE)))
pr <- bridge$plumbline$pr
rows <- bridge$direct_prepare(pr)
index_of <- function(path) which(vapply(rows, function(r) r$regex, "") == paste0("^", path, "$"))
endpoints <- list({endpoints})
calls <- lapply(endpoints, function(e) {{
  index <- index_of(e$path)
  stopifnot(length(index) == 1L, isTRUE(rows[[index]]$direct))
  args <- if (nzchar(e$arg)) structure(list(e$value), names = e$arg) else list()
  body <- charToRaw(e$body)
  type <- if (length(body)) "application/json"
  fields <- c(e$method, e$path, e$query, "127.0.0.1", "0", "127.0.0.1", "8000", "http",
              "host", "user-agent", if (length(body)) "content-type",
              "HTTP_HOST", "HTTP_USER_AGENT", if (length(body)) "HTTP_CONTENT_TYPE",
              "127.0.0.1:8000", "bench", type)
  list(
    direct = function() bridge$plumbline_direct(index, args, character(), body, type),
    handle = function() bridge$plumbline_handle(fields, body),
    prcall = function() {{
      req <- new.env()
      req$REQUEST_METHOD <- e$method; req$PATH_INFO <- e$path
      req$QUERY_STRING <- if (nzchar(e$query)) paste0("?", e$query) else ""
      req$HTTP_HOST <- "127.0.0.1"; req$rook.input <- bridge$rook_input(body)
      if (length(body)) {{ req$HTTP_CONTENT_TYPE <- type; req$CONTENT_TYPE <- type }}
      pr$call(req)
    }})
}})
names(calls) <- vapply(endpoints, function(e) e$path, "")
for (call in calls) for (i in 1:200) {{ call$direct(); call$handle(); call$prcall() }}
cpu <- function(t) t[["user.self"]] + t[["sys.self"]]
cat("ready\n")
input <- file("stdin", "r")
while (length(line <- readLines(input, n = 1L)) > 0L) {{
  words <- strsplit(line, " ")[[1]]
  call <- calls[[words[[1]]]]
  n <- seq_len(as.integer(words[[2]]))
  pause <- as.numeric(words[[3]])
  woken <- cpu(system.time(for (i in n) {{ Sys.sleep(pause); call$direct() }})) -
    cpu(system.time(for (i in n) Sys.sleep(pause)))
  cat(cpu(system.time(for (i in n) call$direct())), cpu(system.time(for (i in n) call$handle())),
      cpu(system.time(for (i in n) call$prcall())), woken, "\n")
}}
"""


def request(method: str, path: str, query: str, body: str) -> WorkerRequest:
    headers = [("host", "127.0.0.1:8000"), ("user-agent", "microbench")]
    if body:
        headers.append(("content-type", "application/json"))
    return WorkerRequest(method, path, query, headers, body.encode())


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) these processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def run_clients(pool: WorkerPool, req: WorkerRequest, total: int, concurrency: int) -> float:
    async def client(k: int) -> None:
        for _ in range(k, total, concurrency):
            response = await pool.call(req)
            assert response.status == 200, response

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return time.perf_counter() - started


class RAlone:
    async def start(self) -> None:
        endpoints = ", ".join(
            f'list(method = "{m}", path = "{p}", query = "{q}", arg = "{a}", value = "{v}", '
            f"body = '{b}')"
            for m, p, q, a, v, b in ENDPOINTS
        )
        script = R_ALONE.format(runtime=RUNTIME, app=API, endpoints=endpoints)
        self.proc = await asyncio.create_subprocess_exec(
            "Rscript", "-e", script, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert (await self.proc.stdout.readline()).strip() == b"ready"

    async def cpu_per_request(self, path: str, count: int) -> list[float]:
        """CPU seconds per request: plumbline_direct, plumbline_handle, pr$call, and
        plumbline_direct after a sleep."""
        self.proc.stdin.write(f"{path} {count} {PAUSE}\n".encode())
        return [float(x) / count for x in (await self.proc.stdout.readline()).split()]

    async def stop(self) -> None:
        self.proc.stdin.close()
        await self.proc.wait()


async def bench(workers: int, total: int, rounds: int) -> None:
    # The same workers for the whole run: their pids are what CPU is read from (a worker
    # re-forked after a full collection in R would take its successor's CPU out of a round).
    config = PoolConfig(
        plumber_file=API, workers=workers, max_queue=1000, refork_after_full_gc=False
    )
    pool = WorkerPool(config)
    alone = RAlone()
    await asyncio.gather(pool.start(), alone.start())
    while sum(row["state"] == "idle" for row in pool.snapshot()) < workers:
        await asyncio.sleep(0.1)
    print(
        f"load average before: {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, "
        f"{workers} workers{' (preloaded)' if pool.preloaded else ''}"
    )
    try:
        for method, path, query, _, _, body in ENDPOINTS:
            req = request(method, path, query, body)
            await run_clients(pool, req, 300, workers)  # warm-up
            worker_pids = [row["pid"] for row in pool.snapshot()]
            concurrencies = sorted({1, workers, 2 * workers})
            best_wall = dict.fromkeys(concurrencies, float("inf"))
            best_pool = best_worker = float("inf")
            best_r = [float("inf")] * 4
            for _ in range(rounds):
                for concurrency in concurrencies:
                    pool_before = cpu_seconds([os.getpid()])
                    workers_before = cpu_seconds(worker_pids)
                    elapsed = await run_clients(pool, req, total, concurrency)
                    best_wall[concurrency] = min(best_wall[concurrency], elapsed)
                    if concurrency == 1:
                        pool_cpu = (cpu_seconds([os.getpid()]) - pool_before) / total
                        worker_cpu = (cpu_seconds(worker_pids) - workers_before) / total
                        if pool_cpu + worker_cpu < best_pool + best_worker:
                            best_pool, best_worker = pool_cpu, worker_cpu
                r_costs = await alone.cpu_per_request(path, total)
                best_r = [min(a, b) for a, b in zip(best_r, r_costs)]
            print(f"\n{method} {path}{'?' + query if query else ''}")
            for concurrency in concurrencies:
                print(
                    f"  concurrency {concurrency:2d}: {total / best_wall[concurrency]:7.0f} requests/s"
                )
            direct, handle, prcall, woken = (x * 1e6 for x in best_r)
            print(
                f"  CPU per request through the pool : {(best_pool + best_worker) * 1e6:6.0f} us"
                f" (pool process {best_pool * 1e6:.0f}, worker {best_worker * 1e6:.0f})"
            )
            print(f"  plain R, the worker's R          : {direct:6.0f} us (plumbline_direct())")
            print(f"  plain R, full pipeline           : {handle:6.0f} us (plumbline_handle())")
            print(f"  plain R, plumber's pr$call()     : {prcall:6.0f} us")
            print(
                f"  plain R, the worker's R, woken   : {woken:6.0f} us (after a "
                f"{PAUSE * 1e6:.0f} us sleep, as a worker is)"
            )
            print(
                f"  worker above the same R in plain R: {best_worker * 1e6 - direct:5.0f} us"
                f" (target <= 100; {best_worker * 1e6 - woken:.0f} above the woken plain R)"
            )
    finally:
        await asyncio.gather(pool.close(5), alone.stop())
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="pool size (default 2)")
    parser.add_argument(
        "--requests", type=int, default=1000, help="requests per measurement (default 1000)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds of measurements; the best of each is kept (default 5)",
    )
    args = parser.parse_args()
    # uvloop: the event loop `plumbline serve` runs the pool on.
    uvloop.run(bench(args.workers, args.requests, args.rounds))


if __name__ == "__main__":
    main()
