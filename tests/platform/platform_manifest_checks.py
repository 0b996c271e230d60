"""Checks shared by the manifest, chart and CLI tests: schema validation and cross-checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import kubernetes_validate
from packaging.version import Version

from plumbline.platform.kube.manifests import LIVENESS_PATH, READINESS_PATH

# Every Kubernetes version kubernetes-validate ships a schema for, from 1.29 to the newest.
K8S_VERSIONS = sorted(
    {v for v in kubernetes_validate.utils.all_versions() if Version(v) >= Version("1.29")},
    key=Version,
)
RUNTIME_PATHS = {LIVENESS_PATH, READINESS_PATH}  # answered by runtime/front/health.py


def validate_all(objects: list[dict]) -> None:
    """Strict schema validation (no unknown fields) for every shipped version >= 1.29."""
    assert len(K8S_VERSIONS) >= 2 and K8S_VERSIONS[0] == "1.29.0"
    for version in K8S_VERSIONS:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                raise AssertionError(
                    f"{obj['kind']}/{obj['metadata']['name']} is invalid for "
                    f"Kubernetes {version}: {e.message} at "
                    f"{'/'.join(map(str, e.absolute_path))}"
                ) from None


def by_kind(objects: list[dict]) -> dict[str, dict]:
    kinds = [o["kind"] for o in objects]
    assert len(kinds) == len(set(kinds)), f"one object per kind expected, got {kinds}"
    return {o["kind"]: o for o in objects}


def cross_check(objects: list[dict]) -> None:
    """What a reviewer checks by eye: every reference between the objects resolves."""
    objs = by_kind(objects)
    deploy = objs["Deployment"]
    pod = deploy["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    selector = deploy["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items(), "Deployment selector must match its pods"
    container = pod["spec"]["containers"][0]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}

    svc = objs["Service"]
    assert svc["spec"]["selector"] == selector, "Service must select exactly the app's pods"
    for port in svc["spec"]["ports"]:
        assert port["targetPort"] in port_names, "Service targetPort must name a container port"

    for kind in ("PodDisruptionBudget",):
        if kind in objs:
            assert objs[kind]["spec"]["selector"]["matchLabels"] == selector
    if "HorizontalPodAutoscaler" in objs:
        ref = objs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", deploy["metadata"]["name"])
        assert "replicas" not in deploy["spec"], "the HPA, not the Deployment, owns replicas"
    if "Ingress" in objs:
        svc_ports = {p["name"] for p in svc["spec"]["ports"]}
        for rule in objs["Ingress"]["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == svc["metadata"]["name"]
                assert backend["port"]["name"] in svc_ports

    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] in RUNTIME_PATHS and get["port"] in port_names
    assert container["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH
    assert container["readinessProbe"]["httpGet"]["path"] == READINESS_PATH

    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        assert mount["name"] in volumes, f"mount {mount['name']} has no volume"
    if "ConfigMap" in objs:
        cm = objs["ConfigMap"]
        source = volumes["app-files"]["configMap"]
        assert source["name"] == cm["metadata"]["name"]
        assert {i["key"] for i in source["items"]} == set(cm.get("data", {})) | set(
            cm.get("binaryData", {})
        )
    for obj in objects:
        assert obj["metadata"]["namespace"] == deploy["metadata"]["namespace"]
        assert (
            obj["metadata"]["labels"]["app.kubernetes.io/instance"]
            == selector["app.kubernetes.io/instance"]
        )


def write_app(
    folder: Path, source: str, files: dict[str, str | bytes] | None = None, toml: str | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    plumber = folder / "plumber.R"
    plumber.write_text(textwrap.dedent(source), encoding="utf-8")
    for name, content in (files or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if toml is not None:
        (folder / "plumbline.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    return plumber


API_WITH_PATHS = """
    #* @get /users/<id:int>
    function(id) id

    #* @get /users/<id:int>/orders/<order>
    function(id, order) order

    #* @post /users
    function() "created"

    #* @get /items
    #* @post /items
    function() 1

    #* @get /health
    function() "OK"

    #* @assets ./www /static
    list()
"""
