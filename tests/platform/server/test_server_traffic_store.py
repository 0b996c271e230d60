"""The dashboard's traffic math, on the runtime's own exposition: what a scrape reads, how
scrapes become requests/s, error rate and latency quantiles, and that memory stays bounded.

The exposition comes from the runtime's real Metrics class (runtime/front/metrics.py), so a renamed
metric or label breaks these tests, not the charts in production.
"""

from __future__ import annotations

import pytest

from plumbline.platform.server.traffic.exposition import MAX_ROUTES, parse, quantile
from plumbline.platform.server.traffic.store import TrafficStore
from plumbline.runtime.front.metrics import Metrics


class IdlePool:
    """What the runtime's metrics read from a worker pool at scrape time."""

    queue_depth = 0
    restart_counts: dict = {}
    pipelined = 0

    def snapshot(self):
        return []


def exposition(requests: list[tuple[str, str, int, float]]) -> str:
    """The runtime's /metrics after these (method, route, status, seconds) requests."""
    metrics = Metrics(IdlePool())
    for method, route, status, seconds in requests:
        metrics.observe(method, route, status, seconds)
    return metrics.exposition()[0].decode()


def test_a_scrape_reads_requests_errors_and_latency_per_route_without_probes():
    text = exposition(
        [("GET", "/parity", 200, 0.004)] * 8
        + [("POST", "/parity", 500, 0.2)] * 2
        + [("GET", "/readyz", 200, 0.001)] * 50
        + [("GET", "/metrics", 200, 0.001)] * 5
        + [("GET", "<unmatched>", 404, 0.001)]
    )
    routes = parse(text)
    assert set(routes) == {"/parity", "<unmatched>"}  # probes and scrapes are not traffic
    parity = routes["/parity"]
    assert (parity.requests, parity.errors) == (10, 2)
    assert parity.buckets[float("inf")] == 10 and parity.buckets[0.005] == 8
    assert routes["<unmatched>"].errors == 0  # a 404 is the client's error, not the app's


def test_quantiles_interpolate_within_buckets_like_prometheus():
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.3)  # 20 of the 40 between 0.1 and 0.5
    assert quantile(0.99, buckets) == pytest.approx(0.95)
    assert quantile(0.5, {0.1: 0.0, float("inf"): 0.0}) is None
    assert quantile(0.99, {1.0: 1.0, float("inf"): 4.0}) == 1.0  # past the last finite bound


def test_steps_count_growth_across_replicas_restarts_and_new_replicas():
    store = TrafficStore(interval=10)
    ok = [("GET", "/parity", 200, 0.01)]
    store.record(1, 1000.0, {"r1": parse(exposition(ok * 100)), "r2": parse(exposition(ok * 5))})
    # 10 s later: r1 served 30 more, r2 restarted (its counter starts again: 4 new), r3 is new
    store.record(
        1,
        1010.0,
        {
            "r1": parse(exposition(ok * 130)),
            "r2": parse(exposition(ok * 4)),
            "r3": parse(exposition(ok * 6)),
        },
    )
    charts = store.charts(1, end=1010.0, window=60, step=10)
    assert charts["routes"] == ["/parity"]
    rps = [v for v in charts["series"]["/parity"]["rps"] if v is not None]
    assert rps == [pytest.approx((30 + 4 + 6) / 10)]  # the first scrape is only a baseline
    assert charts["series"][""]["rps"] == charts["series"]["/parity"]["rps"]
    assert len(charts["times"]) == 6 and charts["times"][-1] == 1010.0


def test_bins_give_rate_error_share_and_quantiles_and_gaps_without_data():
    store = TrafficStore(interval=5)
    served: list[tuple[str, str, int, float]] = []
    store.record(7, 0.0, {"r1": parse(exposition(served))})
    for at in (5.0, 10.0):  # each 5 s: 18 fast answers and 2 slow failures
        served += [("GET", "/a", 200, 0.003)] * 18 + [("GET", "/a", 500, 2.0)] * 2
        store.record(7, at, {"r1": parse(exposition(served))})
    charts = store.charts(7, end=10.0, window=30, step=10)
    series = charts["series"]["/a"]
    assert series["rps"][-1] == pytest.approx(40 / 10) and series["requests"][-1] == 40
    assert series["error_rate"][-1] == pytest.approx(0.1)
    assert 0.0025 <= series["p50"][-1] <= 0.005
    assert 1.0 <= series["p99"][-1] <= 2.5
    assert series["rps"][:-1] == [None, None]  # no scrape there: a gap, not a zero


def test_memory_is_bounded_to_the_hour_and_the_route_limit():
    store = TrafficStore(interval=1)
    routes = [("GET", f"/r{i}", 200, 0.01) for i in range(MAX_ROUTES + 20)]
    counted = parse(exposition(routes))
    assert len(counted) == MAX_ROUTES  # the rest share one "(other)" route
    assert counted["(other)"].requests == 21
    for second in range(5000):
        store.record(3, float(second), {"r1": counted})
    assert len(store._apps[3].steps) <= 3600 + 2
    store.forget_except(set())
    assert store.charts(3, end=5000.0, window=60, step=10)["routes"] == []
