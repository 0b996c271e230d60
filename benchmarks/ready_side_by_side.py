"""Start to ready of two (or more) checkouts of plumbline, measured in turns on one machine.

    .venv/bin/python benchmarks/ready_side_by_side.py --runs 20 /tmp/before /work/main

Each ROOT is a checkout with a .venv of its own in which `python -m plumbline` imports that
checkout (for an older commit: `git archive COMMIT | tar -x -C ROOT`, then
`python3 -m venv --without-pip ROOT/.venv` with two .pth files in its site-packages, one
naming ROOT, first in sorted order, one naming this checkout's .venv site-packages for the
dependencies). Every run serves the example app with `--workers 2` from ROOT and times
`/readyz` answering 200; the checkouts take turns run by run, so a machine whose speed moves
(this one moves by ±0.2 s between runs) moves them alike. Prints each one's median and runs.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import time
import urllib.request

from plumbline.platform.local.ports import listen_port


def start_to_ready(root: str) -> float:
    port = listen_port()
    started = time.monotonic()
    server = subprocess.Popen(
        [
            f"{root}/.venv/bin/python",
            "-m",
            "plumbline",
            "serve",
            f"{root}/examples/plumber-on-k8s/plumber.R",
            "--workers",
            "2",
            "--port",
            str(port),
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - started
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"{root}: serve exited with {server.returncode}") from None
                time.sleep(0.005)
    finally:
        server.send_signal(signal.SIGINT)  # drain, then skip the drain delay
        server.send_signal(signal.SIGINT)
        server.wait(60)
        time.sleep(0.5)  # its processes gone before the next one starts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="+", metavar="ROOT", help="a checkout with its .venv")
    parser.add_argument("--runs", type=int, default=20, help="runs of each (default 20)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {root: [] for root in args.roots}
    for _ in range(args.runs):
        for root in args.roots:
            times[root].append(start_to_ready(root))
    for root, runs in times.items():
        print(
            f"{root}: median {statistics.median(runs):.3f} s;", " ".join(f"{t:.2f}" for t in runs)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
