"""`plumbline rbac`: a namespaced Role with only what plumbline's operations use."""
from __future__ import annotations


import pytest

from platform_manifest_checks import by_kind, validate_all
from plumbline.platform.kube.manifests import render, render_yaml
from plumbline.platform.kube.rbac import render_rbac
from plumbline.platform.spec.appspec import SpecError, build_spec
from support import EXAMPLE_DIR as EXAMPLE

PLURAL = {"ConfigMap": ("", "configmaps"), "Service": ("", "services"),
          "Deployment": ("apps", "deployments"), "Ingress": ("networking.k8s.io", "ingresses"),
          "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
          "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers")}


def _grants(role: dict) -> dict[tuple[str, str], set[str]]:
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def test_platform_rbac_objects_are_valid_and_bound():
    objects = render_rbac("apps")
    validate_all(objects)
    objs = by_kind(objects)
    binding = objs["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": objs["Role"]["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": "apps",
                                    "name": objs["ServiceAccount"]["metadata"]["name"]}]
    assert "ClusterRole" not in objs and all(o["metadata"]["namespace"] == "apps" for o in objects)


def test_platform_rbac_grants_exactly_what_the_operations_use():
    grants = _grants(by_kind(render_rbac("apps"))["Role"])
    every_kind = render(build_spec(EXAMPLE / "plumber.R", {"autoscaling.enabled": True}))
    manage = {"get", "list", "create", "patch", "delete"}  # server-side apply, status, delete
    for obj in every_kind:
        assert grants[PLURAL[obj["kind"]]] == manage, obj["kind"]
    assert grants[("apps", "replicasets")] == {"get", "list"}  # rollback reads old templates
    assert grants[("", "pods")] == {"get", "list"}
    assert grants[("", "pods/log")] == {"get"}
    assert grants[("", "events")] == {"get", "list"}
    assert grants[("apps", "deployments/scale")] == {"get", "patch"}  # `plumbline scale`
    assert set(grants) == {PLURAL[o["kind"]] for o in every_kind} | {
        ("apps", "replicasets"), ("", "pods"), ("", "pods/log"), ("", "events"),
        ("apps", "deployments/scale")}
    flat = {v for verbs in grants.values() for v in verbs}
    assert not flat & {"*", "update", "deletecollection", "escalate", "bind", "impersonate"}
    assert not any(resource in ("secrets", "*") for _, resource in grants)


def test_platform_rbac_refuses_a_bad_namespace():
    with pytest.raises(SpecError, match="namespace 'Apps!'"):
        render_rbac("Apps!")


def test_platform_rbac_example_file_is_current():
    current = (EXAMPLE / "k8s" / "rbac.yaml").read_text(encoding="utf-8")
    assert current == render_yaml(render_rbac("default")), (
        "regenerate: plumbline rbac --namespace default --output examples/plumber-on-k8s/k8s/rbac.yaml")
