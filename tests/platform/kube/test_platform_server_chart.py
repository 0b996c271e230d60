"""charts/plumbline-server, rendered by Helm's own engine (helm-python-sdk): valid objects
for every Kubernetes version from 1.29, lint-clean, the Role `plumbline rbac --server`
prints, pods the apps' NetworkPolicies let in, settings the server really reads, and NOTES
that say how to get the first admin key."""

from __future__ import annotations

import helm_python as helm
import pytest
import yaml

from platform_manifest_checks import validate_all
from plumbline.cli import build_parser
from plumbline.platform.kube.rbac import role_rules
from plumbline.platform.server import config as server_config
from plumbline.platform.spec.appspec import SERVER_POD_LABELS
from support import REPO

CHART = REPO / "charts" / "plumbline-server"
DIGEST = "sha256:" + "ab" * 32
EVERYTHING = {
    "replicas": 2,
    "appsNamespace": "apps",
    "publicUrl": "https://plumbline.example.com",
    "appsUrl": "https://apps.example.com",
    "imageDigest": DIGEST,
    "imagePullPolicy": "IfNotPresent",
    "database": {"existingSecret": "plumbline-db"},
    "persistence": {"accessMode": "ReadWriteMany", "storageClass": "nfs"},
    "packages": {
        "repos": ["https://packagemanager.posit.co/cran/__linux__/bookworm/latest"],
        "cache": {"existingClaim": "r-packages"},
    },
    "networkPolicy": {"ingressNamespace": "traefik"},
    "ingress": {
        "host": "plumbline.example.com",
        "tlsSecret": "plumbline-tls",
        "className": "nginx",
    },
}


def render(values: dict, namespace: str = "plumbline") -> tuple[dict[str, dict], str]:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        rendered = chart.render(values=values, name="plumbline", namespace=namespace)
    notes = next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))
    objects = [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    validate_all(objects)
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}, notes


def container(objects: dict) -> dict:
    return objects["Deployment/plumbline"]["spec"]["template"]["spec"]["containers"][0]


def server_settings(objects: dict) -> server_config.ServerConfig:
    """What `plumbline server` in that container runs with: its env through the real CLI."""
    env = {e["name"]: e["value"] for e in container(objects)["env"] if "value" in e}
    if any(e["name"] == "PLUMBLINE_DATABASE_URL" for e in container(objects)["env"]):
        env["PLUMBLINE_DATABASE_URL"] = "postgresql://u@db/plumbline"  # from the Secret
    argv = container(objects)["command"][1:]
    args = build_parser(argv, environ=env).parse_args(argv)
    return server_config.resolve(args)


@pytest.mark.parametrize("values", [{}, EVERYTHING], ids=["defaults", "everything"])
def test_server_chart_renders_valid_objects_the_server_reads(values):
    objects, _ = render(values)
    assert {
        "Deployment/plumbline",
        "Service/plumbline",
        "Ingress/plumbline",
        "ServiceAccount/plumbline",
        "Role/plumbline",
        "RoleBinding/plumbline",
        "PersistentVolumeClaim/plumbline-data",
    } <= set(objects)
    config = server_settings(objects)
    assert config.backend == "kubernetes" and config.host == "0.0.0.0"
    assert str(config.data_dir) == "/var/lib/plumbline"
    assert config.fetch_url == "http://plumbline.plumbline.svc.cluster.local:3939"
    assert config.server_namespace == "plumbline"
    if values:
        assert config.namespace == "apps" and config.ingress_namespace == "traefik"
        assert config.package_cache_claim == "r-packages" and config.image_digest == DIGEST
        assert config.repos == tuple(EVERYTHING["packages"]["repos"])
        assert config.public_url == "https://plumbline.example.com"
        assert container(objects)["image"] == f"ghcr.io/plumbline/runtime:0.1.0@{DIGEST}"
        assert objects["Role/plumbline"]["metadata"]["namespace"] == "apps"
        binding = objects["RoleBinding/plumbline"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "plumbline", "namespace": "plumbline"}
        ]
        assert "PersistentVolumeClaim/plumbline-r-packages" not in objects
        deployment = objects["Deployment/plumbline"]["spec"]
        assert deployment["strategy"]["type"] == "RollingUpdate"
        db = next(e for e in container(objects)["env"] if e["name"] == "PLUMBLINE_DATABASE_URL")
        assert db["valueFrom"]["secretKeyRef"] == {"name": "plumbline-db", "key": "url"}
    else:
        assert config.namespace == "plumbline" and config.database_url is None
        assert config.package_cache_claim == "plumbline-r-packages"
        claim = objects["PersistentVolumeClaim/plumbline-r-packages"]["spec"]
        assert claim["accessModes"] == ["ReadWriteMany"]
        assert objects["Deployment/plumbline"]["spec"]["strategy"]["type"] == "Recreate"


def test_server_chart_role_is_plumbline_rbac_for_the_server():
    objects, _ = render({"appsNamespace": "apps"})

    def grants(rules):
        return sorted(
            (g, r, tuple(sorted(rule["verbs"])))
            for rule in rules
            for g in rule["apiGroups"]
            for r in rule["resources"]
        )

    assert grants(objects["Role/plumbline"]["rules"]) == grants(role_rules(server=True))


def test_server_chart_pods_are_what_apps_network_policies_admit():
    objects, _ = render({})
    labels = objects["Deployment/plumbline"]["spec"]["template"]["metadata"]["labels"]
    assert SERVER_POD_LABELS.items() <= labels.items()
    pod = objects["Deployment/plumbline"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container(objects)["securityContext"]["readOnlyRootFilesystem"] is True


def test_server_chart_notes_print_the_bootstrap_command():
    _, notes = render({"ingress": {"host": "plumbline.example.com"}}, namespace="tools")
    assert "kubectl -n tools exec deployment/plumbline -- plumbline server bootstrap" in notes
    assert 'rsconnect::addServer("http://plumbline.example.com/__api__"' in notes


def test_server_chart_refuses_replicas_without_postgresql():
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)):
        render({"replicas": 2})
    with pytest.raises(helm.HelmValuesError, match="imageDigest"):
        render({"imageDigest": "latest"})


def test_server_chart_lints_clean():
    for values in ({}, EVERYTHING):
        for kube_version in ("v1.29.0", "v1.34.0"):
            report = helm.lint(CHART, values, strict=True, kube_version=kube_version)
            assert report["errors"] == [], report
            assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_server_chart_network_policy_admits_the_ingress_and_the_apps_pods():
    objects, _ = render({"appsNamespace": "apps"})
    policy = objects["NetworkPolicy/plumbline"]["spec"]
    assert policy["podSelector"]["matchLabels"] == objects["Service/plumbline"]["spec"]["selector"]
    ingress_ns, apps = policy["ingress"][0]["from"]
    assert ingress_ns == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    }
    assert apps["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "apps"}
    # The apps' pods carry the label it admits (their objects are plumbline's).
    from plumbline.platform.kube.manifests import common_labels
    from plumbline.platform.spec.appspec import build_spec

    labels = common_labels(build_spec(REPO / "examples" / "plumber-on-k8s", {}))
    assert apps["podSelector"]["matchLabels"].items() <= labels.items()
    assert "NetworkPolicy/plumbline" not in render({"networkPolicy": {"enabled": False}})[0]
