"""render(spec): valid for every Kubernetes version, consistent, and what an operator expects."""

from __future__ import annotations


import pytest
import yaml

from platform_manifest_checks import API_WITH_PATHS, by_kind, cross_check, validate_all, write_app
from plumbline.annotations import parse_file
from plumbline.platform.kube.manifests import (
    BUNDLE_ANNOTATION,
    CONFIGMAP_LIMIT,
    ingress_paths,
    render,
    render_yaml,
)
from plumbline.platform.spec.appspec import SpecError, build_spec
from plumbline.runtime.front.app import AppOptions, PlumblineApp
from support import EXAMPLE_DIR as EXAMPLE


def _flags_full() -> dict:
    """A spec that sets everything: every optional object and field appears."""
    return {
        "name": "parity",
        "namespace": "apps",
        "replicas": 3,
        "workers": 4,
        "image": "registry.example.com:5000/team/parity:1.4.2",
        "image_pull_secrets": ["regcred"],
        "resources.cpu_limit": "2",
        "resources.memory_limit": "2Gi",
        "resources.nvidia_gpus": 1,
        "env": {"LOG_LEVEL": "debug"},
        "secret_env": {"DB_PASSWORD": "db:password"},
        "labels": {"team": "data"},
        "annotations": {"prometheus.io/scrape": "true"},
        "node_selector": {"pool": "r"},
        "volumes": [
            {"name": "data", "kind": "pvc", "source": "parity-data", "mount_path": "/data"},
            {
                "name": "blob",
                "kind": "csi",
                "source": "blob.csi.azure.com",
                "mount_path": "/mnt/blob",
                "csi_attributes": {"containerName": "models"},
                "csi_secret": "azure-storage",
            },
            {"name": "creds", "kind": "secret", "source": "api-creds", "mount_path": "/etc/creds"},
        ],
        "ingress.host": "parity.example.com",
        "ingress.class_name": "nginx",
        "ingress.tls_secret": "parity-tls",
        "ingress.annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "120"},
        "request_timeout": 30,
        "max_queue": 50,
        "autoscaling.enabled": True,
        "autoscaling.max_replicas": 6,
    }


@pytest.mark.parametrize(
    "flags",
    [
        {},
        _flags_full(),
        {
            "ingress.path_prefix": "/",
            "files_in_image": True,
            "image": "me/parity:2",
            "disruption_budget": False,
            "rollout.drain_delay_seconds": 0,
        },
    ],
    ids=["defaults", "everything", "custom-image"],
)
def test_platform_manifests_validate_strictly_on_every_version(flags):
    objects = render(build_spec(EXAMPLE / "plumber.R", flags))
    validate_all(objects)
    cross_check(objects)


def test_platform_manifests_strict_validation_catches_a_typo():
    objects = render(build_spec(EXAMPLE / "plumber.R", {}))
    deploy = by_kind(objects)["Deployment"]
    deploy["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(AssertionError, match="readinesProbe"):
        validate_all([deploy])


def test_platform_manifests_deployment_is_what_an_operator_writes():
    spec = build_spec(EXAMPLE / "plumber.R", {"name": "parity", "replicas": 3, "workers": 4})
    objs = by_kind(render(spec))
    deploy = objs["Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert deploy["spec"]["revisionHistoryLimit"] >= 1
    assert deploy["spec"]["progressDeadlineSeconds"] == 600
    assert container["command"][:3] == ["plumbline", "serve", "/app/plumber.R"]
    command = " ".join(container["command"])
    assert "--host 0.0.0.0 --port 8000 --workers 4" in command
    assert "--drain-delay 5 --graceful-timeout 30" in command
    # Security: non-root, read-only root with a writable /tmp for R, nothing extra.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/app"]["readOnly"] is True and "/tmp" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert set(container["resources"]) == {"requests", "limits"}
    # Drain: the preStop pause and the grace period cover drain + graceful timeout.
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert pod["terminationGracePeriodSeconds"] >= 5 + 5 + 30
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    for key in ("name", "instance", "version", "component", "part-of", "managed-by"):
        assert f"app.kubernetes.io/{key}" in labels
    assert labels["app.kubernetes.io/managed-by"] == "plumbline"
    assert objs["Service"]["spec"]["type"] == "ClusterIP"
    assert objs["PodDisruptionBudget"]["spec"] == {
        "maxUnavailable": 1,
        "selector": deploy["spec"]["selector"],
    }


def test_platform_manifests_probe_paths_are_the_runtimes_own_endpoints():
    """/livez and /readyz are answered by the runtime itself, never routed to R."""
    app = PlumblineApp(parse_file(EXAMPLE / "plumber.R"), None, AppOptions())
    container = by_kind(render(build_spec(EXAMPLE / "plumber.R", {})))["Deployment"]["spec"][
        "template"
    ]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] in app.system


def test_platform_manifests_changed_plumber_r_changes_the_pod_template(tmp_path):
    plumber = write_app(tmp_path / "app", "#* @get /a\nfunction() 1\n")
    before = by_kind(render(build_spec(plumber, {})))
    again = by_kind(render(build_spec(plumber, {})))
    assert before == again, "rendering is deterministic"
    plumber.write_text("#* @get /a\nfunction() 2\n", encoding="utf-8")
    after = by_kind(render(build_spec(plumber, {})))

    def hash_of(objs):
        return objs["Deployment"]["spec"]["template"]["metadata"]["annotations"][BUNDLE_ANNOTATION]

    assert hash_of(before) != hash_of(after)
    # A new immutable ConfigMap per content: the old ReplicaSet keeps its own files.
    assert before["ConfigMap"]["metadata"]["name"] != after["ConfigMap"]["metadata"]["name"]
    assert after["ConfigMap"]["immutable"] is True
    assert after["ConfigMap"]["data"]["plumber.R"].endswith("function() 2\n")


def test_platform_manifests_the_whole_folder_ships_as_rsconnect_bundles_it(tmp_path):
    plumber = write_app(
        tmp_path / "app",
        API_WITH_PATHS,
        files={
            "entrypoint.R": "library(jsonlite)\n",
            "www/index.html": "<h1>hi</h1>",
            "model.rds": b"\x1f\x8b\x08\x00binary",
            "R/helpers.R": "f <- function() 1\n",
            "notes.txt": "ignored",
            "data/raw/big.csv": "ignored",
            "data/small.csv": "a\n",
            ".rscignore": "notes.txt\n",
            "data/.rscignore": "raw\n",
            ".git/config": "x",
            "rsconnect/api/x.dcf": "x",
            "renv/library/x": "x",
            "app.Rproj": "x",
            ".Rhistory": "x",
        },
    )
    objs = by_kind(render(build_spec(plumber, {})))
    cm = objs["ConfigMap"]
    assert set(cm["data"]) == {
        "plumber.R",
        "entrypoint.R",
        "www__index.html",
        "R__helpers.R",
        "data__small.csv",
    }
    assert set(cm["binaryData"]) == {"model.rds"}
    # --file ships an ignored file anyway, named relative to the app's folder.
    with_notes = by_kind(render(build_spec(plumber, {"extra_files": ["notes.txt"]})))
    assert "notes.txt" in with_notes["ConfigMap"]["data"]
    items = objs["Deployment"]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
    assert {"key": "www__index.html", "path": "www/index.html"} in items
    validate_all(list(objs.values()))


def test_platform_manifests_refuses_files_outside_the_app_folder(tmp_path):
    (tmp_path / "secret.txt").write_text("x")
    plumber = write_app(tmp_path / "app", "#* @get /a\nfunction() 1\n")
    with pytest.raises(SpecError, match="outside the app folder"):
        build_spec(plumber, {"extra_files": ["../secret.txt"]})


def test_platform_manifests_refuses_a_bundle_over_the_configmap_limit(tmp_path):
    plumber = write_app(
        tmp_path / "app", "#* @get /a\nfunction() 1\n", files={"data.csv": "x" * CONFIGMAP_LIMIT}
    )
    spec = build_spec(plumber, {"extra_files": ["data.csv"]})
    with pytest.raises(SpecError) as refused:
        render(spec)
    message = str(refused.value)
    assert "1 MiB" in message and "FROM ghcr.io/plumbline/runtime" in message
    assert "--files-in-image" in message and "--image" in message
    # The custom-image route it points to works: no ConfigMap, the image's /app is used.
    objs = by_kind(
        render(
            build_spec(
                plumber,
                {"extra_files": ["data.csv"], "image": "me/parity:1", "files_in_image": True},
            )
        )
    )
    assert "ConfigMap" not in objs
    pod = objs["Deployment"]["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert pod["containers"][0]["command"][2] == "/app/plumber.R"


def test_platform_manifests_ingress_rules_follow_the_endpoints(tmp_path):
    plumber = write_app(tmp_path / "app", API_WITH_PATHS)
    spec = build_spec(plumber, {})
    assert ingress_paths(spec) == [
        {"path": "/users", "pathType": "Prefix"},  # /users/<id:int> and .../orders/<order>
        {"path": "/items", "pathType": "Exact"},  # GET and POST collapse into one rule
        {"path": "/health", "pathType": "Exact"},
        {"path": "/static", "pathType": "Prefix"},  # @assets mount
        {"path": "/__docs__", "pathType": "Prefix"},
        {"path": "/openapi.json", "pathType": "Exact"},
    ]
    rules = by_kind(render(spec))["Ingress"]["spec"]["rules"]
    assert "host" not in rules[0]
    served = {p["path"] for p in rules[0]["http"]["paths"]}
    assert not served & {"/metrics", "/livez", "/readyz"}, "internal endpoints stay internal"


def test_platform_manifests_ingress_of_the_example_matches_the_walkthrough():
    spec = build_spec(EXAMPLE / "plumber.R", {"ingress.expose_docs": False})
    assert ingress_paths(spec) == [
        {"path": p, "pathType": "Exact"} for p in ("/parity", "/wait", "/fail", "/quit", "/health")
    ]


def test_platform_manifests_path_prefix_mode_routes_one_prefix(tmp_path):
    plumber = write_app(tmp_path / "app", API_WITH_PATHS)
    spec = build_spec(
        plumber,
        {
            "ingress.path_prefix": "/api",
            "ingress.host": "x.example.com",
            "ingress.tls_secret": "x-tls",
            "ingress.class_name": "nginx",
        },
    )
    ing = by_kind(render(spec))["Ingress"]["spec"]
    assert ing["ingressClassName"] == "nginx"
    assert ing["tls"] == [{"hosts": ["x.example.com"], "secretName": "x-tls"}]
    (rule,) = ing["rules"]
    assert rule["host"] == "x.example.com"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/api", "Prefix")]


def test_platform_manifests_a_catch_all_path_collapses_the_rules(tmp_path):
    plumber = write_app(
        tmp_path / "app",
        """
        #* @get /<name>
        function(name) name

        #* @get /about
        function() "x"
    """,
    )
    assert ingress_paths(build_spec(plumber, {})) == [{"path": "/", "pathType": "Prefix"}]


def test_platform_manifests_hpa_takes_over_the_replica_count():
    objs = by_kind(
        render(
            build_spec(
                EXAMPLE / "plumber.R",
                {
                    "autoscaling.enabled": True,
                    "autoscaling.min_replicas": 3,
                    "autoscaling.max_replicas": 9,
                    "autoscaling.cpu_utilization": 60,
                },
            )
        )
    )
    hpa = objs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 60,
    }
    assert "replicas" not in objs["Deployment"]["spec"]


def test_platform_manifests_yaml_is_stable_multi_document():
    spec = build_spec(EXAMPLE / "plumber.R", {})
    text = render_yaml(render(spec))
    assert text == render_yaml(render(spec))
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == [
        "ConfigMap",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
    ]
    assert docs == render(spec)
    assert "&id" not in text and "*id" not in text, "no YAML anchors"
    assert "  plumber.R: |" in text, "files read as literal blocks"


def test_platform_manifests_example_k8s_folder_is_current():
    """examples/plumber-on-k8s/k8s/ holds what `plumbline render` prints for the example."""
    spec = build_spec(EXAMPLE / "plumber.R", {"name": "parity", "replicas": 3})
    current = (EXAMPLE / "k8s" / "manifests.yaml").read_text(encoding="utf-8")
    assert current == render_yaml(render(spec)), (
        "regenerate: plumbline render examples/plumber-on-k8s/plumber.R --name parity "
        "--replicas 3 --output examples/plumber-on-k8s/k8s/manifests.yaml"
    )


def test_platform_manifests_key_digests_are_refused_unless_sha256():
    from plumbline.platform.spec.appspec import BundleSource

    url, sha = "http://plumbline:3939/__api__/v1/bundles/1/download", "cd" * 32
    assert BundleSource(url, sha, "plb_" + "t" * 40, ()).access_keys == ()  # nobody yet
    with pytest.raises(SpecError, match="access_keys"):
        BundleSource(url, sha, "plb_" + "t" * 40, ("ab" * 32 + "\n",))  # a line more
