"""charts/plumbline-app, rendered by Helm's own engine (helm-python-sdk, libhelm), against
`plumbline render` for the same app."""

from __future__ import annotations

import copy

import helm_python as helm
import pytest
import yaml

from platform_manifest_checks import API_WITH_PATHS, by_kind, cross_check, validate_all, write_app
from plumbline.platform.kube.helm_values import helm_values
from plumbline.platform.kube.manifests import render
from plumbline.platform.spec.appspec import build_spec
from support import EXAMPLE_DIR as EXAMPLE, REPO

CHART = REPO / "charts" / "plumbline-app"
HELM_ONLY_LABELS = ("app.kubernetes.io/managed-by", "helm.sh/chart")  # Helm vs plumbline


def helm_render(values: dict, name: str, namespace: str = "default") -> tuple[list[dict], str]:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        rendered = chart.render(values=values, name=name, namespace=namespace)
    notes = next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))
    objects = [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return objects, notes


def without_helm_labels(obj: dict) -> dict:
    obj = copy.deepcopy(obj)

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("labels"), dict):
                for key in HELM_ONLY_LABELS:
                    node["labels"].pop(key, None)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(obj)
    return obj


def _diff(a, b, where="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(set(a) | set(b))
            for d in (
                _diff(a.get(k), b.get(k), f"{where}/{k}")
                if k in a and k in b
                else [f"{where}/{k}: only in {'plumbline' if k in a else 'helm'}"]
            )
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{where}/{i}")]
    return [] if a == b else [f"{where}: plumbline {a!r} != helm {b!r}"]


SPECS = {
    "example": (EXAMPLE / "plumber.R", {"name": "parity", "replicas": 3}),
    "everything": (
        EXAMPLE / "plumber.R",
        {
            "name": "parity",
            "namespace": "apps",
            "workers": 4,
            "image": "me/parity:1.2",
            "image_pull_secrets": ["regcred"],
            "env": {"A": "1"},
            "secret_env": {"DB": "db:pw"},
            "labels": {"team": "data"},
            "annotations": {"prometheus.io/scrape": "true"},
            "node_selector": {"pool": "r"},
            "request_timeout": 30,
            "max_queue": 10,
            "volumes": [
                {"name": "data", "kind": "pvc", "source": "claim", "mount_path": "/data"},
                {
                    "name": "blob",
                    "kind": "csi",
                    "source": "blob.csi.azure.com",
                    "mount_path": "/mnt/blob",
                    "csi_attributes": {"containerName": "c"},
                },
            ],
            "ingress.host": "parity.example.com",
            "ingress.tls_secret": "parity-tls",
            "ingress.class_name": "nginx",
            "ingress.annotations": {"a.example.com/x": "y"},
            "autoscaling.enabled": True,
            "autoscaling.cpu_utilization": 55,
            "rollout.drain_delay_seconds": 0,
        },
    ),
    "custom-image": (
        EXAMPLE / "plumber.R",
        {
            "name": "parity",
            "files_in_image": True,
            "ingress.enabled": False,
            "disruption_budget": False,
        },
    ),
}


@pytest.mark.parametrize("case", sorted(SPECS))
def test_platform_helm_chart_renders_what_plumbline_renders(case):
    plumber, flags = SPECS[case]
    spec = build_spec(plumber, flags)
    objects, _ = helm_render(helm_values(spec), name=spec.name, namespace=spec.namespace)
    validate_all(objects)
    cross_check(objects)
    ours = by_kind(render(spec))
    theirs = by_kind(objects)
    assert sorted(theirs) == sorted(ours)
    for kind, obj in ours.items():
        assert theirs[kind]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        differences = _diff(without_helm_labels(obj), without_helm_labels(theirs[kind]))
        assert not differences, f"{kind}: " + "; ".join(differences)


def test_platform_helm_chart_matches_for_subfolders_and_typed_paths(tmp_path):
    plumber = write_app(
        tmp_path / "shop",
        API_WITH_PATHS,
        files={"www/index.html": "<h1>shop & co</h1>\n", "entrypoint.R": "library(jsonlite)\n"},
    )
    spec = build_spec(plumber, {})
    objects, notes = helm_render(helm_values(spec), name="shop")
    assert by_kind(objects)["ConfigMap"]["data"]["www__index.html"] == "<h1>shop & co</h1>\n"
    differences = [
        d
        for kind, obj in by_kind(render(spec)).items()
        for d in _diff(without_helm_labels(obj), without_helm_labels(by_kind(objects)[kind]))
    ]
    assert not differences, differences
    assert "http://<ingress address>/users (and below)" in notes


def test_platform_helm_chart_defaults_are_plumbline_defaults():
    spec = build_spec(EXAMPLE / "plumber.R", {})
    ours = helm_values(spec)
    with helm.Chart.load(CHART) as chart:
        defaults = chart.values
    for key in (
        "image",
        "imagePullPolicy",
        "replicas",
        "workers",
        "resources",
        "probes",
        "rollout",
        "service",
        "pdb",
        "autoscaling",
        "tmpSize",
        "runAsUser",
    ):
        assert defaults[key] == ours[key], key
    assert defaults["runtime"] == {"requestTimeout": None, "maxQueue": None, "config": ""}
    assert defaults["ingress"]["enabled"] is True


def test_platform_helm_chart_lints_clean():
    values = helm_values(build_spec(EXAMPLE / "plumber.R", {"name": "parity"}))
    for kube_version in ("v1.29.0", "v1.34.0"):
        report = helm.lint(CHART, values, strict=True, kube_version=kube_version)
        assert report["errors"] == [], report
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_platform_helm_chart_notes_say_how_to_reach_the_api():
    spec = build_spec(
        EXAMPLE / "plumber.R",
        {"name": "parity", "ingress.host": "api.example.com", "ingress.tls_secret": "tls"},
    )
    _, notes = helm_render(helm_values(spec), name="parity")
    assert "kubectl -n default port-forward service/parity 8000:80" in notes
    assert "https://api.example.com/parity" in notes
    assert "http://parity.default.svc.cluster.local/" in notes


def test_platform_helm_chart_existing_configmap_and_refusals():
    objects, _ = helm_render({"app": {"existingConfigMap": "my-app-files"}}, name="api")
    objs = by_kind(objects)
    validate_all(objects)
    assert "ConfigMap" not in objs
    pod = objs["Deployment"]["spec"]["template"]["spec"]
    assert pod["volumes"][0] == {
        "name": "app-files",
        "configMap": {"name": "my-app-files", "defaultMode": 292},
    }
    assert objs["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/"
    with pytest.raises(helm.HelmRenderError, match="app.files must hold plumber.R"):
        helm_render({}, name="api")
    with pytest.raises(helm.HelmValuesError, match="workers"):
        helm_render({"workers": 0, "app": {"existingConfigMap": "x"}}, name="api")
    with pytest.raises(helm.HelmValuesError, match="replicaz"):
        helm_render({"replicaz": 3, "app": {"existingConfigMap": "x"}}, name="api")
    big = {"app": {"files": {"plumber.R": "#" * (1024 * 1024 + 1)}}}
    with pytest.raises(helm.HelmRenderError, match="over the 1 MiB"):
        helm_render(big, name="api")


def test_platform_helm_chart_matches_for_r_packages_and_a_pinned_image(tmp_path):
    """An app with a manifest.json: the chart's init container, package cache and serve
    flags are render's, as are the digest and the NetworkPolicy."""
    plumber = write_app(
        tmp_path / "model",
        API_WITH_PATHS,
        files={
            "manifest.json": '{"version": 1, "packages": {"ranger": {"Source": "CRAN", '
            '"description": {"Version": "0.16.0"}}}}'
        },
    )
    spec = build_spec(
        plumber,
        {
            "image_digest": "sha256:" + "ab" * 32,
            "packages.cache_claim": "r-packages",
            "packages.repos": ["https://packagemanager.posit.co/cran/__linux__/bookworm/latest"],
            "network_policy.namespaces": ["monitoring"],
        },
    )
    objects, _ = helm_render(helm_values(spec), name="model")
    validate_all(objects)
    ours = by_kind(render(spec))
    pod = ours["Deployment"]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"][:3] == ["plumbline", "prepare", "/app"]
    for kind, obj in ours.items():
        differences = _diff(without_helm_labels(obj), without_helm_labels(by_kind(objects)[kind]))
        assert not differences, f"{kind}: " + "; ".join(differences)
