"""What a request's size or memory can do to a worker: nothing that ends it.

A real pool of real R workers (tests/runtime/apps/memory): frames too large for the pipe
are refused before a worker is taken (request) or turned into a 500 (answer); the memory
limit makes an oversized allocation an R error; a worker left holding too much memory is
replaced after its request, gracefully.
"""

from __future__ import annotations

import json
import time

import pytest
from pool_harness import APPS, running_pool, wait_for

from plumbline.runtime.protocol import MAX_HEADER_SIZE, FrameTooLarge

pytestmark = pytest.mark.slow

MEMORY_APP = APPS / "memory" / "plumber.R"


# These tests follow one worker through large allocations, which make R collect fully; its
# re-forking afterwards (test_runtime_pool_refork.py) is not what they are about.
_KEEP = {"refork_after_full_gc": False}


@pytest.fixture(scope="module")
def pool():
    with running_pool(MEMORY_APP, workers=1, health_interval=0, **_KEEP) as harness:
        yield harness


def unchanged(harness, pids: set[int]) -> None:
    assert harness.get("/ok").body == b"ok"
    assert {row["pid"] for row in harness.snapshot()} == pids
    assert sum(harness.pool.restart_counts.values()) == 0


def test_an_answer_too_large_for_the_pipe_is_a_500_and_the_worker_stays(pool):
    pids = {row["pid"] for row in pool.snapshot()}
    response = pool.get("/big-header")
    assert response.status == 500 and b"too large to send" in response.body
    unchanged(pool, pids)


def test_a_request_too_large_for_a_frame_never_takes_a_worker(pool):
    pids = {row["pid"] for row in pool.snapshot()}
    with pytest.raises(FrameTooLarge):
        # six bytes each once JSON-escaped: a frame header over MAX_HEADER_SIZE
        pool.request("GET", "/ok", headers=[("x-h", "\x7f" * (MAX_HEADER_SIZE // 6 + 1000))])
    assert [row["state"] for row in pool.snapshot()] == ["idle"]
    unchanged(pool, pids)


BUDGET = 256 * 1024**2


def test_an_allocation_past_the_memory_limit_is_an_r_error_and_the_worker_stays(capfd):
    with running_pool(
        MEMORY_APP,
        workers=1,
        health_interval=0,
        max_worker_memory=BUDGET,
        recycle_memory=0,
        **_KEEP,
    ) as harness:
        [row] = harness.snapshot()
        assert row["memory_limit"] is not None
        # the limit is the loaded worker's data segment plus the budget
        assert row["memory_limit"] - BUDGET < 2 * 1024**3
        response = harness.get("/allocate", "mb=4096")
        assert response.status == 500
        assert json.loads(response.body) == {"error": "500 - Internal server error"}
        assert "cannot allocate vector of size 4.0 Gb" in capfd.readouterr().err
        # within the budget still works, in the same worker
        assert harness.get("/allocate", "mb=64").body == str(64 * 131072).encode()
        unchanged(harness, {row["pid"]})


def test_a_worker_left_holding_memory_is_replaced_after_its_successor_loaded():
    with running_pool(
        MEMORY_APP,
        workers=1,
        health_interval=0,
        max_worker_memory=0,
        recycle_memory=100 * 1024**2,
        **_KEEP,
    ) as harness:
        [before] = harness.snapshot()
        assert harness.get("/hold", "mb=300").status == 200
        # the old worker keeps serving until its successor has loaded: no request fails
        answers = []
        deadline = time.monotonic() + 60
        while harness.pool.restart_counts["memory"] == 0 and time.monotonic() < deadline:
            answers.append(harness.get("/ok").body)
            time.sleep(0.05)
        assert harness.pool.restart_counts["memory"] == 1
        assert set(answers) <= {b"ok"}
        rows = wait_for(
            lambda: [
                r for r in harness.snapshot() if r["state"] == "idle" and r["pid"] != before["pid"]
            ]
        )
        assert rows[0]["resident_bytes"] < before["resident_bytes"] + 100 * 1024**2
        wait_for(lambda: len(harness.snapshot()) == 1)
        assert sum(harness.pool.restart_counts.values()) == 1  # nothing else happened
