"""plumbline against real plumber 1.2.1 on the same plumber.R, same machine, same run.

    .venv/bin/python benchmarks/compare.py [--duration 8] [--rounds 3] [--output docs/benchmarks.md]
    .venv/bin/python benchmarks/compare.py --only memory   # one part, its results as JSON

1. Throughput and latency (wrk -t2 -c16) of benchmarks/api.R's endpoints: plain text
   (/parity; and again with a random query in every request, which a worker has no kept
   arguments for: docs/workers.md, "Call keys"), a 20-row JSON data frame (/frame), the
   example app's future() endpoint (/parity-future) and a model (/predict: predict() of an
   lm on a 10-row JSON body), served by plumber (pr_run) and by `plumbline serve --workers
   2`, both up at once and measured in turns, --rounds times; the median round is reported,
   with the load average before each run and the CPU each plumbline process spent per
   request.
2. Memory: benchmarks/model_app.R holds a 500 MB object; `plumbline serve --workers 8` with
   preloading (the default; also with `--refork-after-full-gc off`) and without, RSS and PSS
   (/proc/PID/smaps_rollup) of every worker once each has run a full garbage collection and
   served for a while (the steady state: R's collector writes to every R object it keeps);
   and how fast a killed worker is replaced.
3. Start to ready: `plumbline serve` of the example app until /readyz answers 200.
Writes a Markdown report and ends with a one-line verdict on issue 11's targets.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from plumbline.platform.local.ports import listen_port

HERE = Path(__file__).resolve().parent
API = HERE / "api.R"
MODEL_APP = HERE / "model_app.R"
EXAMPLE_APP = HERE.parent / "examples" / "plumber-on-k8s" / "plumber.R"
PLUMBLINE = Path(sys.executable).with_name("plumbline")
ROWS = [{"wt": 2.5 + i / 10, "hp": 100 + 10 * i} for i in range(10)]
ENDPOINTS = (  # key, label, method, path ({N}: a random number each request), body
    ("plain", "`GET /parity?int=7` (text)", "GET", "/parity?int=7", None),
    # Every request a query not sent before: a worker has no kept arguments for it
    # (docs/workers.md, "Call keys").
    ("plain-new", "`GET /parity?int=N`, N new each request (text)", "GET", "/parity?int={N}", None),
    ("json", "`GET /frame?n=20` (JSON, 20-row data frame)", "GET", "/frame?n=20", None),
    (
        "future",
        "`GET /parity-future?int=7` (text, `future()`)",
        "GET",
        "/parity-future?int=7",
        None,
    ),
    (
        "model",
        "`POST /predict` (`predict()` of an lm, 10-row JSON body)",
        "POST",
        "/predict",
        json.dumps({"rows": ROWS}),
    ),
)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
_SETTLE_SECONDS = 12.0


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(url: str, timeout: float = 120) -> float:
    """Seconds until url answered 200."""
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        try:
            if get(url, 2)[0] == 200:
                return time.monotonic() - started
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{url} never answered 200")


def start_plumber(port: int) -> subprocess.Popen:
    code = (
        "suppressMessages({library(plumber); library(promises); library(future)}); "
        "future::plan('multiprocess'); "
        f"pr('{API.name}') |> pr_run(host='127.0.0.1', port={port}, docs=FALSE)"
    )
    return subprocess.Popen(
        ["Rscript", "-e", code],
        cwd=API.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def start_plumbline(app: Path, port: int, workers: int, *flags: str, log=None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(PLUMBLINE),
            "serve",
            str(app),
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--timeout",
            "60",
            *flags,
        ],
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def children(pid: int) -> list[tuple[int, str]]:
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in out.splitlines()]


def r_processes(server_pid: int) -> tuple[int | None, list[int]]:
    """(zygote pid or None, worker pids) of a `plumbline serve` process."""
    zygote, workers = None, []
    for pid, args in children(server_pid):
        if "plumbline.runtime.r.zygote" in args:
            zygote = pid
            workers += [child for child, _ in children(pid)]
        elif "plumbline.runtime.r.worker" in args:
            workers.append(pid)
    return zygote, workers


def cpu_ticks(pid: int, reaped: bool = False) -> int:
    """CPU clock ticks of a process (user + system); reaped: of its children it has waited
    for instead."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    first = 13 if reaped else 11
    return int(fields[first]) + int(fields[first + 1])


def worker_ticks(server_pid: int) -> int:
    """CPU ticks of a server's R workers so far, those replaced meanwhile included (a
    zygote's workers are its children: it reaps them)."""
    zygote, workers = r_processes(server_pid)
    return sum(cpu_ticks(pid) for pid in workers) + (
        cpu_ticks(zygote, reaped=True) if zygote else 0
    )


def metric_count(base: str, sample: str) -> int:
    """One sample of the server's /metrics, e.g. 'plumbline_workers{state="idle"}' (0 if absent)."""
    text = get(base + "/metrics")[1].decode()
    m = re.search(rf"^{re.escape(sample)} ([\d.]+)", text, re.M)
    return int(float(m.group(1))) if m else 0


def wrk(url: str, duration: int, body: str | None, watch: dict[str, Callable[[], int]]) -> dict:
    """wrk -t2 -c16 on url; with the CPU seconds per request of each part in watch (a
    function giving its CPU ticks so far)."""
    args = ["wrk", "-t2", "-c16", f"-d{duration}s", "--latency"]
    script = None
    lua = ""
    if body is not None:
        lua = (
            f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    if "{N}" in url:  # each wrk thread draws its own random numbers
        split = urllib.parse.urlsplit(url)
        before, _, after = f"{split.path}?{split.query}".partition("{N}")
        lua += (
            "local threads = 0\n"
            "function setup(thread) threads = threads + 1; thread:set('id', threads) end\n"
            "function init(args) math.randomseed(os.time() * 100 + id) end\n"
            f"function request() return wrk.format(nil, {json.dumps(before)} .. "
            f"math.random(1, 1000000000) .. {json.dumps(after)}) end\n"
        )
        url = url.replace("{N}", "0")
    if lua:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(lua)
        script.close()
        args += ["-s", script.name]
    load = os.getloadavg()[0]
    before = {name: ticks() for name, ticks in watch.items()}
    try:
        out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    finally:
        if script is not None:
            os.unlink(script.name)
    spent = {name: ticks() - before[name] for name, ticks in watch.items()}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M)
        lat[pct] = float(m.group(1)) * _UNITS[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = rps * duration
    cpu_us = {name: t / os.sysconf("SC_CLK_TCK") / requests * 1e6 for name, t in spent.items()}
    return {
        "rps": rps,
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "load": load,
        "non2xx": int(errors.group(1)) if errors else 0,
        "cpu_us": cpu_us,
    }


def check_same_answer(plumber: str, plumbline: str) -> None:
    for _, _, method, path, body in ENDPOINTS:
        answers = []
        for base in (plumber, plumbline):
            request = urllib.request.Request(
                base + path.replace("{N}", "12345"),
                method=method,
                data=body.encode() if body else None,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as r:
                answers.append((r.status, r.headers["Content-Type"], r.read()))
        assert answers[0] == answers[1], (path, answers)


def throughput(duration: int, rounds: int) -> dict:
    plumber_port, plumbline_port = listen_port(), listen_port()
    plumber = start_plumber(plumber_port)
    plumbline = start_plumbline(API, plumbline_port, 2)
    try:
        bases = {
            "plumber": f"http://127.0.0.1:{plumber_port}",
            "plumbline": f"http://127.0.0.1:{plumbline_port}",
        }
        wait_ready(bases["plumber"] + "/parity?int=1")
        wait_ready(bases["plumbline"] + "/readyz")
        check_same_answer(bases["plumber"], bases["plumbline"])
        watch: dict[str, dict[str, Callable[[], int]]] = {
            "plumbline": {
                "front": lambda: cpu_ticks(plumbline.pid),
                "workers": lambda: worker_ticks(plumbline.pid),
            },
            "plumber": {},
        }
        for _, _, _, path, body in ENDPOINTS:  # warm-up: R's JIT, caches
            for server in bases:
                wrk(bases[server] + path, 1, body, {})
        runs: dict = {key: {"plumber": [], "plumbline": []} for key, *_ in ENDPOINTS}
        for _ in range(rounds):
            for key, _, _, path, body in ENDPOINTS:
                for server in ("plumber", "plumbline"):
                    run = wrk(bases[server] + path, duration, body, watch[server])
                    runs[key][server].append(run)
                    print(
                        f"{key:7s} {server:9s} {run['rps']:7.0f} req/s  p99 "
                        f"{run['p99_ms']:7.1f} ms  (load {run['load']:.2f})",
                        file=sys.stderr,
                        flush=True,
                    )
        runs["reforked"] = metric_count(
            bases["plumbline"], 'plumbline_worker_restarts_total{reason="full_gc"}'
        )
        return runs
    finally:
        stop(plumber)
        stop(plumbline)


def median_run(runs: list[dict]) -> dict:
    """The run with the median requests/s (its own p50/p99 and CPU)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    return ordered[len(ordered) // 2]


def smaps(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            found[parts[0].rstrip(":")] = int(parts[1])
    return found


def idle_workers(base: str) -> int:
    return metric_count(base, 'plumbline_workers{state="idle"}')


def _memory_row(pids: list[int], zygote: int | None) -> dict:
    rows = [smaps(pid) for pid in pids]
    return {
        "workers": len(pids),
        "rss_mib": statistics.mean(r["Rss"] for r in rows) / 1024,
        "pss_mib": statistics.mean(r["Pss"] for r in rows) / 1024,
        "private_mib": statistics.mean(r["Private_Dirty"] + r["Private_Clean"] for r in rows)
        / 1024,
        "pss_total_mib": sum(r["Pss"] for r in rows) / 1024,
        "zygote_pss_mib": smaps(zygote)["Pss"] / 1024 if zygote else None,
    }


def memory(preload: bool, refork: bool = True, workers: int = 8, requests: int = 12000) -> dict:
    """Memory of the workers just after start, then in the steady state: every worker ran a
    full garbage collection (as R does every hundred or so collections, and whenever its heap
    grows), then requests were served for `_SETTLE_SECONDS` (past the pool's 10 s minimum
    age for re-forking a worker after a full collection), then `requests` more (each worker's
    R fills its heap up to its collection trigger, ~1,000 requests of this app)."""
    port = listen_port()
    base = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile("w+", suffix=".log")
    # The server writes through a descriptor of its own that appends: sharing `log`'s, each
    # seek and read of `log` below would move where the server writes next, and a line
    # written during a read would land over earlier ones (a lost "worker_died").
    with open(log.name, "ab") as server_log:
        server = start_plumbline(
            MODEL_APP,
            port,
            workers,
            "--preload",
            "on" if preload else "off",
            "--refork-after-full-gc",
            "on" if refork else "off",
            "--access-log",  # off: the log is read again and again below; keep it short
            "off",
            log=server_log,
        )
    try:
        wait_ready(base + "/readyz", timeout=300)
        deadline = time.monotonic() + 300
        while idle_workers(base) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        zygote, pids = settled_workers(server.pid, base, workers)  # the first one swapped
        fresh = _memory_row(pids, zygote)

        def predict(_) -> int:
            return get(base + "/predict?x=3")[0]

        # One full garbage collection in every worker (each request holds its worker for a
        # second, so the 8 concurrent ones reach 8 different workers), then more requests.
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            statuses = list(pool.map(lambda _: get(base + "/gc", 60)[0], range(workers)))
            settle_until = time.monotonic() + _SETTLE_SECONDS
            while time.monotonic() < settle_until:
                statuses += list(pool.map(predict, range(400)))
            statuses += list(pool.map(predict, range(requests)))
        assert set(statuses) == {200}, statuses
        zygote, steady_pids = settled_workers(server.pid, base, workers)
        events = _json_lines(log)
        result = {
            "fresh": fresh,
            **_memory_row(steady_pids, zygote),
            "requests": len(statuses),
            "reforked": sum(e.get("event") == "worker_full_gc" for e in events),
        }
        if preload:
            result["replace_ms"] = replacement_ms(base, steady_pids[0], log, workers)
        return result
    finally:
        stop(server)
        log.close()


def settled_workers(server_pid: int, base: str, workers: int) -> tuple[int | None, list[int]]:
    """r_processes() once no re-fork is under way: `workers` idle workers, the same pids half
    a second apart (a worker replaced after a full collection lives on until its successor
    is ready; measured or killed then, it would be counted twice, or stopped, not dead)."""
    deadline = time.monotonic() + 60
    last = None
    while time.monotonic() < deadline:
        found = r_processes(server_pid)
        if found == last and len(found[1]) == workers and idle_workers(base) == workers:
            return found
        last = found
        time.sleep(0.5)
    raise RuntimeError(f"the workers did not settle: {last}")


def replacement_ms(base: str, victim: int, log, workers: int) -> float:
    """Milliseconds from a worker's death to its successor's "ready" (from the pool's log)."""
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = _json_lines(log)
        died = [e for e in events if e.get("event") == "worker_died" and e.get("pid") == victim]
        if died:
            ready = [
                e
                for e in events
                if e.get("event") == "worker_ready" and e["time"] >= died[0]["time"]
            ]
            if ready and idle_workers(base) == workers:
                return (_stamp(ready[0]) - _stamp(died[0])).total_seconds() * 1000
        time.sleep(0.05)
    victims = [e for e in _json_lines(log) if e.get("pid") == victim]
    raise RuntimeError(f"the killed worker {victim} was not replaced; its events: {victims}")


def _json_lines(log) -> list[dict]:
    """The server's JSON log lines so far (R's own output shares the stream and may cut
    into a line: those are skipped)."""
    log.seek(0)
    events = []
    for line in log:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _stamp(event: dict) -> datetime.datetime:
    return datetime.datetime.fromisoformat(event["time"].rstrip("Z"))


def start_to_ready(preload: bool, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        port = listen_port()
        server = start_plumbline(EXAMPLE_APP, port, 2, "--preload", "on" if preload else "off")
        try:
            times.append(wait_ready(f"http://127.0.0.1:{port}/readyz"))
        finally:
            stop(server)
    return statistics.median(times)


# What follows this line in the output file is written by hand (pool_microbench.py's figures,
# the targets): a new run keeps it.
HAND_WRITTEN = "<!-- written by hand below: compare.py keeps what follows -->"


def report(r: dict, args: argparse.Namespace) -> tuple[str, list[str]]:
    misses = []
    rows, cpu_rows, loads = [], [], []
    for key, label, *_ in ENDPOINTS:
        p, q = median_run(r["runs"][key]["plumber"]), median_run(r["runs"][key]["plumbline"])
        ratio, tail = q["rps"] / p["rps"], q["p99_ms"] / p["p99_ms"]
        rows.append(
            f"| {label} | {p['rps']:.0f} | {q['rps']:.0f} | **{ratio:.1f}×** "
            f"| {p['p50_ms']:.1f} / {p['p99_ms']:.1f} "
            f"| {q['p50_ms']:.2f} / {q['p99_ms']:.2f} | {tail:.2f} |"
        )
        cpu = q["cpu_us"]
        cpu_rows.append(f"| {label} | {cpu['front']:.0f} | {cpu['workers']:.0f} |")
        loads += [run["load"] for server in r["runs"][key].values() for run in server]
        target = {"plain": 10, "json": 6}.get(key)
        if target and ratio < target:
            misses.append(f"{key} {ratio:.1f}x < {target}x")
        if target and tail > 1 / 3:
            misses.append(f"{key} p99 {tail:.2f} of plumber's > 1/3")
    all_runs = "\n".join(
        f"| {key} | {server} | "
        + ", ".join(f"{run['rps']:.0f}" for run in runs)
        + " | "
        + ", ".join(f"{run['p99_ms']:.1f}" for run in runs)
        + " |"
        for key, *_ in ENDPOINTS
        for server, runs in r["runs"][key].items()
    )
    pre, spawn = r["memory"]["preload"], r["memory"]["spawn"]
    kept = r["memory"]["preload_no_refork"]
    fresh = pre["fresh"]
    share = pre["pss_total_mib"] / spawn["pss_mib"]
    kept_share = kept["pss_total_mib"] / spawn["pss_mib"]
    fresh_share = fresh["pss_total_mib"] / spawn["pss_mib"]
    if share > 1.5:
        misses.append(f"8 preloaded workers' PSS {share:.2f}x one worker's > 1.5x")
    if pre["replace_ms"] > 200:
        misses.append(f"worker replaced in {pre['replace_ms']:.0f} ms > 200 ms")
    if r["ready"]["preload"] > 1.5:
        misses.append(f"start to ready {r['ready']['preload']:.2f} s > 1.5 s")
    non2xx = sum(
        run["non2xx"] for key, *_ in ENDPOINTS for s in r["runs"][key].values() for run in s
    )
    cmd = (
        f".venv/bin/python benchmarks/compare.py --duration {args.duration} --rounds {args.rounds}"
    )
    text = f"""# Benchmarks

plumbline against real plumber 1.2.1 (Debian `r-cran-plumber`, R 4.2.2) on the same
plumber.R ([benchmarks/api.R](../benchmarks/api.R)), on the same machine in the same run.
Run on {datetime.date.today().isoformat()}, {os.cpu_count()} cores; the load average (1 min)
before the runs ranged from {min(loads):.2f} to {max(loads):.2f} (other work on the machine
inflates every number, plumbline's more than plumber's: it uses both cores).

Reproduce every number below:

```sh
./scripts/install.sh && {cmd}
```

## Throughput and latency (wrk -t2 -c16, {args.duration} s per run, median of {args.rounds} rounds)

plumber: one R process (`pr_run`, `future::plan("multiprocess")`, which is sequential in
future 1.31). plumbline: `plumbline serve --workers 2` (preloading on, the default). Both
servers are up for the whole run and measured in turns; wrk runs on the same 2 cores.

| endpoint | plumber req/s | plumbline req/s | speed-up | plumber p50 / p99 ms | plumbline p50 / p99 ms | p99 ratio |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Non-2xx responses: {non2xx}. Every endpoint's status, Content-Type and body were checked equal
between the two servers before measuring.

CPU per request in plumbline's processes during those runs (µs; front = uvicorn, routing,
logs, metrics and the pool; workers = R and the worker's Python, workers replaced during a
run included: {r["runs"]["reforked"]} were re-forked after a full garbage collection in R over
all the runs, see the memory section):

| endpoint | front | workers |
|---|---:|---:|
{chr(10).join(cpu_rows)}

Every run (req/s; p99 ms):

| endpoint | server | req/s | p99 ms |
|---|---|---|---|
{all_runs}

## Memory per worker: an app holding a 500 MB object, 8 workers

[benchmarks/model_app.R](../benchmarks/model_app.R). PSS (proportional set size, from
`/proc/PID/smaps_rollup`) counts a page shared by n processes as 1/n in each.

| mode, when | RSS per worker | PSS per worker | private per worker | PSS of all 8 workers | zygote PSS |
|---|---:|---:|---:|---:|---:|
| preloading, just started | {fresh["rss_mib"]:.0f} MiB | {fresh["pss_mib"]:.0f} MiB | {fresh["private_mib"]:.0f} MiB | {fresh["pss_total_mib"]:.0f} MiB | {fresh["zygote_pss_mib"]:.0f} MiB |
| preloading, steady state | {pre["rss_mib"]:.0f} MiB | {pre["pss_mib"]:.0f} MiB | {pre["private_mib"]:.0f} MiB | {pre["pss_total_mib"]:.0f} MiB | {pre["zygote_pss_mib"]:.0f} MiB |
| preloading, `--refork-after-full-gc off`, steady state | {kept["rss_mib"]:.0f} MiB | {kept["pss_mib"]:.0f} MiB | {kept["private_mib"]:.0f} MiB | {kept["pss_total_mib"]:.0f} MiB | {kept["zygote_pss_mib"]:.0f} MiB |
| `--preload off`, steady state | {spawn["rss_mib"]:.0f} MiB | {spawn["pss_mib"]:.0f} MiB | {spawn["private_mib"]:.0f} MiB | {spawn["pss_total_mib"]:.0f} MiB | — |

Steady state: every worker ran a full garbage collection, then {pre["requests"]} requests were
served over at least {_SETTLE_SECONDS:.0f} s. The model stays shared; what becomes private in a
forked worker is R's heap: between collections R fills its heap up to its collection trigger,
writing to the free slots of shared pages (~40 MiB with plumber loaded, reached after about
1,000 requests of this app), and a full collection writes a mark into every live R object
(about 607,000 objects with plumber loaded), ~30 MiB more. With `--refork-after-full-gc` (the
default) a worker in which R ran a full collection is replaced by a fresh fork once it has
served 10 s ({pre["reforked"]} of {pre["workers"]} were, in this run); off, every worker keeps
its copy. Python's share is about 3 MiB ([workers.md](workers.md), "What becomes private in a
forked worker").

8 preloaded workers together hold {share:.2f}× the PSS of one worker that loads the app
itself ({kept_share:.2f}× with `--refork-after-full-gc off`, {fresh_share:.2f}× just after
start). A worker killed with SIGKILL was replaced (death noticed to successor ready, forked
from the zygote) in {pre["replace_ms"]:.0f} ms.

## Start to ready

`plumbline serve examples/plumber-on-k8s/plumber.R --workers 2` until `/readyz` answers 200
(median of 5): **{r["ready"]["preload"]:.2f} s** with preloading, {r["ready"]["spawn"]:.2f} s
with `--preload off`.

## Where the difference comes from

- plumber serves one request at a time in one R process and runs its whole pipeline (an R6
  response, the Rook environment, filters, a promise domain) per request; a body wrapped in
  `future()` under a sequential plan also pays for the future and for plumber's promise
  machinery. plumbline runs `future()` inline (`--inline-futures`, on by default).
- Plain endpoints (no `req`/`res` arguments, plumber's default filters, serializer and error
  handler) are called directly: the worker's Python routes and parses the query string as
  plumber would, and R runs only the function and its serializer (`runtime/r/direct.R`; see
  docs/architecture.md). Everything else runs plumber's own pipeline. Responses stay
  byte-identical (tests/compat compares them with real plumber).
- A worker keeps the R arguments it made for a request's method, path, query and content
  type, and calls R with them again for the next such request without reading its header,
  routing or parsing its query (docs/workers.md, "Call keys"). wrk sends the same URL every
  time; the `N new each request` row sends a query never sent before in every request, the
  cost without kept arguments.
- plumber's JSON serializers resolve jsonlite's `toJSON()` arguments once per endpoint, and
  plain values (vectors, lists and data frames of them) are written by jsonlite's own C
  functions without `asJSON()`'s S4 dispatch (`runtime/r/json_writer.R`: same bytes; a 20-row
  data frame in ~55 µs of R instead of ~330 µs; see docs/workers.md).
- HTTP parsing, health, metrics and logs are in Python (uvicorn with httptools), outside R;
  a response's head and body leave in one write (one TCP segment; `runtime/front/one_write.py`).
- Under load the pool pipelines: a worker busy with a fast route (under 5 ms in R on
  average) is written its next request and starts it the moment it has answered, instead
  of sleeping until the front has read the answer and sent another; on this 2-core VM a
  wake-up across CPUs costs about as much as a plain endpoint's R (below: "Pipelining").
- `benchmarks/pool_microbench.py` measures the CPU one request costs in the worker against
  the same R run in a plain R process, back to back and served over a pipe one request at a
  time: a worker waits on its pipe between requests, and on this machine R runs slower
  after any wait (about 80 µs of a 20-row data frame's ~400 µs), in a plain R server as in a
  worker. The pool gives a request to the worker that went idle last, whose caches are the
  warmest. Under load it sets the worker against the same R under the same load (plain R
  processes served over pipes at once, two requests in flight each), best against best
  and as the median of 40 short blocks measured in turns, with a 95% interval for it.
- The front's CPU per request grows with the time a worker takes (fewer events handled per
  wake-up of its event loop), not with the size of the answer: that is why the JSON and
  model rows cost the front more than the plain one.
"""
    return text, misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per endpoint and server")
    parser.add_argument("--output", default=str(HERE.parent / "docs/benchmarks.md"))
    parser.add_argument(
        "--only",
        choices=("throughput", "memory", "ready"),
        help="run only this part and print its results as JSON (no report)",
    )
    args = parser.parse_args()
    parts = {
        "runs": lambda: throughput(args.duration, args.rounds),
        # Before memory: the memory runs leave the kernel reclaiming 5 GB for a while.
        "ready": lambda: {"preload": start_to_ready(True), "spawn": start_to_ready(False)},
        "memory": lambda: {
            "preload": memory(True),
            "preload_no_refork": memory(True, refork=False),
            "spawn": memory(False),
        },
    }
    if args.only:
        key = {"throughput": "runs"}.get(args.only, args.only)
        print(json.dumps({key: parts[key]()}, indent=2))
        return 0
    results = {key: run() for key, run in parts.items()}
    text, misses = report(results, args)
    output = Path(args.output)
    kept = output.read_text().partition(HAND_WRITTEN)[2] if output.exists() else ""
    output.write_text(text + (f"\n{HAND_WRITTEN}{kept}" if kept else ""))
    print(text)
    print("verdict:", "all targets met" if not misses else "targets NOT met: " + "; ".join(misses))
    return 0 if not misses else 1


if __name__ == "__main__":
    raise SystemExit(main())
