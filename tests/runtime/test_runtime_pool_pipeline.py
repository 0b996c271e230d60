"""Pipelining in the pool (runtime/pool/pool.py): a busy worker is given its next request
only behind a route that answers fast, each caller gets its own answer, and a request
pipelined behind one that times out, or whose worker dies, runs on another worker.

Real R workers of the basic test app, one worker per pool so that every second request
meets a busy worker. The route a request names is what the front passes (method, route
template); here it is set by the test, as the pool sees only that name.
"""

from __future__ import annotations

import json

import pytest
from pool_harness import APPS, running_pool, wait_for

from plumbline.runtime.pool.pool import WorkerDied, WorkerTimeout

pytestmark = pytest.mark.slow

BASIC = APPS / "basic" / "plumber.R"
SLEEP = ("GET", "/sleep")
ECHO = ("GET", "/echo")


def learn_fast(harness, route=SLEEP) -> None:
    """The pool learns the route of /sleep as fast (its mean time in R is what it measures:
    a moving average that starts at the first answer, which a fresh worker gives slowly, its
    JIT compiling the endpoint: after three, one CI run on a busy machine still had it above
    the 5 ms bound, and nothing was pipelined)."""
    for _ in range(10):
        assert harness.get("/sleep", "secs=0", route=route).body == b"slept"


def busy_on_fast_route(harness, route=SLEEP, secs: str = "1"):
    """The worker busy with /sleep, on a route the pool has learnt as fast; its future."""
    learn_fast(harness, route)
    head = harness.submit("GET", "/sleep", f"secs={secs}", route=route)
    wait_for(lambda: harness.pool.in_flight == 1, interval=0.01)
    return head


def echoed(response) -> str:
    return json.loads(response.body)["msg"][0]


def test_a_busy_worker_on_a_fast_route_is_given_the_next_request_and_answers_both_in_order():
    with running_pool(BASIC, workers=1, timeout=30) as harness:
        harness.wait_until_idle()
        head = busy_on_fast_route(harness)
        followers = [harness.submit("GET", "/echo", f"msg=m{i}", route=ECHO) for i in range(3)]
        # one written to the worker at once, the other two wait in the queue
        wait_for(lambda: harness.pool.queue_depth == 2, interval=0.01)
        assert harness.pool.pipelined == 1
        assert head.result(30).body == b"slept"
        assert [echoed(f.result(30)) for f in followers] == ["m0", "m1", "m2"]
        assert harness.pool.restart_counts == dict.fromkeys(harness.pool.restart_counts, 0)


def test_nothing_waits_behind_a_slow_route_or_when_pipelining_is_off():
    with running_pool(BASIC, workers=1, timeout=30) as harness:
        harness.wait_until_idle()
        for _ in range(3):  # /sleep learned as slow: 50 ms, over the 5 ms a route may take
            harness.get("/sleep", "secs=0.05", route=SLEEP)
        head = harness.submit("GET", "/sleep", "secs=1", route=SLEEP)
        wait_for(lambda: harness.pool.in_flight == 1, interval=0.01)
        follower = harness.submit("GET", "/echo", "msg=x", route=ECHO)
        wait_for(lambda: harness.pool.queue_depth == 1, interval=0.01)
        assert head.result(30).body == b"slept" and echoed(follower.result(30)) == "x"
        assert harness.pool.pipelined == 0

    with running_pool(BASIC, workers=1, timeout=30, pipeline=False) as harness:
        harness.wait_until_idle()
        head = busy_on_fast_route(harness)
        follower = harness.submit("GET", "/echo", "msg=y", route=ECHO)
        wait_for(lambda: harness.pool.queue_depth == 1, interval=0.01)
        assert head.result(30).body == b"slept" and echoed(follower.result(30)) == "y"
        assert harness.pool.pipelined == 0


def test_a_request_pipelined_behind_a_timeout_runs_once_on_the_replacement_worker():
    with running_pool(BASIC, workers=1, timeout=2) as harness:
        (before,) = [row["pid"] for row in harness.wait_until_idle()]
        head = busy_on_fast_route(harness, secs="30")
        follower = harness.submit("GET", "/pid", route=("GET", "/pid"))
        wait_for(lambda: harness.pool.pipelined == 1, interval=0.01)
        with pytest.raises(WorkerTimeout):
            head.result(30)
        # it never started in the killed worker: the replacement ran it
        answered_by = int(follower.result(30).body)
        (after,) = [row["pid"] for row in harness.wait_until_idle()]
        assert answered_by == after != before
        assert harness.pool.restart_counts["timeout"] == 1


def test_a_request_pipelined_behind_a_worker_that_dies_runs_on_the_replacement():
    quit_route = ("POST", "/quit")
    with running_pool(BASIC, workers=1, timeout=30) as harness:
        (before,) = [row["pid"] for row in harness.wait_until_idle()]
        # a route the pool has seen answer fast (its name is all the pool knows) quits R,
        # late enough that the follower is written behind it (one CI run lost that race)
        learn_fast(harness, route=quit_route)
        head = harness.submit("POST", "/quit", "secs=0.5", route=quit_route)
        wait_for(lambda: harness.pool.in_flight == 1, interval=0.01)
        follower = harness.submit("GET", "/pid", route=("GET", "/pid"))
        wait_for(lambda: harness.pool.pipelined == 1, interval=0.01)
        with pytest.raises(WorkerDied):
            head.result(30)
        answered_by = int(follower.result(30).body)
        assert answered_by != before


def test_callers_that_go_away_leave_no_answer_to_the_others():
    with running_pool(BASIC, workers=1, timeout=30) as harness:
        harness.wait_until_idle()
        # the pipelined request's caller leaves while the one ahead of it runs
        head = busy_on_fast_route(harness)
        gone = harness.submit("GET", "/echo", "msg=gone", route=ECHO)
        wait_for(lambda: harness.pool.pipelined == 1, interval=0.01)
        gone.cancel()
        assert head.result(30).body == b"slept"
        assert [echoed(harness.get("/echo", f"msg=n{i}", route=ECHO)) for i in range(3)] == [
            "n0",
            "n1",
            "n2",
        ]

        # the caller of the request ahead leaves while a pipelined one waits for it (under
        # another name: the pool has now seen /sleep take 1 s, and pipelines behind it no more)
        head = busy_on_fast_route(harness, ("GET", "/sleep", "again"))
        follower = harness.submit("GET", "/echo", "msg=stays", route=ECHO)
        wait_for(lambda: harness.pool.pipelined == 2, interval=0.01)
        head.cancel()
        assert echoed(follower.result(30)) == "stays"
        assert harness.get("/text").body == b"hello"
        assert harness.pool.restart_counts == dict.fromkeys(harness.pool.restart_counts, 0)
        harness.wait_until_idle()
