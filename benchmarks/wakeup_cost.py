"""What waking a process on another CPU costs on this machine, against the same CPU.

plumbline passes every request from its front to a worker and back over pipes: two wake-ups
of another process that plumber's single R process does not pay. On some virtual machines
(a guest booted with halt polling off) a wake-up across vCPUs costs ten times one on the
same vCPU; this measures it. Two processes pass one byte back and forth over two pipes,
pinned to the same CPU and then to two.

    .venv/bin/python benchmarks/wakeup_cost.py
"""

from __future__ import annotations

import argparse
import os
import time


def round_trip_us(child_cpu: int, parent_cpu: int, trips: int) -> float:
    to_child, from_parent = os.pipe()
    to_parent, from_child = os.pipe()
    pid = os.fork()
    if pid == 0:  # the echo: one byte back for each byte in, until the parent closes
        os.close(from_parent)
        os.close(to_parent)
        os.sched_setaffinity(0, {child_cpu})
        while byte := os.read(to_child, 1):
            os.write(from_child, byte)
        os._exit(0)
    os.close(to_child)
    os.close(from_child)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {parent_cpu})
    try:
        started = time.perf_counter()
        for _ in range(trips):
            os.write(from_parent, b"x")
            os.read(to_parent, 1)
        return (time.perf_counter() - started) / trips * 1e6
    finally:
        os.close(from_parent)
        os.waitpid(pid, 0)
        os.close(to_parent)
        os.sched_setaffinity(0, before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=20000, help="round trips per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two CPUs")
    poll = "/sys/module/haltpoll/parameters/guest_halt_poll_ns"
    if os.path.exists(poll):
        with open(poll) as f:
            print(f"guest halt polling: {f.read().strip()} ns")
    for _ in range(args.rounds):
        same = round_trip_us(cpus[0], cpus[0], args.trips)
        other = round_trip_us(cpus[0], cpus[1], args.trips)
        print(f"pipe round trip: {same:6.1f} us on one CPU, {other:6.1f} us across two")


if __name__ == "__main__":
    main()
