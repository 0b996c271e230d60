"""The example app with `--inline-futures off`: `future()` is future's own (sequential plan)
and plumber's promise path runs in the worker, resolved through later's event loop. The
answers must be the same as with inline futures (test_compat_example_app.py) and plumber's."""
from __future__ import annotations

import pytest

from compat_harness import EXAMPLE_APP

pytestmark = pytest.mark.slow
APP = EXAMPLE_APP.parent  # served by the `pair` fixture (conftest.py), 2 workers
PLUMBLINE_FLAGS = ("--inline-futures", "off")


@pytest.mark.parametrize("query", ["int=3", "int=10", "int=abc", "", "int=1&int=2"])
def test_parity(pair, query):
    pair.compare("GET", "/parity?" + query)


def test_health(pair):
    pair.compare("GET", "/health")


def test_fail_then_health_answer_like_plumber_on_that_worker(pair):
    pair.compare("POST", "/fail")
    after = pair.request("plumber", "GET", "/health")
    assert (after.status_code, after.content) == (500, b'{"error":"500 - Internal server error"}')
