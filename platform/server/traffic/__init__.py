"""Traffic charts for the dashboard: requests/s, error rate, p50/p99 latency per endpoint over
the last hour, from the runtime's Prometheus metrics.

Two sources behind one `charts()`: the server's own scrapes of the replicas through the
Backend interface (scraper.py into store.py, the default), or a Prometheus that scrapes them
(prometheus.py, --prometheus-url).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from plumbline.platform.backend import AppRef, Backend
from plumbline.platform.server.config import ServerConfig
from plumbline.platform.server.db import App, Database
from plumbline.platform.server.traffic.prometheus import Prometheus, PrometheusError
from plumbline.platform.server.traffic.scraper import Scraper, scrape_key
from plumbline.platform.server.traffic.store import KEEP_SECONDS, TrafficStore

__all__ = ["PrometheusError", "Traffic"]
POINTS = 120  # bins a chart has by default


class Traffic:
    def __init__(
        self, config: ServerConfig, db: Database, backend: Backend, ref: Callable[[App], AppRef]
    ):
        self.key = scrape_key(db)
        self.key_digest = hashlib.sha256(self.key.encode()).hexdigest()
        self.interval = config.metrics_interval
        self.prometheus: Prometheus | None = None
        self.store: TrafficStore | None = None
        self.scraper: Scraper | None = None
        if config.prometheus_url:
            self.source = "prometheus"
            self.prometheus = Prometheus(config.prometheus_url, config.prometheus_selector)
        elif config.metrics_interval > 0:
            self.source = "scraped"
            self.store = TrafficStore(config.metrics_interval)
            self.scraper = Scraper(db, backend, self.store, ref, self.key, self.interval)
        else:
            self.source = "off"

    def start(self) -> None:
        if self.scraper is not None:
            self.scraper.start()

    def stop(self) -> None:
        if self.scraper is not None:
            self.scraper.stop()

    def charts(self, app_id: int, ref: AppRef, minutes: int, step: float | None) -> dict:
        window = minutes * 60.0
        smallest = self.interval if self.source == "scraped" else 1.0
        step = max(float(step or 0) or window / POINTS, smallest)
        step = float(max(1, round(step)))
        answer: dict = {
            "source": self.source,
            "window_seconds": window,
            "step_seconds": step,
            "times": [],
            "routes": [],
            "series": {},
        }
        now = time.time()
        if self.prometheus is not None:
            answer["prometheus_url"] = self.prometheus.url
            answer.update(self.prometheus.charts(ref.name, ref.namespace or "", now, window, step))
        elif self.store is not None:
            answer.update(self.store.charts(app_id, now, min(window, KEEP_SECONDS), step))
            state = self.store.state(app_id)
            answer["scrape"] = {
                "interval_seconds": self.interval,
                "at": state.at,
                "replicas": state.replicas or {},
                "error": state.error,
            }
        return answer
