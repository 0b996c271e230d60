"""The traffic part of the API: an app's charts, and the scrape key for an operator's
Prometheus."""

from __future__ import annotations

from starlette.routing import Route

from plumbline.platform.server.api import V1, ApiError, Call, endpoint, find_app
from plumbline.platform.server.traffic import PrometheusError


@endpoint()
def app_metrics(call: Call):
    """Requests/s, error rate, p50/p99 per route over the last `minutes` (default 60)."""
    app = find_app(call)
    minutes = call.query_int("minutes", 60, 1, 60)
    step = call.query_int("step", 0, 0, 3600)
    try:
        charts = call.server.traffic.charts(
            app.id, call.server.deployer.ref(app), minutes, step or None
        )
    except PrometheusError as exc:
        raise ApiError(502, str(exc)) from None
    return {"app_id": app.id, **charts}


@endpoint("admin")
def scrape_key(call: Call):
    """The key that reads /metrics of key-only apps (and nothing else), for a Prometheus:
    its scrape config sends it as `authorization: {type: Key, credentials: <key>}`."""
    return {"key": call.server.traffic.key, "header": "Authorization: Key <key>"}


ROUTES = [
    Route(f"{V1}/apps/{{app}}/metrics", app_metrics),
    Route(f"{V1}/metrics/scrape-key", scrape_key),
]
