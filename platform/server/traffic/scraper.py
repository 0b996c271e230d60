"""Reads every deployed app's replicas' /metrics every --metrics-interval seconds, through the
Backend interface, into the TrafficStore.

Key-only apps answer /metrics only with a key: the server makes one scrape key for itself
(kept in the database, so every server replica uses the same), gives its sha256 to every app
as `--metrics-keys` (runtime/front/access.py), and sends it in `X-Plumbline-Metrics-Key`. That key
reads /metrics and nothing else.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plumbline.platform.backend import AppRef, Backend, BackendError
from plumbline.platform.server.db import App, Database, ServerSecret
from plumbline.platform.server.traffic.exposition import RouteCounters, parse
from plumbline.platform.server.traffic.store import TrafficStore

log = logging.getLogger("plumbline.server.traffic")
SCRAPE_KEY = "metrics_scrape_key"
KEY_HEADER = "X-Plumbline-Metrics-Key"


def scrape_key(db: Database) -> str:
    """The server's scrape key, made by the first server process that needs it."""
    with db.session() as s:
        row = s.get(ServerSecret, SCRAPE_KEY)
        if row is not None:
            return row.value
    try:
        with db.session() as s:
            s.add(ServerSecret(name=SCRAPE_KEY, value="plm_" + secrets.token_urlsafe(30)))
    except IntegrityError:
        pass  # another server replica made it first: use theirs
    with db.session() as s:
        return s.get(ServerSecret, SCRAPE_KEY).value


class Scraper:
    def __init__(
        self,
        db: Database,
        backend: Backend,
        store: TrafficStore,
        ref: Callable[[App], AppRef],
        key: str,
        interval: float,
    ):
        self.db, self.backend, self.store, self.ref = db, backend, store, ref
        self.headers = {KEY_HEADER: key}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="metrics-scraper")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.scrape_all()
            except Exception:  # a bug must not end the charts for good
                log.exception("scraping the apps' metrics failed")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def scrape_all(self) -> None:
        with self.db.session() as s:
            apps = [
                (a.id, self.ref(a))
                for a in s.scalars(select(App).where(App.active_bundle_id.is_not(None)))
            ]
        self.store.forget_except({app_id for app_id, _ in apps})
        for app_id, ref in apps:
            if self._stop.is_set():
                return
            self.scrape(app_id, ref)

    def scrape(self, app_id: int, ref: AppRef) -> None:
        try:
            found = self.backend.metrics(ref, headers=self.headers, timeout=5.0)
        except BackendError as exc:
            self.store.failed(app_id, str(exc))
            return
        replicas: dict[str, dict[str, RouteCounters]] = {}
        failures: dict[str, str] = {}
        for replica in found:
            if replica.text is None:
                failures[replica.replica] = replica.error or "no answer"
                continue
            try:
                replicas[replica.replica] = parse(replica.text)
            except ValueError as exc:
                failures[replica.replica] = f"not Prometheus text: {exc}"
        self.store.record(app_id, time.time(), replicas, failures)
