"""Micro-benchmark of the pool's hot path, no HTTP server: CPU per request, pool vs plain R.

    .venv/bin/python benchmarks/pool_microbench.py [--workers 2] [--requests 1000] [--rounds 5]
        [--blocks 40] [--block 400]

For each endpoint of benchmarks/api.R measured here (a plain text one, a JSON data frame and
a model's predict() on a JSON body; and the plain text one again with a query the pool has
not seen in every request, so the worker has no kept arguments for it, see
docs/workers.md "Call keys"), prints requests/s through the pool at a few
concurrencies, and the CPU time one request costs: through the pool (the pool process and the
worker, sequential requests), and in a plain R process (Rscript: no pool, no rpy2, no Python)
for the very R the worker runs for it (plumbline_direct(), see runtime/r/direct.R), for the
worker's full pipeline (plumbline_handle()) and for plumber's own pr$call().

The worker's R work is measured in plain R twice: back to back in a loop, and served over a
pipe: R waits on its stdin for one byte, makes the call, writes one byte back, as a worker
waits on its pipe for a request and writes its answer (a plain R server with the thinnest
protocol there is). Waiting costs R more than the two system calls: it runs slower just after
a wake-up (cold caches and branch predictors; on this virtual machine much slower), so the
pipe-served figure is the same R work as a server pays for it, and worker minus that figure
is what the bridge adds (rpy2, Python, the frames; issue 11's target: at most 100 us above
plain R). Under load (twice as many clients as workers, requests named by route as the front
names them) the pool pipelines: a worker is written its next request while it works, never
waits, and its CPU per request is set against plain R back to back, and against the same R
served under the same load: as many plain R processes as workers, all served over their
pipes at once with two requests in flight each (R never waits either, and shares the CPUs
as the workers do; without the pool process's own work). The best of each side comes from
whichever round was quietest for it, and this machine's speed moves by more than the target
between rounds a second apart, so that difference is also taken over --blocks short blocks
(--block requests on each side, measured back to back, which one first alternating), and
the median of the blocks' differences printed with a 95% interval for it (order statistics:
no assumption about how the differences are spread). CPU time is read from
/proc/PID/task/*/schedstat (nanoseconds; clock ticks of 10 ms are too coarse for 1000
requests). Measurements alternate between the pool and plain R for --rounds rounds and the
best of each is kept: on a shared machine CPU time is the honest measure, wall time also
counts waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

from plumbline.runtime.pool.pool import PoolConfig, WorkerPool
from plumbline.runtime.protocol import WorkerRequest

HERE = Path(__file__).resolve().parent
API = HERE / "api.R"
RUNTIME = HERE.parent / "runtime" / "r"
# (method, path, query, argument, value, JSON body, a new query each request): the body's
# rows go to predict(). A worker keeps the R arguments it made for a request (its method,
# path, query and content type) and calls R with them again for the next such request; the
# last line sends the pool a query it has not seen for every request (argument=N, N counting
# up), to measure what a request costs without them. Plain R answers the first /parity's.
PREDICT_BODY = (
    '{"rows":[' + ",".join(f'{{"wt":{2 + i % 3}.5,"hp":{100 + 10 * i}}}' for i in range(10)) + "]}"
)
ENDPOINTS = (
    ("GET", "/parity", "int=3", "int", "3", "", False),
    ("GET", "/frame", "n=20", "n", "20", "", False),
    ("POST", "/predict", "", "", "", PREDICT_BODY, False),
    ("GET", "/parity", "int=3", "int", "3", "", True),
)

# R alone, the app loaded as a worker loads it. "time PATH COUNT" on stdin answers the CPU
# seconds that many calls took back to back through plumbline_direct() (the worker's R for
# that endpoint), plumbline_handle() (its full pipeline) and plumber's pr$call(); after
# "serve PATH COUNT" R answers "go", then serves COUNT one-byte requests on stdin with
# plumbline_direct(), one byte written back for each.
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
# One connection for both the command lines and the served requests' bytes: two would each
# read ahead into their own buffer.
input <- file("stdin", "rb")
cat("ready\n")
while (length(line <- readLines(input, n = 1L)) > 0L) {{
  words <- strsplit(line, " ")[[1]]
  call <- calls[[words[[2]]]]
  n <- seq_len(as.integer(words[[3]]))
  if (words[[1]] == "serve") {{
    cat("go\n")
    for (i in n) {{ readBin(input, "raw", 1L); call$direct(); cat("y"); flush(stdout()) }}
  }} else {{
    cat(cpu(system.time(for (i in n) call$direct())), cpu(system.time(for (i in n) call$handle())),
        cpu(system.time(for (i in n) call$prcall())), "\n")
  }}
}}
"""


def request(method: str, path: str, query: str, body: str) -> WorkerRequest:
    headers = [("host", "127.0.0.1:8000"), ("user-agent", "microbench")]
    if body:
        headers.append(("content-type", "application/json"))
    return WorkerRequest(method, path, query, headers, body.encode())


def cpu_seconds(pids: list[int]) -> float:
    """CPU time these processes (all their threads) have used so far, to the nanosecond."""
    nanoseconds = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            nanoseconds += int((task / "schedstat").read_text().split()[0])
    return nanoseconds / 1e9


def requests_of(
    method: str, path: str, query: str, argument: str, body: str, fresh: bool
) -> Callable[[], WorkerRequest]:
    """The endpoint's request, the same each time or with a query never sent before."""
    if fresh:
        numbers = itertools.count(1000)
        return lambda: request(method, path, f"{argument}={next(numbers)}", body)
    same = request(method, path, query, body)
    return lambda: same


async def run_clients(
    pool: WorkerPool, make: Callable[[], WorkerRequest], total: int, concurrency: int
) -> float:
    first = make()
    route = (first.method, first.path)  # the route's name, as the front passes it (pipelining)

    async def client(k: int) -> None:
        for _ in range(k, total, concurrency):
            response = await pool.call(make(), route)
            assert response.status == 200, response

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return time.perf_counter() - started


class RAlone:
    async def start(self) -> None:
        endpoints = ", ".join(
            f'list(method = "{m}", path = "{p}", query = "{q}", arg = "{a}", value = "{v}", '
            f"body = '{b}')"
            for m, p, q, a, v, b, fresh in ENDPOINTS
            if not fresh
        )
        script = R_ALONE.format(runtime=RUNTIME, app=API, endpoints=endpoints)
        self.proc = await asyncio.create_subprocess_exec(
            "Rscript", "-e", script, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert (await self.proc.stdout.readline()).strip() == b"ready"

    async def cpu_per_request(self, path: str, count: int) -> list[float]:
        """CPU seconds per request, back to back: plumbline_direct, plumbline_handle, pr$call."""
        self.proc.stdin.write(f"time {path} {count}\n".encode())
        return [float(x) / count for x in (await self.proc.stdout.readline()).split()]

    async def served_cpu_per_request(self, path: str, count: int) -> float:
        """CPU seconds per request of plumbline_direct served over a pipe, one at a time."""
        await self._begin_serving(path, count)
        before = cpu_seconds([self.proc.pid])
        await self._send_requests(count, in_flight=1)
        return (cpu_seconds([self.proc.pid]) - before) / count

    async def serve_pipelined(self, path: str, count: int, in_flight: int = 2) -> None:
        """Have plumbline_direct served over the pipe with `in_flight` requests written ahead,
        as the pool pipelines under load: R reads its next request as soon as it answers."""
        await self._begin_serving(path, count)
        await self._send_requests(count, in_flight)

    async def _begin_serving(self, path: str, count: int) -> None:
        self.proc.stdin.write(f"serve {path} {count}\n".encode())
        assert await self.proc.stdout.readline() == b"go\n"

    async def _send_requests(self, count: int, in_flight: int) -> None:
        """Write `count` one-byte requests, `in_flight` ahead of R's answers; read them all."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        written = min(in_flight, count)
        stdin.write(b"x" * written)
        for _ in range(count):
            await stdout.readexactly(1)
            if written < count:
                stdin.write(b"x")
                written += 1

    async def stop(self) -> None:
        self.proc.stdin.close()
        await self.proc.wait()


async def plain_loaded_cost(plain: list[RAlone], path: str, count: int) -> float:
    """CPU seconds per request of the same R under the same load: as many plain R processes
    as workers, served over their pipes at once, two requests in flight each."""
    pids = [r.proc.pid for r in plain]
    before = cpu_seconds(pids)
    share = [count // len(plain) + (k < count % len(plain)) for k in range(len(plain))]
    await asyncio.gather(*(r.serve_pipelined(path, n) for r, n in zip(plain, share)))
    return (cpu_seconds(pids) - before) / count


async def paired_blocks(
    pool: WorkerPool,
    make: Callable[[], WorkerRequest],
    plain: list[RAlone],
    worker_pids: list[int],
    path: str,
    blocks: int,
    block: int,
) -> list[float]:
    """The workers' CPU per request under load (twice as many clients as workers) minus the
    same R's under the same load, one difference per block of `block` requests on each side,
    the two measured back to back, which one first alternating (a machine whose speed drifts
    favours neither)."""

    async def worker_cost() -> float:
        before = cpu_seconds(worker_pids)
        await run_clients(pool, make, block, 2 * len(plain))
        return (cpu_seconds(worker_pids) - before) / block

    differences = []
    for k in range(blocks):
        if k % 2:
            r = await plain_loaded_cost(plain, path, block)
            worker = await worker_cost()
        else:
            worker = await worker_cost()
            r = await plain_loaded_cost(plain, path, block)
        differences.append(worker - r)
    return differences


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median (order statistics: the j-th smallest and
    j-th largest, j the largest rank whose binomial tail is within (1 - level) / 2)."""
    ordered = sorted(values)
    n = len(ordered)
    tail, j = 0.0, 0
    while j < n // 2:
        tail += math.comb(n, j) / 2**n  # P(fewer than j + 1 of n below the median)
        if tail > (1 - level) / 2:
            break
        j += 1
    j = max(j, 1)
    return ordered[j - 1], ordered[n - j]


def _quartiles_us(values: list[float]) -> str:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return f"{q1 * 1e6:.0f} / {q2 * 1e6:.0f} / {q3 * 1e6:.0f}"


async def bench(workers: int, total: int, rounds: int, blocks: int, block: int) -> None:
    # The same workers for the whole run: their pids are what CPU is read from (a worker
    # re-forked after a full collection in R would take its successor's CPU out of a round).
    config = PoolConfig(
        plumber_file=API, workers=workers, max_queue=1000, refork_after_full_gc=False
    )
    pool = WorkerPool(config)
    # Plain R, one process per worker for the loaded reference; the first also measures alone.
    plain = [RAlone() for _ in range(workers)]
    alone = plain[0]
    await asyncio.gather(pool.start(), *(r.start() for r in plain))
    while sum(row["state"] == "idle" for row in pool.snapshot()) < workers:
        await asyncio.sleep(0.1)
    print(
        f"load average before: {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, "
        f"{workers} workers{' (preloaded)' if pool.preloaded else ''}"
    )
    try:
        for method, path, query, argument, _, body, fresh in ENDPOINTS:
            req = requests_of(method, path, query, argument, body, fresh)
            await run_clients(pool, req, 300, workers)  # warm-up
            worker_pids = [row["pid"] for row in pool.snapshot()]
            concurrencies = sorted({1, workers, 2 * workers})
            best_wall = dict.fromkeys(concurrencies, float("inf"))
            best_pool = best_worker = best_loaded = float("inf")
            pipelined = 0
            best_r = [float("inf")] * 4  # back to back: direct, handle, pr$call; served
            best_r_loaded = float("inf")
            for _ in range(rounds):
                for concurrency in concurrencies:
                    pool_before = cpu_seconds([os.getpid()])
                    workers_before = cpu_seconds(worker_pids)
                    pipelined_before = pool.pipelined
                    elapsed = await run_clients(pool, req, total, concurrency)
                    best_wall[concurrency] = min(best_wall[concurrency], elapsed)
                    if concurrency == 1:
                        pool_cpu = (cpu_seconds([os.getpid()]) - pool_before) / total
                        worker_cpu = (cpu_seconds(worker_pids) - workers_before) / total
                        if pool_cpu + worker_cpu < best_pool + best_worker:
                            best_pool, best_worker = pool_cpu, worker_cpu
                    elif concurrency == 2 * workers:
                        loaded_cpu = (cpu_seconds(worker_pids) - workers_before) / total
                        best_loaded = min(best_loaded, loaded_cpu)
                        pipelined += pool.pipelined - pipelined_before
                best_r_loaded = min(best_r_loaded, await plain_loaded_cost(plain, path, total))
                r_costs = await alone.cpu_per_request(path, total)
                r_costs.append(await alone.served_cpu_per_request(path, total))
                best_r = [min(a, b) for a, b in zip(best_r, r_costs)]
            if fresh:
                print(f"\n{method} {path}?{argument}=N, N new each request (no kept arguments)")
            else:
                print(f"\n{method} {path}{'?' + query if query else ''}")
            for concurrency in concurrencies:
                print(
                    f"  concurrency {concurrency:2d}: {total / best_wall[concurrency]:7.0f} requests/s"
                )
            direct, handle, prcall, served = (x * 1e6 for x in best_r)
            print(
                f"  CPU per request through the pool : {(best_pool + best_worker) * 1e6:6.0f} us"
                f" (pool process {best_pool * 1e6:.0f}, worker {best_worker * 1e6:.0f})"
            )
            print(f"  plain R, the worker's R          : {direct:6.0f} us (plumbline_direct())")
            print(f"  plain R, full pipeline           : {handle:6.0f} us (plumbline_handle())")
            print(f"  plain R, plumber's pr$call()     : {prcall:6.0f} us")
            print(
                f"  plain R, the worker's R, served  : {served:6.0f} us (over a pipe, one "
                "request at a time, as a worker serves)"
            )
            worker = best_worker * 1e6
            print(
                f"  worker above the same R in plain R: {worker - served:5.0f} us served over a"
                f" pipe (target <= 100), {worker - direct:.0f} us back to back"
            )
            pipelined /= rounds * total
            print(
                f"  plain R, the worker's R, loaded  : {best_r_loaded * 1e6:6.0f} us ({workers}"
                " processes served over pipes at once, two requests in flight each)"
            )
            loaded = best_loaded * 1e6
            print(
                f"  worker under load (concurrency {2 * workers}, {pipelined:.0%} of requests"
                f" pipelined): {loaded:.0f} us, {loaded - best_r_loaded * 1e6:.0f} us above the"
                f" same R under the same load (target <= 100), {loaded - direct:.0f} us above"
                " plain R back to back"
            )
            # Each side's best comes from whichever round was luckiest for it; differences
            # taken between short blocks measured in turns are steadier.
            paired = await paired_blocks(pool, req, plain, worker_pids, path, blocks, block)
            low, high = median_interval(paired)
            print(
                f"  the same, paired: {blocks} blocks of {block} requests in turns, median"
                f" {statistics.median(paired) * 1e6:.0f} us above (95% interval of the median:"
                f" {low * 1e6:.0f} to {high * 1e6:.0f}; blocks' quartiles"
                f" {_quartiles_us(paired)})"
            )
    finally:
        await asyncio.gather(pool.close(5), *(r.stop() for r in plain))
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
    parser.add_argument(
        "--blocks",
        type=int,
        default=40,
        help="blocks of the paired measurement under load (default 40)",
    )
    parser.add_argument(
        "--block", type=int, default=400, help="requests per block on each side (default 400)"
    )
    args = parser.parse_args()
    # uvloop: the event loop `plumbline serve` runs the pool on.
    uvloop.run(bench(args.workers, args.requests, args.rounds, args.blocks, args.block))


if __name__ == "__main__":
    main()
