"""Traffic charts read from a real Prometheus (Debian's `prometheus`) that scrapes the real
replicas of a key-only app on the local backend with the server's scrape key.

On the way, the local backend's own read of each replica's /metrics (what the server's
scraper uses when no Prometheus is configured) is checked against the same replicas.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest
import yaml
from dashboard_harness import bundle, local_server
from support import free_port

from plumbline.platform.backend import AppRef

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus missing"),
]


def start_prometheus(tmp_path, port: int, targets: list[str], key: str) -> subprocess.Popen:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "plumbline",
                "authorization": {"type": "Key", "credentials": key},
                "static_configs": [{"targets": targets, "labels": {"app": "parity-api"}}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=open(tmp_path / "prometheus.log", "w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "prometheus did not become ready"
        time.sleep(0.2)


def test_charts_from_prometheus_scraping_the_replicas_with_the_scrape_key(tmp_path):
    prometheus_port = free_port()
    with local_server(
        tmp_path, prometheus_url=f"http://127.0.0.1:{prometheus_port}", metrics_interval=0
    ) as srv:
        admin_key = srv.user("ada", "admin")
        admin = srv.client(admin_key)
        app = admin.post("/__api__/v1/apps", json={"name": "parity-api"}).json()
        assert app["access_type"] == "acl"  # key-only: /metrics needs a key too
        admin.post(f"/__api__/v1/apps/{app['id']}/scale", json={"replicas": 2})
        made = admin.post(f"/__api__/v1/apps/{app['id']}/bundles", content=bundle(1)).json()
        task = admin.post(f"/__api__/v1/apps/{app['id']}/deploy", json={"bundle_id": made["id"]})
        done = srv.wait_task(admin, task.json()["task_id"], timeout=300)
        assert done["code"] == 0, done["output"]
        key = admin.get("/__api__/v1/metrics/scrape-key").json()["key"]

        # The local backend reads every ready replica on its own port.
        ref = AppRef("parity-api")
        found = srv.backend.metrics(ref, headers={"X-Plumbline-Metrics-Key": key})
        assert len(found) == 2 and all("plumbline_requests_total" in m.text for m in found)
        refused = srv.backend.metrics(ref)
        assert [m.text for m in refused] == [None, None]
        assert {m.error for m in refused} == {"HTTP 401"}

        ports = [dict(r.details)["PORT"] for r in srv.backend.status(ref).replicas if r.ready]
        prometheus = start_prometheus(
            tmp_path, prometheus_port, [f"127.0.0.1:{p}" for p in ports], key
        )
        try:
            apps = srv.config.apps_url.rstrip("/") + "/content/parity-api"
            calls = httpx.Client(headers={"Authorization": f"Key {admin_key}"}, timeout=60)
            deadline = time.monotonic() + 120
            while True:
                for path, status in (("/hello", 200), ("/boom", 500), ("/slow", 200)):
                    assert calls.get(apps + path).status_code == status
                charts = admin.get(f"/__api__/v1/apps/{app['id']}/metrics?minutes=5")
                assert charts.status_code == 200, charts.text
                charts = charts.json()
                series = charts["series"]
                # Prometheus' rate() needs two scrapes of a route before it has a value.
                if {"/hello", "/boom", "/slow"} <= set(series) and all(
                    any(v is not None for v in series[route]["error_rate"])
                    for route in ("/hello", "/boom", "/slow")
                ):
                    break
                assert time.monotonic() < deadline, charts
                time.sleep(1)
        finally:
            prometheus.terminate()
            prometheus.wait(30)
    assert charts["source"] == "prometheus"
    assert not {"/readyz", "/livez", "/metrics"} & set(charts["routes"])
    boom = [v for v in series["/boom"]["error_rate"] if v is not None]
    assert boom and boom[-1] == pytest.approx(1.0)
    assert [v for v in series["/hello"]["error_rate"] if v is not None][-1] == 0
    slow = [v for v in series["/slow"]["p50"] if v is not None]
    assert slow and 0.1 <= slow[-1] <= 0.5  # Sys.sleep(0.2) in R
    whole = [v for v in series[""]["rps"] if v is not None]
    assert whole and whole[-1] > 0
