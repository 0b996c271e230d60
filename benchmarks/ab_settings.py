"""Two (or more) settings of `plumbline serve` side by side, measured in turns.

    .venv/bin/python benchmarks/ab_settings.py 'pipeline=off' 'pipeline=on' \
        [--paths '/parity?int=7,/frame?n=20'] [--rounds 5] [--duration 5]

Each argument is one server: comma-separated `setting=value` pairs given as its flags
(`pipeline=off` is `--pipeline off`; '' is the defaults). All of them serve benchmarks/api.R
with 2 workers at once, and wrk (-t2 -c16, compare.py's runs) loads one, then the next,
round after round, so a machine whose speed drifts during the run (a shared VM's does)
treats them alike. Prints requests/s, p99, and CPU per request of the front and of the
workers for every run, then the median requests/s of each.
"""

from __future__ import annotations

import argparse
import statistics

from compare import API, cpu_ticks, start_plumbline, stop, wait_ready, worker_ticks, wrk

from plumbline.platform.local.ports import listen_port


def flags(variant: str) -> list[str]:
    out = []
    for pair in filter(None, variant.split(",")):
        name, _, value = pair.partition("=")
        out += [f"--{name.strip()}", value.strip()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="setting=value[,setting=value...] per server")
    parser.add_argument("--paths", default="/parity?int=7,/frame?n=20")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    args = parser.parse_args()
    servers = []
    try:
        for variant in args.variants:
            port = listen_port()
            servers.append((variant, start_plumbline(API, port, 2, *flags(variant)), port))
        for _, _, port in servers:
            wait_ready(f"http://127.0.0.1:{port}/readyz")
        rates: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for path in args.paths.split(","):
                for variant, server, port in servers:
                    watch = {
                        "front": lambda pid=server.pid: cpu_ticks(pid),
                        "workers": lambda pid=server.pid: worker_ticks(pid),
                    }
                    run = wrk(f"http://127.0.0.1:{port}{path}", args.duration, None, watch)
                    rates.setdefault((path, variant), []).append(run["rps"])
                    print(
                        f"{variant or 'defaults':24} {path:16} {run['rps']:7.0f} req/s  p99 "
                        f"{run['p99_ms']:6.2f} ms  front {run['cpu_us']['front']:4.0f} us  "
                        f"workers {run['cpu_us']['workers']:5.0f} us"
                        + (f"  non-2xx {run['non2xx']}" if run["non2xx"] else ""),
                        flush=True,
                    )
        print()
        for (path, variant), values in rates.items():
            print(f"median {variant or 'defaults':24} {path:16} {statistics.median(values):7.0f}")
    finally:
        for _, server, _ in servers:
            stop(server)


if __name__ == "__main__":
    main()
