"""The last hour of every app's traffic, in memory, from scrapes of its replicas' /metrics.

Each scrape of an app becomes one step: how much each route's counters grew since the scrape
before, summed over the replicas (a replica seen for the first time counts from zero: it
started since; a counter that went down was reset by a restart). A step is a few numbers per
route, an app keeps at most an hour of them and at most MAX_ROUTES routes: memory is bounded
by (apps x routes x steps an hour). Charts are cut from the steps into bins of `step` seconds:
requests per second, the share of 5xx answers, and p50/p99 latency from the histogram's
growth within the bin (and the requests counted in it).
"""

from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass

from plumbline.platform.server.traffic.exposition import RouteCounters, quantile

KEEP_SECONDS = 3600.0
ALL_ROUTES = ""  # the series of the whole app


@dataclass
class Step:
    at: float  # when the scrape ended (epoch seconds)
    seconds: float  # since the scrape before
    routes: dict[str, RouteCounters]  # increases over those seconds


@dataclass
class ScrapeState:
    at: float | None = None  # the last scrape that answered
    replicas: dict[str, str] | None = None  # replica -> "" or why its read failed
    error: str = ""  # why the whole scrape failed (the backend could not say)


class _AppTraffic:
    def __init__(self, max_steps: int):
        self.steps: collections.deque[Step] = collections.deque(maxlen=max_steps)
        self.last: dict[str, dict[str, RouteCounters]] = {}  # replica -> its counters then
        self.last_at: float | None = None
        self.state = ScrapeState()


class TrafficStore:
    def __init__(self, interval: float, keep: float = KEEP_SECONDS):
        self.interval = interval
        self.keep = keep
        self._max_steps = int(math.ceil(keep / max(interval, 0.1))) + 2
        self._apps: dict[int, _AppTraffic] = {}
        self._lock = threading.Lock()

    def record(
        self,
        app_id: int,
        at: float,
        replicas: dict[str, dict[str, RouteCounters]],
        failures: dict[str, str] | None = None,
    ) -> None:
        """One scrape of the app: each replica's counters now (replicas not read are absent;
        `failures` says why)."""
        with self._lock:
            app = self._apps.setdefault(app_id, _AppTraffic(self._max_steps))
            if app.last_at is not None and at > app.last_at:
                grown: dict[str, RouteCounters] = {}
                for replica, routes in replicas.items():
                    before = app.last.get(replica, {})
                    for route, counters in routes.items():
                        delta = counters.minus(before.get(route))
                        grown.setdefault(route, RouteCounters()).add(delta)
                app.steps.append(Step(at, at - app.last_at, grown))
            app.last = {**{r: c for r, c in app.last.items() if r in (failures or {})}, **replicas}
            app.last_at = at
            app.state = ScrapeState(at, {**dict.fromkeys(replicas, ""), **(failures or {})})

    def failed(self, app_id: int, error: str) -> None:
        with self._lock:
            app = self._apps.setdefault(app_id, _AppTraffic(self._max_steps))
            app.state = ScrapeState(app.state.at, app.state.replicas, error)

    def forget_except(self, app_ids: set[int]) -> None:
        """Drop the apps no longer deployed."""
        with self._lock:
            for app_id in [a for a in self._apps if a not in app_ids]:
                del self._apps[app_id]

    def state(self, app_id: int) -> ScrapeState:
        with self._lock:
            app = self._apps.get(app_id)
            return app.state if app else ScrapeState()

    def charts(self, app_id: int, end: float, window: float, step: float) -> dict:
        """Bins of `step` seconds ending at `end` (aligned), over `window` seconds."""
        count = max(1, int(round(window / step)))
        end = math.ceil(end / step) * step
        start = end - count * step
        with self._lock:
            app = self._apps.get(app_id)
            steps = [s for s in app.steps if s.at > start] if app else []
        bins: list[list[Step]] = [[] for _ in range(count)]
        for s in steps:
            index = min(count - 1, int((s.at - start) // step))
            bins[index].append(s)
        routes: dict[str, float] = collections.Counter()
        for s in steps:
            for route, counters in s.routes.items():
                routes[route] += counters.requests
        names = [ALL_ROUTES, *sorted(routes, key=lambda r: (-routes[r], r))]
        series = {name: _series(bins, name) for name in names}
        return {
            "times": [start + (i + 1) * step for i in range(count)],
            "routes": names[1:],
            "series": series,
        }


def _series(bins: list[list[Step]], route: str) -> dict[str, list[float | None]]:
    requests: list[float | None] = []
    rps: list[float | None] = []
    error_rate: list[float | None] = []
    p50: list[float | None] = []
    p99: list[float | None] = []
    for steps in bins:
        if not steps:
            for values in (requests, rps, error_rate, p50, p99):
                values.append(None)
            continue
        seconds = sum(s.seconds for s in steps)
        total = RouteCounters()
        for s in steps:
            if route == ALL_ROUTES:
                for counters in s.routes.values():
                    total.add(counters)
            elif route in s.routes:
                total.add(s.routes[route])
        requests.append(total.requests)
        rps.append(total.requests / seconds if seconds > 0 else None)
        error_rate.append(total.errors / total.requests if total.requests > 0 else None)
        p50.append(quantile(0.5, total.buckets) if total.requests > 0 else None)
        p99.append(quantile(0.99, total.buckets) if total.requests > 0 else None)
    return {"requests": requests, "rps": rps, "error_rate": error_rate, "p50": p50, "p99": p99}
