"""plumbline server with the Kubernetes backend, against KMock's KubernetesEmulator (a real
HTTP API server; the test plays the Deployment controller and the kubelets).

Publish through the server's API, publish a new version, roll back: each lands in the
cluster as the Deployment, Service, Ingress (Prefix /content/<app>) and NetworkPolicy of
`plumbline deploy`, and no ConfigMap: the pods' init container fetches the version's bundle
from the server with a short-lived token kept in a Secret. The test runs that init
container's very command (as a pod would, with the Secret's token) against the server,
checks the token opens that bundle only, and renews it without a rollout. A key-only app's
key digests are another file of that Secret, which only the app container mounts: a granted
or revoked key rewrites the Secret and rolls nothing out. A bundle far larger than a
ConfigMap deploys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time

import httpx
import pytest

from bundle_maker import good_bundle
from platform_cluster_harness import PlayedControllers
from platform_manifest_checks import validate_all
from r_repository import LocalRepository, RPackage
from plumbline.platform.kube.backend import KubernetesBackend

pytestmark = pytest.mark.slow  # servers, R's parser

APPS = "/apis/apps/v1/namespaces/default"
CORE = "/api/v1/namespaces/default"


@pytest.fixture
def cluster_server(make_server, api_server, tmp_path):
    backend = KubernetesBackend(
        kubeconfig=str(api_server.kubeconfig(tmp_path)), namespace="default", poll_interval=0.1
    )
    srv = make_server(
        use_backend=backend,
        backend="kubernetes",
        apps_url="http://apps.example.com",
        bundle_token_ttl=600.0,
        ingress_namespace="traefik",
    )
    return srv, api_server


def publish(srv, client, app_id: int, data: bytes) -> dict:
    bundle = client.post(f"/__api__/applications/{app_id}/upload", content=data)
    assert bundle.status_code == 200, bundle.text
    task = client.post(
        f"/__api__/applications/{app_id}/deploy", json={"bundle": bundle.json()["id"]}
    )
    return {**srv.wait_task(client, task.json()["task_id"]), "bundle_id": bundle.json()["id"]}


def live(api) -> tuple[dict, dict, dict]:
    """The Deployment, its init container and its app container's environment."""
    deployment = api.get(f"{APPS}/deployments/parity-api")
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
    return deployment, pod["initContainers"][0], env


def run_init_container(api, srv, tmp_path, name: str) -> dict[str, bytes]:
    """The init container's command, run here as the pod would run it: its token from the
    Secret the pod template names, its volume a fresh folder. The files it unpacked."""
    deployment, init, _ = live(api)
    _, token = token_of(api, deployment)  # the Secret the pod mounts for the init container
    volume = tmp_path / name
    (tmp_path / f"{name}-token").mkdir()
    (tmp_path / f"{name}-token" / "token").write_text(token)
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    here = {
        "app-files": volume,
        "package-cache": tmp_path / "cache",
        "tmp": tmp_path,
        "bundle-token": tmp_path / f"{name}-token",
    }

    def local(arg: str) -> str:  # a path in a mounted volume -> the same path here
        for path, name in mounts.items():
            if arg == path or arg.startswith(path + "/"):
                return str(here[name]) + arg[len(path) :]
        return arg

    command = [local(arg) for arg in init["command"]]
    assert command[:2] == ["plumbline", "prepare"]
    done = subprocess.run(
        [sys.executable, "-m", "plumbline", *command[1:]],
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sha256 checked" in done.stdout
    app = volume / "app"  # what the app container mounts (subPath app) at /app
    run_init_container.output = done.stdout
    return {str(p.relative_to(app)): p.read_bytes() for p in app.rglob("*") if p.is_file()}


def token_of(api, deployment) -> tuple[str, str]:
    """The token Secret the init container mounts: its name and the token."""
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "bundle-token", "mountPath": "/var/run/plumbline", "readOnly": True} in pod[
        "initContainers"
    ][0]["volumeMounts"]
    assert "bundle-token" not in {m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volume = next(v["secret"] for v in pod["volumes"] if v["name"] == "bundle-token")
    secret = api.get(f"{CORE}/secrets/{volume['secretName']}")
    return volume["secretName"], base64.b64decode(secret["data"]["token"]).decode()


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def r_repo(tmp_path_factory):
    repository = LocalRepository(tmp_path_factory.mktemp("cran") / "repo")
    repository.add(RPackage("plumblinedep", "2.0.0", "twice <- function(x) 2 * x"))
    return repository


def test_publish_update_rollback_on_kubernetes(cluster_server, r_repo, tmp_path):
    srv, api = cluster_server
    alice_key = srv.user("alice", "publisher")
    alice = srv.client(alice_key)
    app = alice.post("/__api__/applications", json={"name": "parity-api"}).json()
    assert app["url"] == "http://apps.example.com/content/parity-api/"
    with PlayedControllers(api.url, "default", "parity-api"):
        first = publish(srv, alice, app["id"], good_bundle(1, {"data/lookup.csv": b"a,b\n"}))
        assert first["code"] == 0, first["output"]
        deployment, init, env = live(api)
        files = run_init_container(api, srv, tmp_path, "v1")
        assert b"hello v1" in files["plumber.R"] and files["data/lookup.csv"] == b"a,b\n"
        assert api.names(f"{CORE}/configmaps") == set()  # the bundle travels no ConfigMap
        pod = deployment["spec"]["template"]["spec"]
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["app-files"] == {
            "name": "app-files",
            "mountPath": "/app",
            "subPath": "app",
            "readOnly": True,
        }
        assert {"name": "app-files", "emptyDir": {}} in pod["volumes"]
        assert init["image"] == pod["containers"][0]["image"]  # the same runtime image
        assert init["securityContext"]["readOnlyRootFilesystem"] is True
        validate_all([deployment, api.get(f"{CORE}/secrets/{token_of(api, deployment)[0]}")])
        policy = api.get("/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/parity-api")
        sources = policy["spec"]["ingress"][0]["from"]
        assert sources[0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "traefik"
        }
        assert sources[1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
        assert env["PLUMBLINE_ROOT_PATH"] == "/content/parity-api"
        assert env["PLUMBLINE_ACCESS"] == "keys" and not env["PLUMBLINE_ACCESS_KEYS"]
        assert env["PLUMBLINE_ACCESS_KEYS_FILE"] == "/var/run/plumbline-access/access-keys"
        assert mounts["access-keys"] == {
            "name": "access-keys",
            "mountPath": "/var/run/plumbline-access",  # a folder: the kubelet updates it
            "readOnly": True,
        }
        assert "access-keys" not in {m["name"] for m in init["volumeMounts"]}
        assert keys_of(api) == {digest(alice_key)}
        ingress = api.get("/apis/networking.k8s.io/v1/namespaces/default/ingresses/parity-api")
        paths = ingress["spec"]["rules"][0]["http"]["paths"]
        assert [(p["path"], p["pathType"]) for p in paths] == [("/content/parity-api", "Prefix")]
        assert api.get(f"{CORE}/services/parity-api") is not None

        _check_the_token_opens_one_bundle_only(srv, api, alice_key, first["bundle_id"])

        # With a manifest.json: the init container installs its packages into the cache
        # volume, which the app container mounts read-only and serves from.
        manifest = json.dumps(
            {
                "version": 1,
                "packages": {
                    "plumblinedep": {
                        "Source": "LOCAL",
                        "Repository": r_repo.url,
                        "description": {"Version": "2.0.0"},
                    }
                },
            }
        )
        second = publish(
            srv, alice, app["id"], good_bundle(2, {"manifest.json": manifest.encode()})
        )
        assert second["code"] == 0, second["output"]
        assert any("the pods' init container provides" in line for line in second["output"])
        assert b"hello v2" in run_init_container(api, srv, tmp_path, "v2")["plumber.R"]
        assert "R packages: installing 1" in run_init_container.output
        assert "plumblinedep 2.0.0" in run_init_container.output
        pod = live(api)[0]["spec"]["template"]["spec"]
        assert {"name": "package-cache", "emptyDir": {"sizeLimit": "4Gi"}} in pod["volumes"]
        assert {
            "name": "package-cache",
            "mountPath": "/var/cache/plumbline",
            "readOnly": True,
        } in pod["containers"][0]["volumeMounts"]
        serve = pod["containers"][0]["command"]
        assert serve[serve.index("--packages") : serve.index("--packages") + 4] == [
            "--packages",
            "cached",
            "--package-cache",
            "/var/cache/plumbline",
        ]

        back = alice.post(f"/__api__/v1/apps/{app['id']}/rollback", json={})
        done = srv.wait_task(alice, back.json()["task_id"])
        assert done["code"] == 0, done["output"]
        assert b"hello v1" in run_init_container(api, srv, tmp_path, "back")["plumber.R"]

        # Renewal: a new token in the same Secret, the pod template (so the pods) unchanged.
        before, (secret, old_token) = live(api)[0], token_of(api, live(api)[0])
        assert srv.server.deployer.renew_tokens() == 1
        after = live(api)[0]
        assert after["spec"]["template"] == before["spec"]["template"]
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
        assert token_of(api, after)[0] == secret and token_of(api, after)[1] != old_token
        assert (
            alice.get(f"/__api__/v1/apps/{app['id']}").json()["active_bundle_id"]
            == first["bundle_id"]
        )
        status = alice.get(f"/__api__/v1/apps/{app['id']}/status").json()
        assert status["backend"] == "kubernetes" and status["state"] == "done"

        # Granting and revoking keys rewrites the Secret's digests; nothing rolls out.
        bob_key = srv.user("bob", "publisher")
        root_key = srv.user("root", "admin")
        admin = srv.client(root_key)
        bob_id = srv.client(bob_key).get("/__api__/v1/user").json()["id"]
        alice.put(f"/__api__/v1/apps/{app['id']}/permissions/{bob_id}", json={"role": "viewer"})
        key_id = srv.client(bob_key).get("/__api__/v1/keys").json()["keys"][0]["id"]
        _wait_tasks(srv, admin, app["id"])
        assert digest(bob_key) in keys_of(api)
        srv.client(bob_key).delete(f"/__api__/v1/keys/{key_id}")
        _wait_tasks(srv, admin, app["id"])
        assert keys_of(api) == {digest(alice_key), digest(root_key)}
        now = live(api)[0]
        assert now["spec"]["template"] == after["spec"]["template"]
        assert now["metadata"]["generation"] == after["metadata"]["generation"]
        tasks = admin.get(f"/__api__/v1/apps/{app['id']}/tasks").json()["tasks"]
        assert [t["kind"] for t in tasks[:2]] == ["access", "access"]
        assert b"hello v1" in run_init_container(api, srv, tmp_path, "keys")["plumber.R"]

        # Far larger than a ConfigMap could hold: the pods fetch it all the same.
        model = os.urandom(3_000_000)
        big = publish(srv, alice, app["id"], good_bundle(3, {"model.bin": model}))
        assert big["code"] == 0, big["output"]
        assert run_init_container(api, srv, tmp_path, "big")["model.bin"] == model

        # Deleting the app takes every version's token Secret with it.
        assert len(api.names(f"{CORE}/secrets")) >= 3
        gone = alice.delete(f"/__api__/v1/apps/{app['id']}")
        assert srv.wait_task(alice, gone.json()["task_id"])["code"] == 0
        assert api.names(f"{CORE}/secrets") == set()
        assert api.get(f"{APPS}/deployments/parity-api") is None


def _check_the_token_opens_one_bundle_only(srv, api, alice_key: str, bundle_id: int) -> None:
    _, token = token_of(api, live(api)[0])
    url = f"{srv.url}/__api__/v1/bundles/{bundle_id}/download"
    ok = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    with tarfile.open(fileobj=__import__("io").BytesIO(ok.content)) as tar:
        assert "plumber.R" in tar.getnames()
    assert hashlib.sha256(ok.content).hexdigest() == ok.headers["x-bundle-sha256"]
    other = f"{srv.url}/__api__/v1/bundles/{bundle_id + 1000}/download"
    assert httpx.get(other, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {alice_key}"}).status_code == 401
    api_call = httpx.get(f"{srv.url}/__api__/v1/user", headers={"Authorization": f"Key {token}"})
    assert api_call.status_code == 401  # a bundle token is no API key
    # Expired: the same token a moment past its life opens nothing.
    from plumbline.platform.server.fetch import mint_token

    with srv.server.db.session() as s:
        short = mint_token(s, bundle_id, 0.5)
    time.sleep(1.0)
    assert httpx.get(url, headers={"Authorization": f"Bearer {short}"}).status_code == 401


def keys_of(api) -> set[str]:
    """The key digests in the file the app container reads: its access-keys volume's key
    of the Secret it names."""
    pod = live(api)[0]["spec"]["template"]["spec"]
    volume = next(v["secret"] for v in pod["volumes"] if v["name"] == "access-keys")
    assert volume["items"] == [{"key": "access-keys", "path": "access-keys"}]
    secret = api.get(f"{CORE}/secrets/{volume['secretName']}")
    return set(base64.b64decode(secret["data"]["access-keys"]).decode().split())


def _wait_tasks(srv, admin, app_id) -> None:
    """Wait for the app's tasks (the access updates a grant or a revocation starts)."""
    for task in admin.get(f"/__api__/v1/apps/{app_id}/tasks").json()["tasks"]:
        if not task["finished"]:
            srv.wait_task(admin, task["id"])


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
