"""Preloading: R and the app loaded once in a zygote, workers forked from it (copy-on-write)."""

from __future__ import annotations

import logging
import os
import signal
import time

import psutil
import pytest

from plumbline.runtime.pool.pool import PoolConfig
from pool_harness import APPS, PoolHarness, running_pool, wait_for

pytestmark = pytest.mark.slow

BASIC = APPS / "basic" / "plumber.R"
SHARED = APPS / "shared_model" / "plumber.R"


def pss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise AssertionError("no Pss line")


def test_workers_are_forked_from_one_loaded_zygote():
    with running_pool(SHARED, workers=2, timeout=20) as harness:
        rows = harness.wait_until_idle()
        zygote = harness.pool._zygote.pid
        assert harness.pool.preloaded
        assert {psutil.Process(row["pid"]).ppid() for row in rows} == {zygote}
        # Loaded once: every worker sees the zygote's load-time value, not its own.
        stamps = {harness.get("/loaded").body for _ in range(6)}
        assert len(stamps) == 1


def test_a_large_object_loaded_at_start_is_shared_not_copied():
    with running_pool(SHARED, workers=4, timeout=20) as harness:
        rows = harness.wait_until_idle()
        for _ in range(20):  # requests that touch the model, and R's garbage collector
            assert harness.get("/predict", "x=3").status == 200
        together = sum(pss_kib(row["pid"]) for row in rows)
        model_kib = 200 * 1024  # the app holds a 200 MiB vector
        # Copied, four workers would hold over 800 MiB; shared, 4/5 of one copy plus what
        # each worker writes (R's garbage collector marks every R object it keeps).
        assert together < 2 * model_kib, together


def test_workers_draw_different_random_numbers():
    with running_pool(SHARED, workers=2, timeout=20) as harness:
        harness.wait_until_idle()
        pids_draws: dict[bytes, set[bytes]] = {}
        deadline = time.monotonic() + 30
        while len(pids_draws) < 2 and time.monotonic() < deadline:
            slow = harness.submit("GET", "/random")
            fast = harness.get("/random")
            for response in (fast, slow.result(20)):
                pid, draw = response.body.split(b" ")
                pids_draws.setdefault(pid, set()).add(draw)
        assert len(pids_draws) == 2
        first, second = pids_draws.values()
        assert first.isdisjoint(second)


def _events(caplog, event: str) -> list[dict]:
    return [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event") == event]


def test_the_first_worker_serves_before_the_zygote_settles_and_is_replaced_at_once(caplog):
    caplog.set_level("INFO", logger="plumbline.pool")
    harness = PoolHarness(PoolConfig(plumber_file=BASIC, workers=2, timeout=20))
    try:
        harness.run(harness.pool.start())
        # Requests sent as soon as the pool is ready are all answered across the swap.
        pending = [harness.submit("GET", "/text") for _ in range(20)]
        assert [f.result(20).body for f in pending] == [b"hello"] * 20
        harness.wait_settled()
        rows = harness.wait_until_idle()
        first = _events(caplog, "worker_spawned")[0]["pid"]
        # The first worker ready was the one forked before the zygote's collection ...
        assert _events(caplog, "worker_ready")[0]["pid"] == first
        assert {"worker": 0, "pid": first, "reason": "unsettled"}.items() <= next(
            e for e in _events(caplog, "worker_stopped") if e["pid"] == first
        ).items()
        # ... and the workers that stay were forked after it, from the settled heap.
        assert first not in {row["pid"] for row in rows}
        zygote = harness.pool._zygote.pid
        assert {psutil.Process(row["pid"]).ppid() for row in rows} == {zygote}
        assert set(harness.pool.restart_counts.values()) == {0}  # starting is not a restart
    finally:
        harness.close()


STATEFUL = """\
value <- "unset"

#* @serializer text
#* @post /set
function(v) {
  value <<- v
  "set"
}

#* @serializer text
#* @get /get
function() value
"""


def test_a_single_first_worker_that_served_keeps_its_state_instead_of_being_swapped(
    tmp_path, caplog
):
    caplog.set_level("INFO", logger="plumbline.pool")
    app = tmp_path / "plumber.R"
    app.write_text(STATEFUL)
    harness = PoolHarness(PoolConfig(plumber_file=app, workers=1, timeout=20))
    try:
        harness.run(harness.pool.start())
        # Sent as soon as the pool is ready: the first worker, before the zygote settled.
        assert harness.request("POST", "/set", "v=kept").body == b"set"
        harness.wait_settled()

        def kept() -> list[dict]:
            stopped = _events(caplog, "worker_stopped")
            return [e for e in stopped if e["reason"] == "first_worker_kept"]

        wait_for(kept, timeout=20, interval=0.02)
        # With one worker a client sees its globals as under plumber: the value it set.
        assert harness.get("/get").body == b"kept"
        first = _events(caplog, "worker_ready")[0]["pid"]
        assert [row["pid"] for row in harness.wait_until_idle()] == [first]
        assert kept()[0]["pid"] != first  # the settled fork went, unused
        assert set(harness.pool.restart_counts.values()) == {0}
    finally:
        harness.close()


def test_a_first_worker_that_dies_before_its_replacement_counts_as_a_restart(caplog):
    class KillFirstWhenReady(logging.Handler):
        def emit(self, record):
            fields = getattr(record, "fields", {})
            if fields.get("event") == "worker_ready" and not self.killed:
                self.killed = fields["pid"]
                os.kill(fields["pid"], signal.SIGKILL)

    caplog.set_level("INFO", logger="plumbline.pool")
    killer = KillFirstWhenReady()
    killer.killed = 0
    pool_logger = logging.getLogger("plumbline.pool")
    pool_logger.addHandler(killer)
    try:
        with running_pool(BASIC, workers=2, timeout=20) as harness:
            rows = harness.wait_until_idle()
            assert killer.killed and killer.killed not in {row["pid"] for row in rows}
            assert harness.pool.restart_counts["killed_signal"] == 1
            assert harness.get("/text").body == b"hello"
    finally:
        pool_logger.removeHandler(killer)


def test_a_killed_worker_is_forked_again_quickly():
    with running_pool(BASIC, workers=1, timeout=20) as harness:
        victim = harness.wait_until_idle()[0]["pid"]
        started = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        rows = wait_for(
            lambda: [r for r in harness.snapshot() if r["state"] == "idle" and r["pid"] != victim],
            timeout=30,
        )
        elapsed = time.monotonic() - started
        assert harness.get("/text").body == b"hello"
        assert elapsed < 5, elapsed  # a fork, not an R start-up (generous: a busy machine)
        assert psutil.Process(rows[0]["pid"]).ppid() == harness.pool._zygote.pid


def test_a_dead_zygote_is_replaced_and_its_workers_keep_serving(caplog):
    caplog.set_level("INFO", logger="plumbline.pool")
    with running_pool(BASIC, workers=2, timeout=20) as harness:
        rows = harness.wait_until_idle()
        zygote = harness.pool._zygote
        old = zygote.pid
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: not zygote.alive)
        assert harness.get("/text").body == b"hello"  # its workers still answer
        # A new zygote loads the app at once, so the next replacement is a fork again.
        wait_for(lambda: zygote.alive and zygote.pid != old, timeout=60)
        victim = rows[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: (
                [r["pid"] != victim and r["state"] for r in harness.snapshot()] == ["idle", "idle"]
            ),
            timeout=60,
        )
        parents = [psutil.Process(r["pid"]).ppid() for r in harness.snapshot()]
        assert parents.count(zygote.pid) == 1  # the replacement; the other is the old one's
        assert harness.get("/text").body == b"hello"
        # Only the first zygote forks before settling: the replacement stays.
        assert not harness.pool.settling
        stopped = _events(caplog, "worker_stopped")
        assert [e["reason"] for e in stopped].count("unsettled") == 1  # the pool's start's


def test_an_app_that_opens_a_connection_at_load_is_not_forked(tmp_path, caplog):
    app = tmp_path / "plumber.R"
    app.write_text(
        'log_file <- file(tempfile(), open = "w")\n\n'
        "#* @serializer text\n#* @get /pid\nfunction() Sys.getpid()\n"
    )
    caplog.set_level("WARNING", logger="plumbline.pool")
    with running_pool(app, workers=2, timeout=20) as harness:
        rows = harness.wait_until_idle()
        assert not harness.pool.preloaded
        assert all(psutil.Process(r["pid"]).ppid() == os.getpid() for r in rows)
        assert harness.get("/pid").status == 200
    fields = [getattr(r, "fields", {}) for r in caplog.records]
    assert any(
        f.get("event") == "preload_off" and "connections" in f.get("reason", "") for f in fields
    )


def test_preload_off_spawns_every_worker():
    with running_pool(BASIC, workers=2, timeout=20, preload=False) as harness:
        rows = harness.wait_until_idle()
        assert not harness.pool.preloaded
        assert all(psutil.Process(r["pid"]).ppid() == os.getpid() for r in rows)
        assert harness.get("/text").body == b"hello"
