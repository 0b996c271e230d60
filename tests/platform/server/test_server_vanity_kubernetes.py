"""A vanity path on the Kubernetes backend, against KMock's KubernetesEmulator (the test plays
the Deployment controller and the kubelets): setting it applies the app's Ingress with a second
Prefix rule and tells the pods' runtime the alias (a Kubernetes Ingress passes the path on
unchanged); clearing it applies both back. Every object is checked against the official
schemas.
"""

from __future__ import annotations

import pytest
from bundle_maker import good_bundle
from platform_cluster_harness import PlayedControllers
from platform_manifest_checks import validate_all
from test_server_kubernetes import APPS, live, publish

from plumbline.platform.kube.backend import KubernetesBackend

pytestmark = pytest.mark.slow  # servers, R's parser

INGRESSES = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"


def ingress_paths(api, name: str = "parity-api") -> list[tuple[str, str]]:
    rules = api.get(f"{INGRESSES}/{name}")["spec"]["rules"]
    return [(p["path"], p["pathType"]) for rule in rules for p in rule["http"]["paths"]]


def test_a_vanity_path_lands_in_the_ingress_and_the_pods(make_server, api_server, tmp_path):
    backend = KubernetesBackend(
        kubeconfig=str(api_server.kubeconfig(tmp_path)), namespace="default", poll_interval=0.1
    )
    srv = make_server(use_backend=backend, backend="kubernetes", apps_url="http://apps.example.com")
    alice = srv.client(srv.user("alice", "publisher"))
    app = alice.post("/__api__/applications", json={"name": "parity-api"}).json()
    vanity = f"/__api__/v1/content/{app['guid']}/vanity"
    with PlayedControllers(api_server.url, "default", "parity-api"):
        assert publish(srv, alice, app["id"], good_bundle(1))["code"] == 0
        assert ingress_paths(api_server) == [("/content/parity-api", "Prefix")]
        generation = live(api_server)[0]["metadata"]["generation"]

        reply = alice.put(vanity, json={"path": "/teams/parity/"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["url"] == "http://apps.example.com/teams/parity/"
        done = srv.wait_task(alice, reply.json()["task_id"])
        assert done["code"] == 0, done["output"]
        assert ingress_paths(api_server) == [
            ("/content/parity-api", "Prefix"),
            ("/teams/parity", "Prefix"),
        ]
        deployment, _, env = live(api_server)
        assert env["PLUMBLINE_ROOT_PATH"] == "/content/parity-api"
        assert env["PLUMBLINE_ROOT_PATH_ALIASES"] == "/teams/parity"
        assert deployment["metadata"]["generation"] > generation  # the pods roll out with it
        validate_all([deployment, api_server.get(f"{INGRESSES}/parity-api")])

        # A bad path reaches nothing in the cluster.
        assert alice.put(vanity, json={"path": "/__api__/"}).status_code == 400
        assert ingress_paths(api_server)[1] == ("/teams/parity", "Prefix")

        cleared = alice.delete(f"/__api__/v1/apps/{app['id']}/vanity")  # plumbline's form
        assert cleared.status_code == 200 and cleared.json()["path"] is None
        assert srv.wait_task(alice, cleared.json()["task_id"])["code"] == 0
        assert ingress_paths(api_server) == [("/content/parity-api", "Prefix")]
        assert live(api_server)[2]["PLUMBLINE_ROOT_PATH_ALIASES"] == ""

        # With a host name of its own, the vanity path is on that host's rule.
        patched = alice.patch(f"/__api__/v1/apps/{app['id']}", json={"host": "api.example.com"})
        assert srv.wait_task(alice, patched.json()["task_id"])["code"] == 0
        reply = alice.put(vanity, json={"path": "/parity/"})
        assert reply.json()["url"] == "http://api.example.com/parity/"
        assert srv.wait_task(alice, reply.json()["task_id"])["code"] == 0
        ingress = api_server.get(f"{INGRESSES}/parity-api")
        assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["api.example.com"]
        assert ingress_paths(api_server)[1] == ("/parity", "Prefix")
        validate_all([ingress])

        gone = alice.delete(f"/__api__/v1/apps/{app['id']}")
        assert srv.wait_task(alice, gone.json()["task_id"])["code"] == 0
        assert api_server.get(f"{APPS}/deployments/parity-api") is None
        assert api_server.get(f"{INGRESSES}/parity-api") is None
