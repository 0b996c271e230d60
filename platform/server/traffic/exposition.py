"""What the dashboard's charts need from one replica's /metrics: per route, the requests
answered, the errors among them and the latency histogram, as cumulative counters.

The names are the runtime's (runtime/front/metrics.py): `plumbline_requests_total{method, route,
status}` and `plumbline_request_duration_seconds{route}` (a histogram). The probes' and the
scrape's own routes are left out: they would drown the app's traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "plumbline_requests"  # the family of plumbline_requests_total
DURATION = "plumbline_request_duration_seconds"
NOT_TRAFFIC = frozenset({"/livez", "/readyz", "/metrics"})
MAX_ROUTES = 64  # a plumber.R has a bounded set of routes; more is someone else's exposition
OTHER_ROUTES = "(other)"


@dataclass
class RouteCounters:
    requests: float = 0.0
    errors: float = 0.0  # answered with a 5xx status
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count

    def minus(self, earlier: RouteCounters | None) -> RouteCounters:
        """The increase since `earlier`; a counter that went down was reset (the replica
        restarted), and then all of it is new."""
        if earlier is None or self.requests < earlier.requests:
            return RouteCounters(self.requests, self.errors, dict(self.buckets))
        return RouteCounters(
            self.requests - earlier.requests,
            max(0.0, self.errors - earlier.errors),
            {
                le: max(0.0, count - earlier.buckets.get(le, 0.0))
                for le, count in self.buckets.items()
            },
        )

    def add(self, other: RouteCounters) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for le, count in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + count


def parse(text: str) -> dict[str, RouteCounters]:
    """Route -> counters, from the exposition text (ValueError when it is not one)."""
    routes: dict[str, RouteCounters] = {}

    def counters(route: str) -> RouteCounters:
        if route not in routes and len(routes) - (OTHER_ROUTES in routes) >= MAX_ROUTES - 1:
            route = OTHER_ROUTES  # the named ones and "(other)" make MAX_ROUTES
        return routes.setdefault(route, RouteCounters())

    for family in text_string_to_metric_families(text):
        if family.name == REQUESTS:
            for sample in family.samples:
                route = sample.labels.get("route", "")
                if sample.name != REQUESTS + "_total" or route in NOT_TRAFFIC:
                    continue
                c = counters(route)
                c.requests += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    c.errors += sample.value
        elif family.name == DURATION:
            for sample in family.samples:
                route = sample.labels.get("route", "")
                if sample.name != DURATION + "_bucket" or route in NOT_TRAFFIC:
                    continue
                le = float(sample.labels.get("le", "+Inf"))
                c = counters(route)
                c.buckets[le] = c.buckets.get(le, 0.0) + sample.value
    return routes


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated within its bucket, as
    Prometheus' histogram_quantile() does; None without observations."""
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):  # in the open-ended bucket: the largest finite bound
                return lower
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower
