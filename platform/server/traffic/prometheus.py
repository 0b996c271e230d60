"""The dashboard's charts from a Prometheus that scrapes the replicas (--prometheus-url).

The same four series as the server's own scrapes (requests/s, the 5xx share, p50 and p99
latency), per route and for the whole app, through Prometheus' range queries over its HTTP API
(`/api/v1/query_range`). An app's series are those matching --prometheus-selector, where
{app} is the app's name on the backend and {namespace} its namespace.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from plumbline.platform.server.traffic.exposition import NOT_TRAFFIC
from plumbline.platform.server.traffic.store import ALL_ROUTES

REQUESTS = "plumbline_requests_total"
BUCKETS = "plumbline_request_duration_seconds_bucket"


class PrometheusError(RuntimeError):
    """Prometheus could not answer; the message says what it said."""


class Prometheus:
    def __init__(self, url: str, selector: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.selector = selector
        self.timeout = timeout

    def charts(self, app: str, namespace: str, end: float, window: float, step: float) -> dict:
        count = max(1, int(round(window / step)))
        end = math.ceil(end / step) * step
        start = end - (count - 1) * step
        times = [start + i * step for i in range(count)]
        matchers = self.selector.format(app=app, namespace=namespace)
        skip = "|".join(sorted(NOT_TRAFFIC))
        sel = f'{matchers},route!~"{skip}"' if matchers else f'route!~"{skip}"'
        span = f"{int(max(step, 60))}s"  # several scrapes per rate, whatever the step
        rate = f"rate({REQUESTS}{{{sel}}}[{span}])"
        errors = f'rate({REQUESTS}{{{sel},status=~"5.."}}[{span}])'
        buckets = f"rate({BUCKETS}{{{sel}}}[{span}])"

        def query(promql: str) -> dict[str, list[float | None]]:
            return self._range(promql, start, end, step, times)

        # The error rate is one query, a ratio: rates queried separately can see different
        # scrapes (one may land between the two queries) and disagree about the same requests.
        # A route with no 5xx series has none to divide: `or ... * 0` counts it as 0 errors.
        by_route = {
            "rps": query(f"sum by (route) ({rate})"),
            "error_rate": query(
                f"(sum by (route) ({errors}) or sum by (route) ({rate}) * 0)"
                f" / sum by (route) ({rate})"
            ),
            "p50": query(f"histogram_quantile(0.5, sum by (route, le) ({buckets}))"),
            "p99": query(f"histogram_quantile(0.99, sum by (route, le) ({buckets}))"),
        }
        whole = {
            "rps": query(f"sum({rate})"),
            "error_rate": query(f"(sum({errors}) or sum({rate}) * 0) / sum({rate})"),
            "p50": query(f"histogram_quantile(0.5, sum by (le) ({buckets}))"),
            "p99": query(f"histogram_quantile(0.99, sum by (le) ({buckets}))"),
        }
        totals = {
            route: sum(v for v in values if v is not None)
            for route, values in by_route["rps"].items()
        }
        routes = sorted(totals, key=lambda r: (-totals[r], r))
        series = {ALL_ROUTES: _series(whole, ALL_ROUTES, count, step)}
        for route in routes:
            series[route] = _series(by_route, route, count, step)
        return {"times": times, "routes": routes, "series": series}

    def _range(
        self, promql: str, start: float, end: float, step: float, times: list[float]
    ) -> dict[str, list[float | None]]:
        """route (or "" when the result has no route label) -> values at `times`."""
        query = urllib.parse.urlencode(
            {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        )
        url = f"{self.url}/api/v1/query_range?{query}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} answered {exc.code}: {_reason(exc)}"
            ) from None
        except (OSError, ValueError) as exc:
            raise PrometheusError(f"cannot read Prometheus at {self.url}: {exc}") from None
        if answer.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url}: {answer.get('error', answer)}")
        index = {round(t, 3): i for i, t in enumerate(times)}
        found: dict[str, list[float | None]] = {}
        for result in answer.get("data", {}).get("result", []):
            route = result.get("metric", {}).get("route", ALL_ROUTES)
            values = found.setdefault(route, [None] * len(times))
            for at, value in result.get("values", []):
                i = index.get(round(float(at), 3))
                number = float(value)
                if i is not None and math.isfinite(number):
                    values[i] = number
        return found


def _series(queries: dict, route: str, count: int, step: float) -> dict[str, list[float | None]]:
    empty: list[float | None] = [None] * count
    rps = queries["rps"].get(route, empty)
    return {
        "requests": [r * step if r is not None else None for r in rps],  # from the rate
        "rps": rps,
        "error_rate": queries["error_rate"].get(route, empty),  # None where no requests (0/0)
        "p50": queries["p50"].get(route, empty),
        "p99": queries["p99"].get(route, empty),
    }


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read()).get("error", exc.reason)
    except (OSError, ValueError):
        return str(exc.reason)
