"""The example app with `--inline-futures off`: `future()` is future's own (sequential plan)
and plumber's promise path runs in the worker, resolved through later's event loop. The
answers must be the same as with inline futures (test_compat_example_app.py) and plumber's."""

from __future__ import annotations

import pytest

from compat_harness import EXAMPLE_APP, deliberate, wait_for_unhealthy_restart

pytestmark = pytest.mark.slow
APP = EXAMPLE_APP.parent  # served by the `pair` fixture (conftest.py), 2 workers
PLUMBLINE_FLAGS = ("--inline-futures", "off")


@pytest.mark.parametrize(
    "query, status",
    [("int=3", 200), ("int=10", 200), ("int=abc", 500), ("", 500), ("int=1&int=2", 500)],
)
def test_parity(pair, query, status):
    pair.compare("GET", "/parity?" + query, status=status)


def test_health(pair):
    pair.compare("GET", "/health", status=200)


def test_fail_then_health_answer_like_plumber_on_that_worker(pair):
    """Last in the module: it breaks the app. Through future's own promise path, the worker
    that ran /fail answers /health as plumber does until the pool replaces it."""
    ex = pair.compare("POST", "/fail", status=200)
    assert ex.plumbline.content == b"{}"
    broken = (500, b'{"error":"500 - Internal server error"}')
    after = pair.request("plumber", "GET", "/health")
    assert (after.status_code, after.content) == broken
    deliberate("the pool heals a worker whose /health fails")
    wait_for_unhealthy_restart(pair)
    for _ in range(4):  # both workers healthy again
        reply = pair.request("plumbline", "GET", "/health")
        assert (reply.status_code, reply.content) == (200, b"OK")
