"""Two (or more) settings of `plumbline serve` side by side, measured in turns.

    .venv/bin/python benchmarks/ab_settings.py 'pipeline=off' 'pipeline=on' \
        [--paths '/parity?int=7,/frame?n=20'] [--rounds 5] [--duration 5]

Each argument is one server: comma-separated `setting=value` pairs set as PLUMBLINE_*
environment variables (`pipeline=off` is PLUMBLINE_PIPELINE=off; '' is the defaults). All
of them serve benchmarks/api.R with 2 workers at once, and wrk (-t2 -c16) loads one, then the
next, round after round, so a machine whose speed drifts during the run (a shared VM's does)
treats them alike. Prints requests/s, p99, and CPU per request of the front and of the
workers for every run, then the median requests/s of each.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from plumbline.platform.local.ports import listen_port

REPO = Path(__file__).resolve().parents[1]
API = REPO / "benchmarks" / "api.R"


def environment(variant: str) -> dict[str, str]:
    env = dict(os.environ)
    for pair in filter(None, variant.split(",")):
        name, _, value = pair.partition("=")
        env["PLUMBLINE_" + name.strip().upper().replace("-", "_")] = value.strip()
    return env


def start(variant: str, port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "plumbline", "serve", str(API), "--workers", "2"]
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*command, "--port", str(port)], env=environment(variant), stdout=out, stderr=out
        )


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server on port {port} did not become ready")


def cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # a worker replaced during the run
        return 0.0
    return times.user + times.system


def measure(server: subprocess.Popen, port: int, path: str, seconds: int) -> dict:
    front = psutil.Process(server.pid)
    workers = front.children(recursive=True)
    front_before, workers_before = cpu(front), sum(cpu(w) for w in workers)
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    count = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p99": re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1),  # distribution
        "front_us": 1e6 * (cpu(front) - front_before) / count,
        "workers_us": 1e6 * (sum(cpu(w) for w in workers) - workers_before) / count,
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx[^:]*:\s+(\d+)", out)) else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="setting=value[,setting=value...] per server")
    parser.add_argument("--paths", default="/parity?int=7,/frame?n=20")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    args = parser.parse_args()
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    servers = []
    try:
        for number, variant in enumerate(args.variants):
            port = listen_port()
            servers.append((variant, start(variant, port, logs / f"ab-{number}.log"), port))
        for _, _, port in servers:
            wait_ready(port)
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for path in args.paths.split(","):
                for variant, server, port in servers:
                    run = measure(server, port, path, args.duration)
                    results.setdefault((path, variant), []).append(run["rps"])
                    print(
                        f"{variant or 'defaults':24} {path:16} {run['rps']:7.0f} req/s  p99 "
                        f"{run['p99']:>8}  front {run['front_us']:4.0f} us  workers "
                        f"{run['workers_us']:5.0f} us"
                        + (f"  non-2xx {run['non2xx']}" if run["non2xx"] else ""),
                        flush=True,
                    )
        print()
        for (path, variant), rates in results.items():
            print(f"median {variant or 'defaults':24} {path:16} {statistics.median(rates):7.0f}")
    finally:
        for _, server, _ in servers:
            server.terminate()
        for _, server, _ in servers:
            server.wait(30)


if __name__ == "__main__":
    main()
