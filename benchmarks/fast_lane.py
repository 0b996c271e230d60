"""What the fast lane (runtime/front/lane.py) saves: the same server, the same requests, by
the lane and through the ASGI app.

    .venv/bin/python benchmarks/fast_lane.py [--rounds 5] [--duration 5]

One `plumbline serve benchmarks/api.R --workers 2`. wrk (-t2 -c16, as compare.py) loads each
endpoint of compare.py twice in turns, round after round: as it is (the lane takes it) and
with `X-Forwarded-Proto: http`, a header that sends a request through the ASGI app
(uvicorn's proxy-headers middleware reads it) and, from a loopback client, changes nothing
else. Prints requests/s and the CPU per request of the front and of the workers for every
run, then the medians.
"""

from __future__ import annotations

import argparse
import statistics

from compare import API, ENDPOINTS, cpu_ticks, start_plumbline, stop, wait_ready, worker_ticks, wrk

from plumbline.platform.local.ports import listen_port

WAYS = {"lane": (), "asgi": ("X-Forwarded-Proto: http",)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    args = parser.parse_args()
    port = listen_port()
    server = start_plumbline(API, port, 2)
    watch = {"front": lambda: cpu_ticks(server.pid), "workers": lambda: worker_ticks(server.pid)}
    runs: dict[tuple[str, str], list[dict]] = {}
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        for round_ in range(args.rounds):
            for key, _, _, path, body in ENDPOINTS:
                # alternate which way goes first: a machine whose speed drifts favours neither
                for way in list(WAYS)[:: 1 if round_ % 2 == 0 else -1]:
                    url = f"http://127.0.0.1:{port}{path}"
                    run = wrk(url, args.duration, body, watch, WAYS[way])
                    runs.setdefault((key, way), []).append(run)
                    print(
                        f"{key:7} {way:5} {run['rps']:7.0f} req/s  p99 {run['p99_ms']:6.2f} ms  "
                        f"front {run['cpu_us']['front']:4.0f} us  "
                        f"workers {run['cpu_us']['workers']:5.0f} us"
                        + (f"  non-2xx {run['non2xx']}" if run["non2xx"] else ""),
                        flush=True,
                    )
    finally:
        stop(server)
    print("\n| endpoint | lane req/s | ASGI req/s | lane/ASGI | front µs, lane / ASGI |")
    print("|---|---:|---:|---:|---:|")
    for key, label, *_ in ENDPOINTS:
        lane, asgi = runs[(key, "lane")], runs[(key, "asgi")]
        rps = [statistics.median(r["rps"] for r in rs) for rs in (lane, asgi)]
        front = [statistics.median(r["cpu_us"]["front"] for r in rs) for rs in (lane, asgi)]
        print(
            f"| {label} | {rps[0]:,.0f} | {rps[1]:,.0f} | {rps[0] / rps[1]:.2f} | "
            f"{front[0]:.0f} / {front[1]:.0f} |"
        )


if __name__ == "__main__":
    main()
