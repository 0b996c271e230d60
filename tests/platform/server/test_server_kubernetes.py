"""plumbline server with the Kubernetes backend, against KMock's KubernetesEmulator (a real
HTTP API server; the test plays the Deployment controller and the kubelets).

Publish through the server's API, publish a new version, roll back: each lands in the
cluster as the Deployment, Service, Ingress (Prefix /content/<app>) and ConfigMap of
`plumbline deploy`, with the key-only access travelling as key digests in the pod's
environment. A revoked key rolls the app out without it; a bundle larger than a ConfigMap
fails its task with a message and changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from bundle_maker import good_bundle
from platform_cluster_harness import PlayedControllers
from plumbline.platform.kube.backend import KubernetesBackend

pytestmark = pytest.mark.slow  # servers, R's parser

APPS = "/apis/apps/v1/namespaces/default"
CORE = "/api/v1/namespaces/default"


@pytest.fixture
def cluster_server(make_server, api_server, tmp_path):
    backend = KubernetesBackend(
        kubeconfig=str(api_server.kubeconfig(tmp_path)), namespace="default", poll_interval=0.1
    )
    srv = make_server(use_backend=backend, backend="kubernetes", apps_url="http://apps.example.com")
    return srv, api_server


def publish(srv, client, app_id: int, data: bytes) -> dict:
    bundle = client.post(f"/__api__/applications/{app_id}/upload", content=data)
    assert bundle.status_code == 200, bundle.text
    task = client.post(
        f"/__api__/applications/{app_id}/deploy", json={"bundle": bundle.json()["id"]}
    )
    return {**srv.wait_task(client, task.json()["task_id"]), "bundle_id": bundle.json()["id"]}


def live(api) -> tuple[dict, dict, dict]:
    """The Deployment, its ConfigMap's data and its container's environment."""
    deployment = api.get(f"{APPS}/deployments/parity-api")
    pod = deployment["spec"]["template"]["spec"]
    config_map = next(v["configMap"]["name"] for v in pod["volumes"] if v["name"] == "app-files")
    data = api.get(f"{CORE}/configmaps/{config_map}")
    env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
    return deployment, {**data.get("data", {}), **data.get("binaryData", {})}, env


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_publish_update_rollback_on_kubernetes(cluster_server):
    srv, api = cluster_server
    alice_key = srv.user("alice", "publisher")
    alice = srv.client(alice_key)
    app = alice.post("/__api__/applications", json={"name": "parity-api"}).json()
    assert app["url"] == "http://apps.example.com/content/parity-api/"
    with PlayedControllers(api.url, "default", "parity-api"):
        first = publish(srv, alice, app["id"], good_bundle(1, {"data/lookup.csv": b"a,b\n"}))
        assert first["code"] == 0, first["output"]
        deployment, files, env = live(api)
        assert "hello v1" in files["plumber.R"] and files["data__lookup.csv"] == "a,b\n"
        assert env["PLUMBLINE_ROOT_PATH"] == "/content/parity-api"
        assert env["PLUMBLINE_ACCESS"] == "keys"
        assert digest(alice_key) in env["PLUMBLINE_ACCESS_KEYS"].split(",")
        ingress = api.get("/apis/networking.k8s.io/v1/namespaces/default/ingresses/parity-api")
        paths = ingress["spec"]["rules"][0]["http"]["paths"]
        assert [(p["path"], p["pathType"]) for p in paths] == [("/content/parity-api", "Prefix")]
        assert api.get(f"{CORE}/services/parity-api") is not None

        second = publish(srv, alice, app["id"], good_bundle(2))
        assert second["code"] == 0, second["output"]
        assert "hello v2" in live(api)[1]["plumber.R"]

        back = alice.post(f"/__api__/v1/apps/{app['id']}/rollback", json={})
        done = srv.wait_task(alice, back.json()["task_id"])
        assert done["code"] == 0, done["output"]
        assert "hello v1" in live(api)[1]["plumber.R"]
        assert (
            alice.get(f"/__api__/v1/apps/{app['id']}").json()["active_bundle_id"]
            == first["bundle_id"]
        )
        status = alice.get(f"/__api__/v1/apps/{app['id']}/status").json()
        assert status["backend"] == "kubernetes" and status["state"] == "done"

        # Revoking a key rolls the app out without its digest.
        bob_key = srv.user("bob", "publisher")
        admin = srv.client(srv.user("root", "admin"))
        bob_id = srv.client(bob_key).get("/__api__/v1/user").json()["id"]
        alice.put(f"/__api__/v1/apps/{app['id']}/permissions/{bob_id}", json={"role": "viewer"})
        key_id = srv.client(bob_key).get("/__api__/v1/keys").json()["keys"][0]["id"]
        _wait_env(srv, admin, app["id"], api, lambda env: digest(bob_key) in env)
        srv.client(bob_key).delete(f"/__api__/v1/keys/{key_id}")
        _wait_env(srv, admin, app["id"], api, lambda env: digest(bob_key) not in env)
        assert "hello v1" in live(api)[1]["plumber.R"]  # the same version, new keys

        # Larger than a ConfigMap: the task fails and the cluster keeps what it had.
        before = live(api)[0]["spec"]["template"]
        big = publish(srv, alice, app["id"], good_bundle(3, {"model.bin": os.urandom(1_500_000)}))
        assert big["code"] == 1 and "1 MiB" in big["error"], big["error"]
        assert "nothing was changed" in big["error"]
        assert live(api)[0]["spec"]["template"] == before


def _wait_env(srv, admin, app_id, api, predicate) -> None:
    """Wait for the access tasks to finish, then check the pods' key digests."""
    for task in admin.get(f"/__api__/v1/apps/{app_id}/tasks").json()["tasks"]:
        if not task["finished"]:
            srv.wait_task(admin, task["id"])
    assert predicate(live(api)[2]["PLUMBLINE_ACCESS_KEYS"])


def test_traffic_charts_from_the_pods_through_the_pod_proxy(make_server, api_server, tmp_path):
    """The server reads each ready pod's /metrics through the API server's pod proxy, with its
    scrape key in X-Plumbline-Metrics-Key (the proxy drops Authorization), and the key's
    digest travels to key-only apps as PLUMBLINE_METRICS_KEYS."""
    backend = KubernetesBackend(
        kubeconfig=str(api_server.kubeconfig(tmp_path)), namespace="default", poll_interval=0.1
    )
    srv = make_server(use_backend=backend, backend="kubernetes", metrics_interval=0.3)
    admin = srv.client(srv.user("root", "admin"))
    app = admin.post("/__api__/applications", json={"name": "parity-api"}).json()
    admin.post(f"/__api__/v1/apps/{app['id']}/scale", json={"replicas": 2})
    with PlayedControllers(api_server.url, "default", "parity-api"):
        assert publish(srv, admin, app["id"], good_bundle(1))["code"] == 0
        scrape_key = admin.get("/__api__/v1/metrics/scrape-key").json()["key"]
        assert live(api_server)[2]["PLUMBLINE_METRICS_KEYS"] == digest(scrape_key)
        deadline = time.monotonic() + 60
        while True:
            charts = admin.get(f"/__api__/v1/apps/{app['id']}/metrics?minutes=5").json()
            rps = [v for v in charts["series"].get("/hello", {}).get("rps", []) if v]
            if rps and len(charts["scrape"]["replicas"]) == 2:
                break
            assert time.monotonic() < deadline, charts
            time.sleep(0.3)
    assert charts["source"] == "scraped" and charts["routes"] == ["/hello"]  # no probes
    assert set(charts["scrape"]["replicas"].values()) == {""}  # both pods answered
    hello = charts["series"]["/hello"]
    errors = [v for v in hello["error_rate"] if v is not None]
    assert errors and all(abs(v - 0.1) < 1e-9 for v in errors)  # one in ten was a 500
    assert all(0 < v <= 0.05 for v in hello["p99"] if v is not None)
    pods = {name.split(":")[0] for name in api_server.scrapes}
    assert len(pods) == 2 and {name.split(":")[1] for name in api_server.scrapes} == {"8000"}
    assert {h.get("x-plumbline-metrics-key") for h in api_server.scrape_headers} == {scrape_key}
