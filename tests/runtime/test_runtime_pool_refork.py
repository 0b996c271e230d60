"""Forked workers keep sharing R's heap with the zygote: the bridge's R code is byte-compiled
ahead (no JIT at a worker's first requests), and a worker in which R ran a full garbage
collection (which writes to every R object, un-sharing the whole heap) is replaced by a
fresh fork, at most once per _REFORK_MIN_AGE."""

from __future__ import annotations

import time

import psutil
import pytest

from plumbline.runtime.pool import pool as pool_module
from pool_harness import APPS, running_pool, wait_for

pytestmark = pytest.mark.slow

APP = APPS / "collections" / "plumber.R"
MIB = 1024 * 1024


def private_bytes(pid: int) -> int:
    found = 0
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            found += int(line.split()[1]) * 1024
    return found


def pid_of(harness) -> int:
    response = harness.get("/pid")
    assert response.status == 200
    return int(response.body)


def test_a_worker_whose_R_ran_a_full_collection_is_forked_again(monkeypatch):
    with running_pool(APP, workers=1, timeout=20) as harness:
        harness.wait_until_idle()
        zygote = harness.pool._zygote.pid
        first = pid_of(harness)
        assert harness.get("/full-gc").body == str(first).encode()
        unshared = private_bytes(first)
        # Younger than the minimum age: it keeps serving (the worker looks once a second).
        for _ in range(3):
            time.sleep(0.6)
            assert pid_of(harness) == first
        assert harness.pool.restart_counts["full_gc"] == 0
        monkeypatch.setattr(pool_module, "_REFORK_MIN_AGE", 0.0)

        def replaced():
            time.sleep(0.3)
            pid = pid_of(harness)  # every request answered, during the swap too
            return pid if pid != first else None

        second = wait_for(replaced, timeout=30)
        assert psutil.Process(second).ppid() == zygote
        assert harness.pool.restart_counts["full_gc"] == 1
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"
        # The fresh fork shares what the collection had made private.
        assert unshared > 20 * MIB, unshared
        assert private_bytes(second) < unshared - 15 * MIB


def test_minor_collections_keep_the_worker(monkeypatch):
    monkeypatch.setattr(pool_module, "_REFORK_MIN_AGE", 0.0)
    with running_pool(APP, workers=1, timeout=20) as harness:
        harness.wait_until_idle()
        first = pid_of(harness)
        for _ in range(4):
            assert harness.get("/minor-gc").body == str(first).encode()
            time.sleep(0.6)
        assert pid_of(harness) == first
        assert harness.pool.restart_counts["full_gc"] == 0


@pytest.mark.parametrize("settings", [{"refork_after_full_gc": False}, {"preload": False}])
def test_without_refork_or_preloading_a_full_collection_keeps_the_worker(monkeypatch, settings):
    monkeypatch.setattr(pool_module, "_REFORK_MIN_AGE", 0.0)
    with running_pool(APP, workers=1, timeout=20, **settings) as harness:
        harness.wait_until_idle()
        first = pid_of(harness)
        harness.get("/full-gc")
        for _ in range(3):
            time.sleep(0.6)
            assert pid_of(harness) == first
        assert harness.pool.restart_counts["full_gc"] == 0


def test_a_forked_workers_first_requests_leave_the_heap_shared():
    # Sourced, the bridge was compiled by R's JIT at a worker's first two requests: ~35 MiB
    # of heap pages un-shared (and 30-190 ms) in every fresh fork.
    with running_pool(APP, workers=1, timeout=20) as harness:
        pid = harness.wait_until_idle()[0]["pid"]
        before = private_bytes(pid)
        for _ in range(3):
            assert harness.get("/pid").status == 200
            assert harness.get("/frame").status == 200
        grown = private_bytes(pid) - before
        assert grown < 12 * MIB, grown
