"""Prometheus metrics in a registry of our own, served at /metrics.

Request counters and latency histograms are updated per request; pool state (queue, workers,
restarts) is read from the pool only when Prometheus scrapes, by a custom collector.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from plumbline.endpoints import VERBS
from plumbline.runtime.pool.pool import RESTART_REASONS

WORKER_STATES = ("starting", "idle", "busy", "unhealthy", "stopping", "failed", "backoff")
# R calls take from about a millisecond to minutes.
BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
_KNOWN_METHODS = frozenset(VERBS)
# The *_created series double the scrape size and no dashboard of ours reads them.
disable_created_metrics()

# Why the connection layer answered or closed a connection itself (runtime/front/connection.py).
REFUSAL_REASONS = (
    "header_too_large",
    "url_too_long",
    "header_timeout",
    "body_timeout",
    "too_many_connections",
)
# Why a request's body did not arrive complete (it is then never sent to R).
INCOMPLETE_REASONS = ("disconnect", "body_timeout")


class FrontStats:
    """Counts the connection layer and the proxy keep as plain ints (read at scrape time:
    nothing per request but an addition)."""

    def __init__(self):
        self.open_connections = 0
        self.overflow_open = 0  # connections past max-connections being answered now
        self.refused = dict.fromkeys(REFUSAL_REASONS, 0)
        self.incomplete = dict.fromkeys(INCOMPLETE_REASONS, 0)


class Metrics:
    def __init__(self, pool, front: FrontStats | None = None):
        self.registry = CollectorRegistry()
        self.front = front or FrontStats()
        self.in_flight = 0  # requests this server is handling now; updated by the middleware
        self._requests = Counter(
            "plumbline_requests_total",
            "HTTP requests answered.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self._duration = Histogram(
            "plumbline_request_duration_seconds",
            "Time from request received to response sent.",
            ("route",),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_PoolCollector(pool, self))
        # labels() validates and locks on every call; the children never change, so keep them.
        self._counters: dict[tuple[str, str, int], object] = {}
        self._histograms: dict[str, object] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _KNOWN_METHODS:
            method = "other"
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._requests.labels(method, route, str(status))
        counter.inc()
        histogram = self._histograms.get(route)
        if histogram is None:
            histogram = self._histograms[route] = self._duration.labels(route)
        histogram.observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _PoolCollector:
    """Reads the pool's public state at scrape time."""

    def __init__(self, pool, metrics: Metrics):
        self._pool = pool
        self._metrics = metrics

    def describe(self):
        return []  # not known before the first scrape; avoids a collect() at registration

    def collect(self):
        in_flight = GaugeMetricFamily(
            "plumbline_requests_in_flight", "Requests being handled by this server now."
        )
        in_flight.add_metric([], self._metrics.in_flight)
        yield in_flight

        queue = GaugeMetricFamily("plumbline_queue_depth", "Requests waiting for a free worker.")
        queue.add_metric([], self._pool.queue_depth)
        yield queue

        counts = dict.fromkeys(WORKER_STATES, 0)
        resident = GaugeMetricFamily(
            "plumbline_worker_resident_memory_bytes",
            "Resident memory of each R worker process.",
            labels=["worker"],
        )
        limit = GaugeMetricFamily(
            "plumbline_worker_memory_limit_bytes",
            "Data segment limit of each R worker process "
            "(--max-worker-memory beyond its loaded app).",
            labels=["worker"],
        )
        for worker in self._pool.snapshot():
            counts[worker["state"]] = counts.get(worker["state"], 0) + 1
            if worker.get("resident_bytes") is not None:
                resident.add_metric([str(worker["id"])], worker["resident_bytes"])
            if worker.get("memory_limit") is not None:
                limit.add_metric([str(worker["id"])], worker["memory_limit"])
        workers = GaugeMetricFamily(
            "plumbline_workers", "R worker processes by state.", labels=["state"]
        )
        for state, count in counts.items():
            workers.add_metric([state], count)
        yield workers
        yield resident
        yield limit

        restarts = CounterMetricFamily(
            "plumbline_worker_restarts",
            "R worker processes replaced, by reason.",
            labels=["reason"],
        )
        reasons = dict.fromkeys(RESTART_REASONS, 0)
        reasons.update(self._pool.restart_counts)
        for reason, count in reasons.items():
            restarts.add_metric([reason], count)
        yield restarts

        pipelined = CounterMetricFamily(
            "plumbline_requests_pipelined",
            "Requests written to a busy worker, to start when its current one is answered.",
        )
        pipelined.add_metric([], self._pool.pipelined)
        yield pipelined

        front = self._metrics.front
        connections = GaugeMetricFamily(
            "plumbline_connections_open", "Client connections open now (within the limit)."
        )
        connections.add_metric([], front.open_connections)
        yield connections
        refused = CounterMetricFamily(
            "plumbline_connections_refused",
            "Requests or connections the server answered or closed itself, by reason "
            "(431, 414, 408, or over max-connections).",
            labels=["reason"],
        )
        for reason, count in front.refused.items():
            refused.add_metric([reason], count)
        yield refused
        incomplete = CounterMetricFamily(
            "plumbline_requests_incomplete",
            "Requests whose body did not arrive complete; never sent to R.",
            labels=["reason"],
        )
        for reason, count in front.incomplete.items():
            incomplete.add_metric([reason], count)
        yield incomplete
