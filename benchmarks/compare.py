"""plumbline against real plumber 1.2.1 on the same plumber.R, same machine, same run.

    .venv/bin/python benchmarks/compare.py [--duration 10] [--output docs/benchmarks.md]

Measures with wrk (16 connections) requests/s and p50/p99 latency for a text endpoint
(/parity) and a JSON endpoint (/summary), then the wall time of 8 concurrent /wait calls
(5 s each), and the memory of idle R workers. Writes a Markdown report.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
API = HERE / "api.R"
PLUMBLINE = Path(sys.executable).with_name("plumbline")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} never answered 200")


def start_plumber(port: int) -> subprocess.Popen:
    code = ("suppressMessages({library(plumber); library(promises); library(future)}); "
            "future::plan('multiprocess'); "
            f"pr('{API.name}') |> pr_run(host='127.0.0.1', port={port}, docs=FALSE)")
    return subprocess.Popen(["Rscript", "-e", code], cwd=API.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def start_plumbline(port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(PLUMBLINE), "serve", str(API), "--port", str(port), "--workers", str(workers),
         "--attach", "future", "--timeout", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, duration: int) -> dict:
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M)
        lat[pct] = float(m.group(1)) * _UNITS[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": lat["50"], "p99_ms": lat["99"],
            "non2xx": int(errors.group(1)) if errors else 0}


def concurrent_waits(base: str, n: int) -> float:
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(lambda _: urllib.request.urlopen(base + "/wait", timeout=120).status,
                              range(n)))
    assert codes == [200] * n, codes
    return time.monotonic() - start


def worker_rss_mib(server_pid: int) -> list[float]:
    """Resident memory of each R worker (children of the server embedding R)."""
    out = subprocess.run(["ps", "-o", "pid=,rss=,args=", "--ppid", str(server_pid)],
                         capture_output=True, text=True).stdout
    return [int(line.split()[1]) / 1024 for line in out.splitlines()
            if "plumbline.runtime.worker" in line]


def run(duration: int) -> dict:
    results: dict = {}
    port = free_port()
    plumber = start_plumber(port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/parity?int=1")
        results["plumber"] = {
            "parity": wrk(base + "/parity?int=7", duration),
            "summary": wrk(base + "/summary?n=20", duration),
            "wait8": concurrent_waits(base, 8),
        }
    finally:
        stop(plumber)
    for workers in (2, 8):
        port = free_port()
        server = start_plumbline(port, workers)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base + "/readyz")
            wait_ready(base + "/parity?int=1")
            if workers == 2:
                time.sleep(2)  # let the second worker finish loading
                results["plumbline2"] = {
                    "parity": wrk(base + "/parity?int=7", duration),
                    "summary": wrk(base + "/summary?n=20", duration),
                    "rss": worker_rss_mib(server.pid),
                }
            else:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and len(worker_rss_mib(server.pid)) < 8:
                    time.sleep(0.5)
                time.sleep(3)
                results["plumbline8"] = {"wait8": concurrent_waits(base, 8),
                                         "rss": worker_rss_mib(server.pid)}
        finally:
            stop(server)
    return results


def report(r: dict, duration: int) -> str:
    p, q = r["plumber"], r["plumbline2"]
    rows = []
    for ep, label in (("parity", "`/parity?int=7` (text, future)"), ("summary", "`/summary?n=20` (JSON)")):
        ratio = q[ep]["rps"] / p[ep]["rps"]
        rows.append(f"| {label} | {p[ep]['rps']:.0f} | {q[ep]['rps']:.0f} | **{ratio:.1f}×** "
                    f"| {p[ep]['p50_ms']:.1f} / {p[ep]['p99_ms']:.1f} "
                    f"| {q[ep]['p50_ms']:.2f} / {q[ep]['p99_ms']:.2f} |")
    rss = r["plumbline8"]["rss"] or r["plumbline2"]["rss"]
    mean_rss = sum(rss) / len(rss) if rss else float("nan")
    cpu = os.cpu_count()
    return f"""# Benchmarks

plumbline against real plumber 1.2.1 (Debian `r-cran-plumber`, R 4.2.2) on the same
plumber.R ([benchmarks/api.R](../benchmarks/api.R)), on the same machine in the same run.
Run on {datetime.date.today().isoformat()}, {cpu} cores.

Reproduce:

```sh
./scripts/install.sh && .venv/bin/python benchmarks/compare.py --duration {duration}
```

## Throughput and latency (wrk, 16 connections, {duration} s each)

plumber: one R process (`pr_run`, `future::plan("multiprocess")`, which is sequential in
future 1.31). plumbline: `plumbline serve --workers 2`.

| endpoint | plumber req/s | plumbline req/s | speed-up | plumber p50 / p99 ms | plumbline p50 / p99 ms |
|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Non-2xx responses: plumber {p['parity']['non2xx'] + p['summary']['non2xx']},
plumbline {q['parity']['non2xx'] + q['summary']['non2xx']}.

## Concurrency: 8 simultaneous `/wait` (each sleeps 5 s)

| server | wall time |
|---|---:|
| plumber | {p['wait8']:.1f} s |
| plumbline, `--workers 8` | {r['plumbline8']['wait8']:.1f} s |

## Where the difference comes from

- plumber serves one request at a time in one R process, and a body wrapped in `future()`
  under a sequential plan pays for the future and for plumber's promise machinery (the
  `later` loop) on every call. plumbline runs `future()` inline in its workers
  (`--inline-futures`, on by default; concurrency comes from the pool's processes).
- For apps with only plumber's default filters and no hooks, plumbline runs plumber's own
  filters, parsers, argument matching, serializer and error handler directly
  (`runtime/fastpath.R`) instead of through plumber's step runner; responses stay
  byte-identical (tests/compat checks them against real plumber).
- HTTP parsing, health, metrics and logs are in Python (uvicorn with httptools), outside R.

## Memory

Resident memory per idle R worker (R + plumber + the app loaded): {mean_rss:.0f} MiB
(measured over {len(rss)} workers).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--output", default=str(HERE.parent / "docs/benchmarks.md"))
    args = parser.parse_args()
    results = run(args.duration)
    text = report(results, args.duration)
    Path(args.output).write_text(text)
    print(text)
    ok = (results["plumbline2"]["parity"]["rps"] >= 10 * results["plumber"]["parity"]["rps"]
          and results["plumbline8"]["wait8"] < 6)
    print("verdict:", "targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
