"""AppSpec -> Kubernetes objects (plain dicts), the way an experienced operator writes them.

`render(spec)` returns, in apply order: ConfigMap (the app's files) or, for an app published
to plumbline server, the Secret with the token its pods fetch the bundle with; Service,
Deployment, PodDisruptionBudget, HorizontalPodAutoscaler, Ingress, NetworkPolicy (each when
the spec asks for it). The Helm chart in charts/plumbline-app produces the same objects.

An app with R packages (a manifest.json or renv.lock) or a fetched bundle gets an init
container, `plumbline prepare` in the same image: it fetches the bundle (sha256 checked)
into an emptyDir, installs the packages the image lacks into the package cache volume (a
PVC shared by the apps, or an emptyDir), and the app container reads both read-only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from plumbline.runtime import settings
from plumbline.platform.spec.ingress import ingress_paths
from plumbline.platform.spec.profiles import apply_overrides
from plumbline.platform.spec.serve import pod_placement, serve_arguments, serve_environment
from plumbline.platform.spec.appspec import (
    APP_DIR,
    PACKAGE_CACHE_DIR,
    RUNTIME_PORT,
    RUNTIME_USER,
    SERVER_POD_LABELS,
    AppSpec,
    SpecError,
)

CONFIGMAP_LIMIT = 1024 * 1024  # bytes; etcd refuses larger objects
PLUMBER_KEY = "plumber.R"
CONTAINER_NAME = "api"
INIT_CONTAINER_NAME = "prepare"
BUNDLE_MOUNT = "/bundle"  # the fetched bundle's emptyDir in the init container
TOKEN_DIR = "/var/run/plumbline"  # the fetch token, a file only the init container mounts
TOKEN_KEY = "token"
# A key-only app's key digests: the same Secret, a different file, only the app mounts it.
ACCESS_DIR = "/var/run/plumbline-access"
ACCESS_KEY = "access-keys"
PORT_NAME = "http"
SERVICE_PORT = 80
LIVENESS_PATH = "/livez"  # answered by the HTTP layer, never touches R
READINESS_PATH = "/readyz"  # 200 once a worker has loaded, 503 while draining
BUNDLE_ANNOTATION = "plumbline.dev/bundle-sha256"
MANAGED_BY = "plumbline"
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclass(frozen=True)
class Bundle:
    """plumber.R and its files as ConfigMap content, with the hash that names it."""

    data: dict[str, str]  # key -> UTF-8 text
    binary_data: dict[str, str]  # key -> base64
    items: list[dict[str, str]]  # key -> path under /app
    sha256: str
    size: int

    @property
    def short_hash(self) -> str:
        return self.sha256[:10]


def go_json(value: Any) -> str:
    """JSON exactly as Go's encoding/json writes it (Helm's toJson), so hashes agree."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.replace("\\b", "\\u0008").replace("\\f", "\\u000c")


def config_key(relative_path: str) -> str:
    """ConfigMap keys cannot hold '/': `www/index.html` is stored as `www__index.html`."""
    return relative_path.replace("/", "__")


def make_bundle(spec: AppSpec) -> Bundle:
    files = [(PLUMBER_KEY, spec.plumber_file)]
    files += [(f.relative_to(spec.app_dir).as_posix(), f) for f in spec.extra_files]
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    items = []
    for relative, path in files:
        key = config_key(relative)
        if not _CONFIG_KEY.match(key) or len(key) > 253:
            raise SpecError(
                f"{path}: the name {relative!r} cannot be a ConfigMap key (letters, "
                "digits, '-', '_' and '.' only); rename it or use the custom-image "
                "route (files_in_image)"
            )
        if key in data or key in binary:
            raise SpecError(f"{path}: two files map to the ConfigMap key {key!r}")
        raw = path.read_bytes()
        try:
            data[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(raw).decode("ascii")
        items.append({"key": key, "path": relative})
    size = sum(len(k) + len(v.encode("utf-8")) for k, v in data.items()) + sum(
        len(k) + len(v) for k, v in binary.items()
    )
    if size > CONFIGMAP_LIMIT:
        raise SpecError(_too_big(spec, size))
    hashed = go_json(data) if not binary else go_json(data) + go_json(binary)
    return Bundle(
        data,
        binary,
        sorted(items, key=lambda i: i["path"]),
        hashlib.sha256(hashed.encode("utf-8")).hexdigest(),
        size,
    )


def _too_big(spec: AppSpec, size: int) -> str:
    return (
        f"{spec.plumber_file}: the app's files come to {size / 2**20:.2f} MiB, over the "
        f"1 MiB a ConfigMap can hold. Use the custom-image route: bake the files into an "
        f"image built FROM the runtime image,\n"
        f"    FROM {spec.image}\n    COPY --chown={RUNTIME_USER} . {APP_DIR}/\n"
        f'push it, and deploy with --image YOUR-IMAGE --files-in-image (or image = "..." '
        f"and files_in_image = true in plumbline.toml)."
    )


# ---- labels -----------------------------------------------------------------------------


def selector_labels(spec: AppSpec) -> dict[str, str]:
    """Exactly this app's pods: the Deployment, Service, PDB and spread constraints use these."""
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/instance": spec.name}


def app_version(spec: AppSpec) -> str:
    """The plumber.R's @apiVersion, else the image tag, as a label value."""
    version = spec.api.info.version if spec.api and spec.api.info.version else ""
    if not version:
        reference = spec.image.split("@", 1)[0]
        last = reference.rsplit("/", 1)[-1]
        version = last.rsplit(":", 1)[1] if ":" in last else "latest"
    version = re.sub(r"[^A-Za-z0-9._-]", "-", version)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", version) or "unknown"


def common_labels(spec: AppSpec) -> dict[str, str]:
    return {
        **spec.labels,
        **selector_labels(spec),
        "app.kubernetes.io/version": app_version(spec),
        "app.kubernetes.io/component": "api",
        "app.kubernetes.io/part-of": spec.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def _metadata(spec: AppSpec, name: str | None = None, annotations=None) -> dict:
    meta = {"name": name or spec.name, "namespace": spec.namespace, "labels": common_labels(spec)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def configmap_name(spec: AppSpec, bundle: Bundle) -> str:
    """Named by content: a new plumber.R is a new immutable ConfigMap, and a rollback to an
    older ReplicaSet mounts the files that revision ran with."""
    return f"{spec.name}-{bundle.short_hash}"


# ---- objects ----------------------------------------------------------------------------


def configmap(spec: AppSpec, bundle: Bundle) -> dict:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, configmap_name(spec, bundle)),
        "immutable": True,
        "data": dict(sorted(bundle.data.items())),
    }
    if bundle.binary_data:
        obj["binaryData"] = dict(sorted(bundle.binary_data.items()))
    return obj


def serve_command(spec: AppSpec) -> list[str]:
    """The container's command: the app's one `plumbline serve` command line, as in a pod."""
    return [
        "plumbline",
        *serve_arguments(
            spec, pod_placement(APP_DIR, PLUMBER_KEY, RUNTIME_PORT, PACKAGE_CACHE_DIR)
        ),
    ]


def token_secret_name(spec: AppSpec) -> str:
    assert spec.bundle_source is not None
    return f"{spec.name}-bundle-{spec.bundle_source.sha256[:10]}"


def token_secret(spec: AppSpec) -> dict:
    """The fetch token of one version: a short-lived token the server renews in place
    (the pod template names the Secret, so a renewal rolls nothing out). A key-only app's
    key digests live here too, so a change of keys rolls nothing out either: the kubelet
    rewrites the mounted file and the runtime re-reads it."""
    source = spec.bundle_source
    assert source is not None
    data = {TOKEN_KEY: source.token}
    if source.access_keys is not None:
        data[ACCESS_KEY] = "".join(digest + "\n" for digest in source.access_keys)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(spec, token_secret_name(spec)),
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def _keys_in_secret(spec: AppSpec) -> bool:
    return spec.bundle_source is not None and spec.bundle_source.access_keys is not None


def prepare_command(spec: AppSpec) -> list[str]:
    """The init container's `plumbline prepare` command line."""
    source = spec.bundle_source
    if source is not None:
        command = [
            "plumbline",
            "prepare",
            f"{BUNDLE_MOUNT}/app",
            "--fetch",
            source.url,
            "--sha256",
            source.sha256,
            "--token-file",
            f"{TOKEN_DIR}/{TOKEN_KEY}",
        ]
    else:
        command = ["plumbline", "prepare", APP_DIR]
    command += ["--package-cache", PACKAGE_CACHE_DIR]
    if spec.packages.repos:
        command += ["--repos", ",".join(spec.packages.repos)]
    return command


def _security_context() -> dict:
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def init_container(spec: AppSpec) -> dict | None:
    """Fetch the bundle and/or install the app's R packages before the app starts."""
    if spec.bundle_source is None and spec.package_file is None:
        return None
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    env = [{"name": "HOME", "value": "/tmp"}]  # R and its installs may write under ~
    if spec.bundle_source is not None:
        mounts.insert(0, {"name": "app-files", "mountPath": BUNDLE_MOUNT})
        mounts.append({"name": "bundle-token", "mountPath": TOKEN_DIR, "readOnly": True})
    else:
        mounts.insert(0, {"name": "app-files", "mountPath": APP_DIR, "readOnly": True})
    if spec.package_file is not None:
        mounts.append({"name": "package-cache", "mountPath": PACKAGE_CACHE_DIR})
    return {
        "name": INIT_CONTAINER_NAME,
        "image": spec.image_ref,
        "imagePullPolicy": image_pull_policy(spec),
        "command": prepare_command(spec),
        "env": env,
        "resources": container_resources(spec),
        "securityContext": _security_context(),
        "volumeMounts": mounts,
    }


def image_pull_policy(spec: AppSpec) -> str:
    """A digest names one image for good: no need to ask the registry again."""
    return "IfNotPresent" if spec.image_digest or "@" in spec.image else "Always"


def network_policy(spec: AppSpec) -> dict:
    """Traffic to the app's pods only from the ingress controller's namespace, plumbline
    server's pods and the listed namespaces, and only to the app's port."""
    policy = spec.network_policy

    def namespace(name: str) -> dict:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    sources = [namespace(policy.ingress_namespace)]
    sources += [namespace(ns) for ns in policy.namespaces if ns != policy.ingress_namespace]
    if policy.server_namespace:
        sources.append(
            {
                **namespace(policy.server_namespace),
                "podSelector": {"matchLabels": dict(SERVER_POD_LABELS)},
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(spec)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": PORT_NAME}]}],
        },
    }


def _probe(spec: AppSpec, path: str, failure_threshold: int) -> dict:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": spec.probes.period_seconds,
        "timeoutSeconds": spec.probes.timeout_seconds,
        "failureThreshold": failure_threshold,
    }


def container_resources(spec: AppSpec) -> dict:
    r = spec.resources
    limits = {"cpu": r.cpu_limit, "memory": r.memory_limit}
    if r.nvidia_gpus:
        limits["nvidia.com/gpu"] = str(r.nvidia_gpus)
    if r.amd_gpus:
        limits["amd.com/gpu"] = str(r.amd_gpus)
    return {"requests": {"cpu": r.cpu_request, "memory": r.memory_request}, "limits": limits}


def container_env(spec: AppSpec) -> list[dict]:
    plain = serve_environment(spec)
    if _keys_in_secret(spec):
        plain[settings.BY_NAME["access_keys_file"].env] = f"{ACCESS_DIR}/{ACCESS_KEY}"
    env = [{"name": k, "value": v} for k, v in plain.items()]
    env += [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for var, (secret, key) in spec.secret_env.items()
    ]
    return env


def user_volumes(spec: AppSpec) -> tuple[list[dict], list[dict]]:
    volumes, mounts = [], []
    for v in spec.volumes:
        if v.kind == "pvc":
            source = {"persistentVolumeClaim": {"claimName": v.source, "readOnly": v.read_only}}
        elif v.kind == "secret":
            source = {"secret": {"secretName": v.source}}
        elif v.kind == "configmap":
            source = {"configMap": {"name": v.source}}
        else:
            csi: dict[str, Any] = {"driver": v.source, "readOnly": v.read_only}
            if v.csi_attributes:
                csi["volumeAttributes"] = dict(v.csi_attributes)
            if v.csi_secret:
                csi["nodePublishSecretRef"] = {"name": v.csi_secret}
            source = {"csi": csi}
        volumes.append({"name": v.name, **source})
        mounts.append({"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only})
    return volumes, mounts


def pod_affinity(spec: AppSpec) -> dict:
    """Profile placement constraints offering several values: the pod may go to any of them."""
    if not spec.node_affinity:
        return {}
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": k, "operator": "In", "values": list(v)}
                            for k, v in sorted(spec.node_affinity.items())
                        ]
                    }
                ]
            }
        }
    }


def _secret_file_volume(name: str, secret: str, key: str) -> dict:
    """One key of a Secret as a file of the same name, readable by the runtime's group."""
    return {
        "name": name,
        "secret": {
            "secretName": secret,
            "defaultMode": 0o440,
            "items": [{"key": key, "path": key}],
        },
    }


def deployment(spec: AppSpec, bundle: Bundle | None) -> dict:
    volumes = [{"name": "tmp", "emptyDir": {"sizeLimit": spec.tmp_size}}]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    annotations = dict(spec.annotations)
    if spec.bundle_source is not None:
        # Fetched by the init container into an emptyDir; a new version changes the sha256.
        annotations[BUNDLE_ANNOTATION] = spec.bundle_source.sha256
        volumes.insert(0, {"name": "app-files", "emptyDir": {}})
        volumes.append(_secret_file_volume("bundle-token", token_secret_name(spec), TOKEN_KEY))
        mounts.insert(
            0, {"name": "app-files", "mountPath": APP_DIR, "subPath": "app", "readOnly": True}
        )
        if _keys_in_secret(spec):  # a whole-folder mount: the kubelet updates it in place
            volumes.append(_secret_file_volume("access-keys", token_secret_name(spec), ACCESS_KEY))
            mounts.append({"name": "access-keys", "mountPath": ACCESS_DIR, "readOnly": True})
    elif bundle is not None:
        # A changed plumber.R changes the pod template, so it rolls out by itself.
        annotations[BUNDLE_ANNOTATION] = bundle.sha256
        volumes.insert(
            0,
            {
                "name": "app-files",
                "configMap": {
                    "name": configmap_name(spec, bundle),
                    "items": bundle.items,
                    "defaultMode": 0o444,
                },
            },
        )
        mounts.insert(0, {"name": "app-files", "mountPath": APP_DIR, "readOnly": True})
    if spec.package_file is not None:
        claim = spec.packages.cache_claim
        volumes.append(
            {
                "name": "package-cache",
                **(
                    {"persistentVolumeClaim": {"claimName": claim}}
                    if claim
                    else {"emptyDir": {"sizeLimit": spec.packages.cache_size}}
                ),
            }
        )
        mounts.append({"name": "package-cache", "mountPath": PACKAGE_CACHE_DIR, "readOnly": True})
    extra_volumes, extra_mounts = user_volumes(spec)
    container = {
        "name": CONTAINER_NAME,
        "image": spec.image_ref,
        "imagePullPolicy": image_pull_policy(spec),
        "command": serve_command(spec),
        "workingDir": APP_DIR,
        "ports": [{"name": PORT_NAME, "containerPort": RUNTIME_PORT, "protocol": "TCP"}],
        "resources": container_resources(spec),
        "startupProbe": _probe(spec, READINESS_PATH, spec.probes.startup_failure_threshold),
        "livenessProbe": _probe(spec, LIVENESS_PATH, spec.probes.failure_threshold),
        "readinessProbe": _probe(spec, READINESS_PATH, spec.probes.failure_threshold),
        "securityContext": _security_context(),
        "volumeMounts": mounts + extra_mounts,
    }
    env = container_env(spec)
    if env:
        container["env"] = env
    if spec.rollout.drain_delay_seconds:
        # The endpoint removal reaches every node and ingress controller a little late:
        # keep serving for the drain delay before the runtime sees SIGTERM.
        container["lifecycle"] = {
            "preStop": {"exec": {"command": ["sleep", str(spec.rollout.drain_delay_seconds)]}}
        }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": spec.rollout.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNTIME_USER,
            "runAsGroup": RUNTIME_USER,
            "fsGroup": RUNTIME_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(spec)},
            }
        ],
        "containers": [container],
        "volumes": volumes + extra_volumes,
    }
    prepare = init_container(spec)
    if prepare is not None:
        pod_spec["initContainers"] = [prepare]
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in spec.image_pull_secrets]
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.node_affinity:
        pod_spec["affinity"] = pod_affinity(spec)
    template_meta: dict[str, Any] = {"labels": common_labels(spec)}
    if annotations:
        template_meta["annotations"] = annotations
    deploy_spec: dict[str, Any] = {}
    if not spec.autoscaling.enabled:  # else the HPA owns the replica count
        deploy_spec["replicas"] = spec.replicas
    deploy_spec.update(
        {
            "revisionHistoryLimit": spec.rollout.revision_history_limit,
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "selector": {"matchLabels": selector_labels(spec)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": spec.rollout.max_surge,
                    "maxUnavailable": spec.rollout.max_unavailable,
                },
            },
            "template": {"metadata": template_meta, "spec": pod_spec},
        }
    )
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, annotations=spec.annotations),
        "spec": deploy_spec,
    }
    if spec.deployment_overrides:
        apply_overrides(obj, spec.deployment_overrides)
    return obj


def service(spec: AppSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(spec),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def ingress(spec: AppSpec) -> dict:
    backend = {"service": {"name": spec.name, "port": {"name": PORT_NAME}}}
    rule: dict[str, Any] = {
        "http": {"paths": [{**p, "backend": backend} for p in ingress_paths(spec)]}
    }
    if spec.ingress.host:
        rule = {"host": spec.ingress.host, **rule}
    ing_spec: dict[str, Any] = {}
    if spec.ingress.class_name:
        ing_spec["ingressClassName"] = spec.ingress.class_name
    if spec.ingress.tls_secret:
        ing_spec["tls"] = [{"hosts": [spec.ingress.host], "secretName": spec.ingress.tls_secret}]
    ing_spec["rules"] = [rule]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(spec, annotations=spec.ingress.annotations),
        "spec": ing_spec,
    }


def pod_disruption_budget(spec: AppSpec) -> dict:
    # maxUnavailable 1 rather than minAvailable 1: with a single replica, minAvailable 1
    # would block every node drain forever; this keeps drains and upgrades possible.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(spec),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(spec)}},
    }


def horizontal_pod_autoscaler(spec: AppSpec) -> dict:
    a = spec.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": a.cpu_utilization},
                    },
                }
            ],
        },
    }


def render(spec: AppSpec) -> list[dict]:
    """Every object of the app, in the order to apply them."""
    bundle = None if spec.files_in_image or spec.bundle_source else make_bundle(spec)
    objects = [configmap(spec, bundle)] if bundle else []
    if spec.bundle_source is not None:
        objects.append(token_secret(spec))
    objects += [service(spec), deployment(spec, bundle)]
    if spec.disruption_budget:
        objects.append(pod_disruption_budget(spec))
    if spec.autoscaling.enabled:
        objects.append(horizontal_pod_autoscaler(spec))
    if spec.ingress.enabled:
        objects.append(ingress(spec))
    if spec.network_policy.enabled:
        objects.append(network_policy(spec))
    return objects


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # no &id001 anchors: each object reads on its own
        return True


def _str(dumper, value: str):
    # Files (plumber.R) read best as literal blocks.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_yaml(objects: list[dict]) -> str:
    """Multi-document YAML, objects in the given order, keys as built (kind first)."""
    return yaml.dump_all(
        objects,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=100,
    )
