"""The pool serving the walkthrough's example app: health-check healing and inline futures."""

from __future__ import annotations

import pytest

from pool_harness import EXAMPLE_APP, running_pool, wait_for

pytestmark = pytest.mark.slow


def parity(harness, number: int) -> bytes:
    response = harness.get("/parity", f"int={number}")
    assert response.status == 200
    return response.body


def test_failed_health_check_replaces_the_worker():
    with running_pool(
        EXAMPLE_APP, workers=1, health_path="/health", health_interval=0.5
    ) as harness:
        first = harness.wait_until_idle()[0]["pid"]
        assert harness.get("/health").body == b"OK"
        assert harness.request("POST", "/fail").status == 200
        wait_for(lambda: harness.pool.restart_counts["unhealthy"] >= 1, timeout=30)
        replacement = harness.wait_until_idle()[0]["pid"]
        assert replacement != first
        response = harness.get("/health")
        assert (response.status, response.body) == (200, b"OK")


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="inline-without-library-future"),
        pytest.param({"attach": ("future", "promises")}, id="inline-with-library-future"),
        pytest.param({"attach": ("future", "promises"), "inline_futures": False}, id="real-future"),
    ],
)
def test_parity_with_futures(settings):
    with running_pool(EXAMPLE_APP, workers=1, **settings) as harness:
        assert [parity(harness, n) for n in (3, 4, 17, 0)] == [b"odd", b"even", b"odd", b"even"]
        assert harness.get("/health").body == b"OK"
        harness.request("POST", "/fail")
        failing = harness.get("/health")
        assert failing.status == 500
        assert failing.body == b'{"error":"500 - Internal server error"}'
