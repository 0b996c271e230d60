"""What the front door's limits cost per request: plumbline serve with its connection layer
(runtime/front/connection.py) against the same server with uvicorn's stock httptools protocol.

    .venv/bin/python benchmarks/front_overhead.py [--rounds 5] [--seconds 5] [--connections 8]

Both servers run the example app side by side; wrk loads one, then the other, in turns, on
/livez (answered in Python: the front's whole cost) and /parity?int=7 (through R). The
measure is the CPU time of the server process alone (not the R workers, not wrk) per
request, best of the rounds: on a shared machine wall-clock throughput also counts waiting
for a core, CPU time does not. Requests/s are printed too.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from plumbline.platform.local.ports import listen_port

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "plumber-on-k8s" / "plumber.R"
PATHS = ("/livez", "/parity?int=7")


def serve(variant: str, port: int) -> None:
    """Run plumbline serve in this process; `stock` swaps in uvicorn's own protocol."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from plumbline import cli
    from plumbline.runtime.front import connection  # the server imports protocol_class from it

    if variant == "stock":
        connection.protocol_class = lambda *args: HttpToolsProtocol  # type: ignore[assignment]
    sys.exit(
        cli.main(
            [
                "serve",
                str(EXAMPLE),
                "--port",
                str(port),
                "--workers",
                "2",
                "--access-log",
                "off",
                "--log-level",
                "warning",
            ]
        )
    )


def start(variant: str) -> tuple[subprocess.Popen, int]:
    port = listen_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", variant, "--port", str(port)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{variant} server did not start")


def load(port: int, path: str, seconds: int, connections: int, pid: int) -> tuple[int, float]:
    """Requests wrk completed and the server process's CPU seconds meanwhile."""
    process = psutil.Process(pid)
    before = sum(process.cpu_times()[:2])
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = sum(process.cpu_times()[:2]) - before
    match = re.search(r"(\d+) requests in", out)
    if not match or "Non-2xx" in out:
        raise SystemExit(f"wrk failed:\n{out}")
    return int(match.group(1)), cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--serve", choices=("stock", "limited"))
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    servers = {variant: start(variant) for variant in ("stock", "limited")}
    try:
        print(f"load average {psutil.getloadavg()}")
        best: dict[tuple[str, str], tuple[float, float]] = {}
        for round_ in range(args.rounds):
            for path in PATHS:
                for variant, (proc, port) in servers.items():
                    count, cpu = load(port, path, args.seconds, args.connections, proc.pid)
                    per_request, rate = cpu / count * 1e6, count / args.seconds
                    print(
                        f"round {round_ + 1} {path:15} {variant:8} {per_request:7.1f} us "
                        f"CPU/request {rate:8.0f} req/s",
                        flush=True,
                    )
                    key = (path, variant)
                    if key not in best or per_request < best[key][0]:
                        best[key] = (per_request, rate)
        print(f"load average {psutil.getloadavg()}")
        for path in PATHS:
            stock, limited = best[(path, "stock")], best[(path, "limited")]
            print(
                f"{path:15} best CPU/request: stock {stock[0]:.1f} us, limited "
                f"{limited[0]:.1f} us ({(limited[0] / stock[0] - 1) * 100:+.1f}%)"
            )
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            proc.wait(60)


if __name__ == "__main__":
    main()
