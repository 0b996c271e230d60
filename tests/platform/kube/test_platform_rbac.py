"""`plumbline rbac`: a namespaced Role with only what plumbline's operations use."""

from __future__ import annotations

import pytest

from platform_cluster_harness import PlayedControllers
from platform_manifest_checks import by_kind, validate_all
from plumbline.platform.backend import AppRef
from plumbline.platform.kube.backend import KubernetesBackend
from plumbline.platform.kube.manifests import render, render_yaml
from plumbline.platform.kube.rbac import render_rbac
from plumbline.platform.spec.appspec import SpecError, build_spec
from support import EXAMPLE_DIR as EXAMPLE

PLURAL = {
    "ConfigMap": ("", "configmaps"),
    "Service": ("", "services"),
    "Deployment": ("apps", "deployments"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "Secret": ("", "secrets"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
}


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
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": objs["Role"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "namespace": "apps",
            "name": objs["ServiceAccount"]["metadata"]["name"],
        }
    ]
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
    assert grants[("", "pods/proxy")] == {"get"}  # each pod's /metrics, for the dashboard
    assert grants[("", "events")] == {"get", "list"}
    assert grants[("apps", "deployments/scale")] == {"get", "patch"}  # `plumbline scale`
    assert set(grants) == {PLURAL[o["kind"]] for o in every_kind} | {
        ("apps", "replicasets"),
        ("", "pods"),
        ("", "pods/log"),
        ("", "pods/proxy"),
        ("", "events"),
        ("apps", "deployments/scale"),
    }
    flat = {v for verbs in grants.values() for v in verbs}
    assert not flat & {"*", "update", "deletecollection", "escalate", "bind", "impersonate"}
    assert not any(resource in ("secrets", "*") for _, resource in grants)


def test_platform_rbac_for_the_server_adds_only_the_fetch_token_secrets():
    commands = _grants(by_kind(render_rbac("apps"))["Role"])
    server = _grants(by_kind(render_rbac("apps", server=True))["Role"])
    assert set(server) - set(commands) == {("", "secrets")}
    assert server[("", "secrets")] == {"get", "list", "create", "patch", "delete"}
    assert all(server[key] == verbs for key, verbs in commands.items())


def test_platform_rbac_refuses_a_bad_namespace():
    with pytest.raises(SpecError, match="namespace 'Apps!'"):
        render_rbac("Apps!")


def test_platform_rbac_example_file_is_current():
    current = (EXAMPLE / "k8s" / "rbac.yaml").read_text(encoding="utf-8")
    assert current == render_yaml(render_rbac("default")), (
        "regenerate: plumbline rbac --namespace default --output examples/plumber-on-k8s/k8s/rbac.yaml"
    )


CYCLE_APP = """\
#* @serializer text
#* @get /parity
function(int) {
  if (as.integer(int) %% 2 == 0) "even" else "odd"
}
"""


@pytest.mark.slow  # Rscript (deploy's syntax check) and the emulated API server
def test_platform_rbac_grants_what_a_full_cycle_of_operations_asked_for(api_server, tmp_path):
    """Every operation through the Backend interface against the emulated API server, then the
    verbs its recorded requests are authorised by (an apply that creates needs create as well
    as patch, as on kube-apiserver) compared with the Role: all granted, nothing more but a
    `get` beside a `list` (a list already shows every object)."""
    ns, name = "shop", "parity"
    app = tmp_path / name
    app.mkdir()
    (app / "plumber.R").write_text(CYCLE_APP)
    backend = KubernetesBackend(
        kubeconfig=str(api_server.kubeconfig(tmp_path, namespace=ns)), poll_interval=0.05
    )
    ref, out = AppRef(name, ns), []

    def spec(image, **more):
        return build_spec(
            app / "plumber.R",
            {
                "name": name,
                "namespace": ns,
                "image": f"registry.example/parity:{image}",
                "replicas": 2,
                "ingress.host": "parity.example.com",
                "autoscaling.enabled": True,
                **more,
            },
        )

    with PlayedControllers(api_server.url, ns, name) as controllers:
        assert backend.deploy(spec("v1"), emit=out.append).ok, out
        assert backend.deploy(spec("v2"), emit=out.append).ok, out
        assert backend.status(ref).state == "done"
        assert [a.name for a in backend.list_apps(ns)] == [name]
        assert backend.restart(ref, emit=out.append).ok, out
        assert backend.scale(ref, 3, emit=out.append).ok, out
        assert backend.rollback(ref, emit=out.append).ok, out
        failed = backend.deploy(spec("crash"), emit=out.append)  # diagnosed, rolled back
        assert not failed.ok and "rolled back to revision" in failed.verdict, out
        assert len(list(backend.logs(ref, tail=5))) > 0
        assert backend.delete(ref, emit=out.append).ok
    assert not controllers.errors

    used = api_server.verbs_used()
    assert used[("", "configmaps")] >= {"create", "patch"}, "applies created the objects"
    granted = _grants(by_kind(render_rbac(ns))["Role"])
    missing = {
        key: verbs - granted.get(key, set())
        for key, verbs in used.items()
        if verbs - granted.get(key, set())
    }
    assert not missing, f"the Role lacks what the operations used: {missing}"
    beyond = {
        key: verbs - used.get(key, set())
        for key, verbs in granted.items()
        if verbs - used.get(key, set())
    }
    unexplained = {
        key: verbs for key, verbs in beyond.items() if verbs != {"get"} or not _readable(key, used)
    }
    assert not unexplained, f"the Role grants what no operation used: {unexplained}"


def _readable(key: tuple[str, str], used: dict[tuple[str, str], set[str]]) -> bool:
    """Whether the operations list that resource (or read its parent, for a subresource)."""
    group, resource = key
    parent = resource.split("/")[0]
    return bool(used.get(key, set()) & {"list"}) or (
        parent != resource and bool(used.get((group, parent), set()) & {"get", "list"})
    )
