"""The cluster operations end to end against KMock's Kubernetes emulator on loopback.

The official kubernetes client talks HTTP to the emulator; a background thread plays the
cluster's controllers and kubelets (see platform_cluster_harness). Nothing is mocked.
"""

from __future__ import annotations

import copy

import kmock
import pytest

from platform_cluster_harness import REVISION, PlayedControllers
from plumbline.platform.kube.apply import ApplyError
from plumbline.platform.kube.client import connect
from plumbline.platform.kube.manifests import render
from plumbline.platform.kube.operations import (
    InvalidPlumberFile,
    OperationError,
    delete,
    deploy,
    logs,
    restart,
    rollback,
    scale,
    status,
    statuses,
)
from plumbline.platform.spec.appspec import build_spec

PLUMBER_R = """\
#* Determine if an integer is odd or even
#* @serializer text
#* @get /parity
function(int) {
  if (as.integer(int) %% 2 == 0) "even" else "odd"
}

#* One item
#* @get /items/<id:int>
function(id) {
  list(id = id)
}
"""
NS = "shop"
pytestmark = pytest.mark.slow  # runs Rscript (the syntax check) and an API server
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
FAST = {"poll_interval": 0.05}


@pytest.fixture
def cluster(api_server, tmp_path):
    # Through a kubeconfig file, as a user would connect; its context names the namespace.
    return connect(kubeconfig=str(api_server.kubeconfig(tmp_path, namespace=NS)))


def make_spec(
    tmp_path, name="parity", image="registry.example/parity:v1", source=PLUMBER_R, **flags
):
    app = tmp_path / name
    app.mkdir(exist_ok=True)
    (app / "plumber.R").write_text(source)
    return build_spec(
        app / "plumber.R",
        {
            "name": name,
            "namespace": NS,
            "image": image,
            "replicas": 2,
            "ingress.host": "parity.example.com",
            **flags,
        },
    )


def deployment_image(api_server, name="parity"):
    return api_server.get(f"{DEPLOYMENTS}/{name}")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]


@pytest.fixture
def controllers(api_server):
    with PlayedControllers(api_server.url, NS, "parity") as played:
        yield played
    assert not played.errors


def writes(requests) -> list:
    return [r for r in requests if r.method not in ("GET", "HEAD")]


def test_deploy_applies_everything_then_a_second_deploy_changes_nothing(
    api_server, cluster, controllers, tmp_path
):
    spec = make_spec(tmp_path)
    out = []
    first = deploy(spec, cluster, out=out.append, **FAST)
    assert first.ok, out
    assert {a.kind for a in first.applied} >= {"ConfigMap", "Service", "Deployment", "Ingress"}
    assert all(a.action == "created" for a in first.applied)
    assert "rollout of parity complete (revision 1)" in first.verdict
    assert any(line.startswith("parity: 2/2 updated, 2/2 ready, 2/2 available") for line in out)
    # What the API server received: one server-side apply per object, each creating it (no
    # POST), its body the rendered manifest, as field manager plumbline, never forced.
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in render(spec)}
    applies = [
        r
        for r in writes(api_server.client_requests())
        if r.headers["Content-Type"] == "application/apply-patch+yaml"
    ]
    assert len(applies) == len(manifests)
    assert all(api_server.created_by_apply(r) for r in applies)
    assert {(r.data["kind"], r.data["metadata"]["name"]): r.data for r in applies} == manifests
    assert all(r.method == "PATCH" and r.params == {"fieldManager": "plumbline"} for r in applies)
    others = [r for r in writes(api_server.client_requests()) if r not in applies]
    assert [(r.method, r.headers["Content-Type"]) for r in others] == [
        ("PATCH", "application/merge-patch+json")
    ], "only the ConfigMap's owner is linked"

    before = len(api_server.requests())
    second = deploy(spec, cluster, out=out.append, **FAST)
    assert second.ok
    assert [a.action for a in second.applied] == ["unchanged"] * len(first.applied)
    assert "0 of" in second.verdict
    again = writes([r for r in api_server.client_requests() if r.id >= before])
    assert len(again) == len(manifests)
    assert not any(api_server.created_by_apply(r) for r in again)
    assert all(
        r.method == "PATCH"
        and r.params == {"fieldManager": "plumbline"}
        and r.headers["Content-Type"] == "application/apply-patch+yaml"
        for r in again
    )


def test_deploy_into_a_missing_namespace_reports_the_api_servers_reason(
    api_server, cluster, tmp_path
):
    api_server.emulator.namespaces = {"default"}  # "shop" does not exist on this server
    with pytest.raises(ApplyError) as refused:
        deploy(make_spec(tmp_path), cluster, out=lambda _: None, wait=False)
    assert 'namespaces "shop" not found' in str(refused.value)
    # The 404 is reported as it is: no other request tries to create the object instead.
    assert [r.method for r in writes(api_server.client_requests())] == ["PATCH"]
    assert api_server.names(f"/api/v1/namespaces/{NS}/configmaps") == set()


CODE_ROUTES = (
    '\n#* @plumber\nfunction(pr) {\n  pr |> plumber::pr_get("/x", function() 1) |>\n'
    '    plumber::pr_mount("/api", plumber::pr() |>\n'
    '      plumber::pr_get("/v/<n:int>", function(n) n))\n}\n'
)


def test_deploy_routes_what_r_code_adds(api_server, cluster, controllers, tmp_path):
    out = []
    assert deploy(
        make_spec(tmp_path, source=PLUMBER_R + CODE_ROUTES), cluster, out=out.append, **FAST
    ).ok
    assert not [line for line in out if line.startswith("warning: ")], out
    ingress = api_server.get(f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/parity")
    paths = {(p["path"], p["pathType"]) for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    # plumber's own route table: the routes the @plumber block adds, the mounted router's
    # prefix (it answers everything under it)
    assert {
        ("/parity", "Exact"),
        ("/items", "Prefix"),
        ("/x", "Exact"),
        ("/api", "Prefix"),
    } <= paths


def test_deploy_warns_when_r_cannot_tell_the_routes(cluster, controllers, tmp_path):
    # R cannot load the file here (a package only the image has): annotations only, warned
    source = "library(notInstalledHere)\n" + PLUMBER_R + CODE_ROUTES
    out = []
    assert deploy(make_spec(tmp_path, source=source), cluster, out=out.append, **FAST).ok
    warnings = [line for line in out if line.startswith("warning: ")]
    assert "R could not load it here" in warnings[0], out
    assert "`#* @plumber` block may add routes" in warnings[1], out


def test_a_changed_plumber_file_is_configured_and_rolled_out(
    api_server, cluster, controllers, tmp_path
):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    changed = make_spec(tmp_path, source=PLUMBER_R + '\n#* @get /ping\nfunction() "pong"\n')
    result = deploy(changed, cluster, out=lambda _: None, **FAST)
    assert result.ok
    actions = {a.kind: a.action for a in result.applied}
    assert actions["Deployment"] == "configured" and actions["Ingress"] == "configured"
    assert "revision 2" in result.verdict
    # Each content-named ConfigMap is owned by the ReplicaSet mounting it, so the garbage
    # collector removes it with that ReplicaSet once it leaves the revision history.
    replicasets = api_server.get(f"/apis/apps/v1/namespaces/{NS}/replicasets")["items"]
    mounted_by = {
        rs["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]: rs["metadata"]["uid"]
        for rs in replicasets
    }
    config_maps = api_server.get(f"/api/v1/namespaces/{NS}/configmaps")["items"]
    assert len(config_maps) == 2
    for config_map in config_maps:
        owners = config_map["metadata"]["ownerReferences"]
        assert [(o["kind"], o["uid"]) for o in owners] == [
            ("ReplicaSet", mounted_by[config_map["metadata"]["name"]])
        ]


def test_status_reports_replicas_revision_and_endpoint_urls(cluster, controllers, tmp_path):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    st = status(cluster, "parity")
    assert (st.desired, st.updated, st.ready, st.available) == (2, 2, 2, 2)
    assert st.revision == "1" and st.healthy
    assert st.images == ["registry.example/parity:v1"]
    assert "GET http://parity.example.com/parity" in st.urls
    assert "GET http://parity.example.com/items/<id:int>" in st.urls


def test_statuses_list_every_app_without_a_round_of_calls_per_app(
    api_server, cluster, controllers, tmp_path
):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    for name in ("beta", "alpha"):  # not rolled out; no Ingress: reached through the Service
        spec = make_spec(tmp_path, name=name, **{"ingress.enabled": False})
        assert deploy(spec, cluster, out=lambda _: None, wait=False).ok
    before = len(api_server.client_requests())
    listed = statuses(cluster)
    sent = api_server.client_requests()[before:]
    assert listed == [status(cluster, name) for name in ("alpha", "beta", "parity")]
    assert listed[2].healthy and listed[0].state == "waiting"
    assert "GET http://parity.example.com/parity" in listed[2].urls
    assert "GET http://alpha.shop.svc.cluster.local:80/parity" in listed[0].urls
    # One list each of Deployments, Ingresses and Services; per app only the read of the
    # ConfigMap its pods mount plumber.R from (apps of plumbline server have none).
    lists = sorted(r.resource.plural for r in sent if r.name is None)
    assert lists == ["deployments", "ingresses", "services"]
    assert sorted(r.resource.plural for r in sent if r.name is not None) == ["configmaps"] * 3


def test_status_of_an_unknown_app_says_so(cluster):
    with pytest.raises(OperationError, match="no deployment nope in namespace shop"):
        status(cluster, "nope")


def test_restart_stamps_the_pod_template_and_waits_for_new_pods(
    api_server, cluster, controllers, tmp_path
):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    out = []
    result = restart(cluster, "parity", out=out.append, **FAST)
    assert result.ok and result.revision == "2", out
    template = api_server.get(f"{DEPLOYMENTS}/parity")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    patch = [
        r
        for r in api_server.requests()
        if r.method == "PATCH"
        and r.headers["Content-Type"] == "application/merge-patch+json"
        and r.url.path == f"{DEPLOYMENTS}/parity"
    ]
    assert patch, "the restart is a patch of the Deployment itself"
    assert out[-1].startswith("parity: 2/2 updated, 2/2 ready, 2/2 available")
    pods = api_server.get(f"/api/v1/namespaces/{NS}/pods")["items"]
    hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in pods}
    assert len(pods) == 2 and len(hashes) == 1, "all pods were replaced by the new revision"


def test_scale_goes_through_the_scale_subresource(api_server, cluster, controllers, tmp_path):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    result = scale(cluster, "parity", 4, out=lambda _: None, **FAST)
    assert result.ok
    assert api_server.get(f"{DEPLOYMENTS}/parity")["spec"]["replicas"] == 4
    assert any(
        r.method == "PATCH" and r.url.path == f"{DEPLOYMENTS}/parity/scale"
        for r in api_server.requests()
    )
    assert status(cluster, "parity").available == 4
    with pytest.raises(OperationError, match="must be 0 or more"):
        scale(cluster, "parity", -1)


def test_rollback_puts_an_earlier_template_back(api_server, cluster, controllers, tmp_path):
    quiet = {"out": lambda _: None, **FAST}
    assert deploy(make_spec(tmp_path), cluster, **quiet).ok
    assert deploy(make_spec(tmp_path, image="registry.example/parity:v2"), cluster, **quiet).ok
    assert deployment_image(api_server) == "registry.example/parity:v2"

    first_template = next(
        rs
        for rs in api_server.get(f"/apis/apps/v1/namespaces/{NS}/replicasets")["items"]
        if rs["metadata"]["annotations"][REVISION] == "1"
    )["spec"]["template"]
    before = len(api_server.requests())
    result = rollback(cluster, "parity", **quiet)  # to the revision before the current one
    assert result.ok and result.revision == "3"  # the old template comes back as a new revision
    assert deployment_image(api_server) == "registry.example/parity:v1"
    labels = api_server.get(f"{DEPLOYMENTS}/parity")["spec"]["template"]["metadata"]["labels"]
    assert "pod-template-hash" not in labels
    # What the API server received: one forced apply of the Deployment, carrying revision 1's
    # pod template without the ReplicaSet's own label, as field manager plumbline.
    sent = writes([r for r in api_server.client_requests() if r.id >= before])
    assert [(r.method, r.url.path, r.headers["Content-Type"]) for r in sent] == [
        ("PATCH", f"{DEPLOYMENTS}/parity", "application/apply-patch+yaml")
    ]
    assert sent[0].params == {"fieldManager": "plumbline", "force": "true"}
    expected = copy.deepcopy(first_template)
    del expected["metadata"]["labels"]["pod-template-hash"]
    assert sent[0].data["spec"]["template"] == expected
    assert REVISION not in (sent[0].data["metadata"].get("annotations") or {})

    assert rollback(cluster, "parity", to_revision=2, **quiet).ok
    assert deployment_image(api_server) == "registry.example/parity:v2"
    with pytest.raises(OperationError, match="revision 9 of parity not found"):
        rollback(cluster, "parity", to_revision=9)


def test_delete_removes_the_apps_objects_and_nothing_else(api_server, cluster, tmp_path):
    quiet = {"out": lambda _: None, "wait": False}
    deploy(make_spec(tmp_path), cluster, **quiet)
    deploy(
        make_spec(tmp_path, name="other", **{"ingress.host": "other.example.com"}), cluster, **quiet
    )
    # Not plumbline's, though named like the app and carrying its instance label.
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "parity-notes",
                "namespace": NS,
                "labels": {"app.kubernetes.io/instance": "parity"},
            },
            "data": {"a": "b"},
        }
    )

    out = []
    deleted = delete(cluster, "parity", out=out.append)
    assert {ref.split("/")[0] for ref in deleted} == {
        "ingress",
        "networkpolicy",
        "poddisruptionbudget",
        "service",
        "deployment",
        "configmap",
    }
    assert api_server.get(f"{DEPLOYMENTS}/parity") is None
    assert api_server.names(f"/api/v1/namespaces/{NS}/services") == {"other"}
    assert api_server.names(f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses") == {"other"}
    config_maps = api_server.names(f"/api/v1/namespaces/{NS}/configmaps")
    assert "parity-notes" in config_maps
    assert any(name.startswith("other-") for name in config_maps)
    assert not any(name.startswith("parity-") and name != "parity-notes" for name in config_maps)
    assert delete(cluster, "parity", out=out.append) == []  # idempotent


def test_logs_prefix_every_line_with_its_pod(cluster, controllers, tmp_path):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    out = []
    assert logs(cluster, "parity", out=out.append) == 4
    pods = sorted({line.split("]")[0][1:] for line in out})
    assert len(pods) == 2
    for line in out:
        pod = line.split("]")[0][1:]
        assert line.startswith(f"[{pod}] ")
    assert f"[{pods[0]}] GET /parity 200 (served by {pods[0]})" in out


@pytest.mark.parametrize(
    "broken, where",
    [
        ('#* @get /parity\nfunction(int) {\n  if (int > 1 "odd"\n}\n', ":3:"),
        ("#* @get\nfunction() 1\n", ":1:"),
    ],
)
def test_a_broken_plumber_file_is_refused_before_any_request(
    api_server, cluster, tmp_path, broken, where
):
    spec = make_spec(tmp_path)
    spec.plumber_file.write_text(broken)  # edited after the spec was built
    with pytest.raises(InvalidPlumberFile) as refused:
        deploy(spec, cluster, out=lambda _: None)
    assert f"{spec.plumber_file}{where}" in str(refused.value)
    assert api_server.requests() == []


def test_a_crash_loop_is_detected_and_rolled_back(api_server, cluster, controllers, tmp_path):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    out = []
    result = deploy(
        make_spec(tmp_path, image="registry.example/parity:crash"), cluster, out=out.append, **FAST
    )
    assert not result.ok
    assert result.rollout.reason.endswith("CrashLoopBackOff")
    text = "\n".join(out)
    assert "exit code 1" in text  # the container's last exit
    assert "BackOff: Back-off restarting failed container" in text  # the pod's events
    assert result.rolled_back_to == "1"
    assert "rolled back to revision 1, which is serving again" in result.verdict
    assert deployment_image(api_server) == "registry.example/parity:v1"


def test_packages_that_cannot_be_installed_fail_the_rollout_with_the_init_log(
    api_server, cluster, controllers, tmp_path
):
    """The init container installs the app's R packages; when it fails, the rollout fails,
    is rolled back, and the deploy's output says why in R's words (its log's tail)."""
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    (tmp_path / "parity" / "manifest.json").write_text(
        '{"version": 1, "packages": {"ranger": {"Source": "CRAN", '
        '"description": {"Version": "0.16.0"}}}}'
    )
    out = []
    result = deploy(
        make_spec(tmp_path, image="registry.example/parity:initcrash"),
        cluster,
        out=out.append,
        **FAST,
    )
    assert not result.ok and result.rollout.reason.endswith("CrashLoopBackOff")
    text = "\n".join(out)
    assert "container prepare last exit: Error, exit code 6" in text
    assert "init container prepare log:" in text
    assert "R said: package 'ranger' is not available" in text
    assert result.rolled_back_to == "1"
    assert deployment_image(api_server) == "registry.example/parity:v1"


def test_a_progress_deadline_is_detected_and_rolled_back(
    api_server, cluster, controllers, tmp_path
):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    out = []
    result = deploy(
        make_spec(tmp_path, image="registry.example/parity:stuck"), cluster, out=out.append, **FAST
    )
    assert not result.ok
    assert result.rollout.reason.startswith("progress deadline exceeded")
    assert "has timed out progressing" in "\n".join(out)
    assert result.rolled_back_to == "1"
    assert deployment_image(api_server) == "registry.example/parity:v1"


def test_pods_never_ready_within_the_deadline_fail_and_stay_when_rollback_is_off(
    api_server, cluster, controllers, tmp_path
):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    out = []
    result = deploy(
        make_spec(tmp_path, image="registry.example/parity:silent"),
        cluster,
        out=out.append,
        timeout=1.5,
        auto_rollback=False,
        **FAST,
    )
    assert not result.ok and result.rolled_back_to is None
    assert result.rollout.reason.startswith("pods not ready within 1.5s")
    assert "ContainerCreating" in "\n".join(out)
    assert "automatic rollback disabled" in result.verdict
    assert "`plumbline rollback parity` returns to revision 1" in result.verdict
    assert deployment_image(api_server) == "registry.example/parity:silent"


def test_a_failed_first_deploy_has_nothing_to_roll_back_to(
    api_server, cluster, controllers, tmp_path
):
    result = deploy(
        make_spec(tmp_path, image="registry.example/parity:crash"),
        cluster,
        out=lambda _: None,
        **FAST,
    )
    assert not result.ok
    assert (
        "no earlier healthy revision to roll back to: it is the app's first deploy"
        in result.verdict
    )
    assert api_server.get(f"{DEPLOYMENTS}/parity") is not None


def test_logs_follow_reads_all_pods_side_by_side(api_server, cluster, controllers, tmp_path):
    assert deploy(make_spec(tmp_path), cluster, out=lambda _: None, **FAST).ok
    out = []
    assert logs(cluster, "parity", follow=True, tail=10, out=out.append) == 4
    assert len({line.split("]")[0] for line in out}) == 2
    followed = [r for r in api_server.requests() if r.url.path.endswith("/log")]
    assert len(followed) == 2
    assert all(
        r.params == {"container": "api", "tailLines": "10", "follow": "true"} for r in followed
    )


def test_an_apply_conflict_is_refused_unless_forced(api_server, cluster, tmp_path):
    quiet = {"out": lambda _: None, "wait": False}
    deploy(make_spec(tmp_path), cluster, **quiet)

    def conflict(request):  # what an API server answers when another manager owns a field
        if request.params.get("force") == "true":
            raise NotImplementedError  # forced: let the emulator apply it as usual
        return kmock.Response(
            status=409,
            payload={
                "apiVersion": "v1",
                "kind": "Status",
                "status": "Failure",
                "reason": "Conflict",
                "code": 409,
                "message": 'Apply failed with 1 conflict: conflict with "kubectl-edit" '
                'using v1: .spec.ports[name="http"].port',
            },
        )

    api_server.emulator[kmock.method.PATCH, kmock.resource("v1/services")] << conflict
    with pytest.raises(ApplyError) as refused:
        deploy(make_spec(tmp_path), cluster, **quiet)
    assert 'service/parity: Apply failed with 1 conflict: conflict with "kubectl-edit"' in str(
        refused.value
    )
    assert "re-run with --force-conflicts" in str(refused.value)

    assert deploy(make_spec(tmp_path), cluster, force_conflicts=True, **quiet).ok
    forced = [r for r in api_server.requests() if r.method == "PATCH"][
        -len(render(make_spec(tmp_path))) :
    ]
    assert all(r.params == {"fieldManager": "plumbline", "force": "true"} for r in forced)
