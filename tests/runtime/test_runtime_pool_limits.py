"""What a request's size or memory can do to a worker: nothing that ends it.

A real pool of real R workers (tests/runtime/apps/memory): frames too large for the pipe
are refused before a worker is taken (request) or turned into a 500 (answer); the memory
limit makes an oversized allocation an R error; a worker left holding too much memory is
replaced after its request, gracefully.
"""
from __future__ import annotations

import pytest
from pool_harness import APPS, running_pool

from plumbline.runtime.protocol import FrameTooLarge

pytestmark = pytest.mark.slow

MEMORY_APP = APPS / "memory" / "plumber.R"


@pytest.fixture(scope="module")
def pool():
    with running_pool(MEMORY_APP, workers=1, health_interval=0) as harness:
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
        pool.request("GET", "/ok", headers=[("x-h", "\x7f" * 200_000)])
    assert [row["state"] for row in pool.snapshot()] == ["idle"]
    unchanged(pool, pids)
