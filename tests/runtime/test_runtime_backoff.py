"""A slot in crash-loop back-off, seen from outside: `plumbline_workers{state="backoff"}`,
/readyz's 503 naming it, and a queued request that never waits past --timeout for a worker.

The example app's POST /quit ends its worker; one that dies within a second of loading
makes its slot wait (0.5 s, 1 s, 2 s, 4 s, ...) before starting the next.
"""

from __future__ import annotations

import json
import time

import pytest
from serve_harness import serve

pytestmark = pytest.mark.slow

TIMEOUT = 3.0


def test_backoff_shows_in_metrics_and_readyz_and_queued_requests_respect_the_timeout(tmp_path):
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--timeout",
        str(TIMEOUT),
        "--health-interval",
        "0",
        "--drain-delay",
        "0",
    ) as served:
        for _ in range(4):  # each worker quits as soon as it is ready
            served.wait_until(
                lambda: served.get("/readyz", timeout=5)[0] == 200,
                timeout=60,
                what="a worker ready",
            )
            assert served.get("/quit", method="POST")[0] == 502
        served.wait_until(
            lambda: served.metric('plumbline_workers{state="backoff"}') == 1,
            timeout=30,
            what="the slot in back-off",
        )
        status, _, body = served.get("/readyz")
        assert status == 503
        assert [w["state"] for w in json.loads(body)["workers"]] == ["backoff"]
        started = time.monotonic()
        status, _, body = served.get("/parity?int=3")
        waited = time.monotonic() - started
        # a worker may come back in time; if not, 503 at the timeout, never later
        assert (status == 200 and body == b"odd") or (
            status == 503 and "no worker became free" in json.loads(body)["detail"]
        )
        assert waited < TIMEOUT + 2.0, waited
        served.wait_until(
            lambda: served.get("/readyz", timeout=5)[0] == 200,
            timeout=60,
            what="the slot serving again",
        )
