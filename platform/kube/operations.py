"""The control plane's Python API: deploy, restart, scale, status, rollback, logs, delete.

Each operation takes a `Cluster` (see plumbline.platform.kube.client.connect) and prints its
progress through `out`; `KubernetesBackend` (backend.py) offers them as the Backend interface.
"""

from __future__ import annotations

import copy
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from plumbline.annotations import AnnotationError, parse_source
from plumbline.endpoints import PlumberFile
from plumbline.platform.kube.apply import Applied, apply_manifests
from plumbline.platform.kube.client import Cluster, KubeError, connect
from plumbline.platform.kube.manifests import PORT_NAME, render
from plumbline.platform.kube.rollout import (
    REVISION_ANNOTATION,
    RolloutResult,
    deployment_state,
    owned_replicasets,
    revision_of,
    watch_rollout,
)
from plumbline.platform.spec.appspec import RUNTIME_PORT, with_api
from plumbline.platform.spec.ingress import ingress_warnings
from plumbline.routes import RouteReportError, route_table
from plumbline.runtime.settings import entrypoint_packages

INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "plumbline"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
DEFAULT_PROGRESS_DEADLINE = 600  # seconds, the Deployment default
# What plumbline creates for an app, deleted front to back (traffic first, data last).
APP_KINDS = (
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),  # the fetch tokens of apps published to plumbline server
)
_R_SYNTAX_CHECK = "invisible(parse(file = commandArgs(TRUE)[1]))"  # the path is data, not code


class OperationError(RuntimeError):
    """An operation that cannot be done; the message says what and why."""


class NoDeployment(OperationError):
    """The namespace holds no Deployment of that name."""


class InvalidPlumberFile(OperationError):
    """A plumber.R refused before anything reached the cluster; the message has file and line."""


# -- validation ---------------------------------------------------------------------------
def check_plumber_file(path: Path) -> PlumberFile:
    """Read the routes as plumber builds them (with R, which parses and loads the file, when
    installed) and check the R syntax; raise InvalidPlumberFile with file:line."""
    try:
        api = route_table(path, entrypoint_packages(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPlumberFile(f"{path}: cannot read: {exc}") from exc
    except (ValueError, RouteReportError) as exc:  # an R syntax error has file:line:column
        raise InvalidPlumberFile(str(exc)) from exc
    if api.source != "plumber":  # R did not parse it: not installed, or it could not load
        check_r_syntax(path)
    return api


def check_r_syntax(path: Path) -> None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise OperationError(f"Rscript not found on PATH: cannot check the R syntax of {path}")
    proc = subprocess.run(
        [rscript, "--vanilla", "-e", _R_SYNTAX_CHECK, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode == 0:
        return
    # "Error in parse(...) : <file>:<line>:<col>: unexpected '}'" then the offending lines.
    found = re.search(r":(\d+):(\d+): ([^\n]+)\n?(.*?)(?:\nExecution halted|\Z)", proc.stderr, re.S)
    if not found:
        raise InvalidPlumberFile(f"{path}: R cannot parse it: {proc.stderr.strip()}")
    line, column, message, context = found.groups()
    raise InvalidPlumberFile(
        f"{path}:{line}:{column}: R syntax error: {message}"
        + (f"\n{context.rstrip()}" if context.strip() else "")
    )


# -- deploy -------------------------------------------------------------------------------
@dataclass
class DeployResult:
    ok: bool
    name: str
    applied: list[Applied]
    rollout: RolloutResult | None = None
    rolled_back_to: str | None = None
    verdict: str = ""


def deploy(
    spec,
    cluster: Cluster | None = None,
    *,
    manifests: list[dict] | None = None,
    wait: bool = True,
    auto_rollback: bool | None = None,
    force_conflicts: bool = False,
    timeout: float | None = None,
    poll_interval: float = 1.0,
    out=print,
) -> DeployResult:
    """Validate, server-side apply, watch the rollout; on failure roll back to the last good one.

    `manifests` defaults to render(spec), with the routes of plumber's route table of the file
    as it is now. `auto_rollback` defaults to spec.rollout.auto_rollback.
    """
    spec = with_api(spec, check_plumber_file(Path(spec.plumber_file)))
    for extra in spec.extra_files:
        if Path(extra).suffix.lower() == ".r":
            check_r_syntax(Path(extra))
    if manifests is None:
        manifests = render(spec)
    for warning in ingress_warnings(spec):
        out(f"warning: {warning}")
    cluster = (
        replace(cluster, namespace=spec.namespace) if cluster else connect(namespace=spec.namespace)
    )
    name = spec.name
    auto_rollback = spec.rollout.auto_rollback if auto_rollback is None else auto_rollback
    timeout = timeout or spec.rollout.progress_deadline_seconds

    before = cluster.get("apps/v1", "Deployment", name)
    last_good = revision_of(before) if before and deployment_state(before)[0] == "done" else None
    out(f"deploying {name} to namespace {cluster.namespace} on {cluster.server}")
    applied = apply_manifests(cluster, manifests, force=force_conflicts, out=out)
    changed = [a for a in applied if a.action != "unchanged"]
    summary = f"{len(changed)} of {len(applied)} objects changed"
    if not wait:
        return DeployResult(
            True,
            name,
            applied,
            verdict=f"deploy of {name} applied: {summary} (rollout not watched)",
        )

    result = watch_rollout(cluster, name, timeout=timeout, out=out, poll_interval=poll_interval)
    if result.ok:
        link_app_files(cluster, name)
        urls = status(cluster, name).urls
        if urls:
            out("endpoints:")
            for url in urls:
                out(f"  {url}")
        return DeployResult(
            True,
            name,
            applied,
            result,
            verdict=f"deploy of {name} succeeded: {summary}; {result.verdict}",
        )
    _report_failure(result, out)
    failed = f"deploy of {name} failed: {result.reason}"
    if not auto_rollback:
        hint = f"; `plumbline rollback {name}` returns to revision {last_good}" if last_good else ""
        return DeployResult(
            False, name, applied, result, verdict=f"{failed} (automatic rollback disabled{hint})"
        )
    if last_good is None:
        why = (
            "it is the app's first deploy"
            if before is None
            else f"revision {revision_of(before)} was not healthy either when this deploy began"
        )
        return DeployResult(
            False,
            name,
            applied,
            result,
            verdict=(
                f"{failed}; no earlier healthy revision to roll back to: {why} "
                f"(`plumbline delete {name}` removes the app)"
            ),
        )
    if result.revision == last_good:
        return DeployResult(
            False,
            name,
            applied,
            result,
            verdict=(f"{failed}; revision {last_good} is still current, nothing to roll back"),
        )
    out(f"rolling back {name} to revision {last_good}")
    back = rollback(
        cluster,
        name,
        to_revision=last_good,
        wait=True,
        timeout=timeout,
        poll_interval=poll_interval,
        out=out,
    )
    if back.ok:
        link_app_files(cluster, name)
    outcome = "which is serving again" if back.ok else f"but that rollout failed too: {back.reason}"
    return DeployResult(
        False,
        name,
        applied,
        result,
        rolled_back_to=last_good,
        verdict=(f"{failed}; rolled back to revision {last_good}, {outcome}"),
    )


def _referenced(template_spec: dict) -> tuple[set[str], set[str]]:
    """The ConfigMaps and Secrets a pod template mounts."""
    volumes = template_spec.get("volumes") or []
    config_maps = {(v.get("configMap") or {}).get("name") for v in volumes} - {None}
    secrets = {(v.get("secret") or {}).get("secretName") for v in volumes} - {None}
    return config_maps, secrets


def link_app_files(cluster: Cluster, name: str) -> None:
    """Make each of the app's ConfigMaps (and fetch-token Secrets) owned by the ReplicaSets
    that use it.

    They are named by content (or version), so every changed plumber.R leaves one behind;
    owned by their ReplicaSets, the garbage collector removes each with the last ReplicaSet
    that uses it (the Deployment keeps revisionHistoryLimit of them for rollbacks). One no
    ReplicaSet uses yet (a deploy in progress) is left alone.
    """
    deployment = cluster.get("apps/v1", "Deployment", name)
    if deployment is None:
        return
    owners: dict[tuple[str, str], list[dict]] = {}
    for rs in owned_replicasets(cluster, deployment):
        meta = rs["metadata"]
        if not meta.get("uid"):
            continue
        config_maps, secrets = _referenced((rs["spec"].get("template") or {}).get("spec") or {})
        for kind, names in (("ConfigMap", config_maps), ("Secret", secrets)):
            for used in names:
                owners.setdefault((kind, used), []).append(
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                    }
                )
    labels = {INSTANCE_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
    kinds = ["ConfigMap"] + (["Secret"] if any(k == "Secret" for k, _ in owners) else [])
    for kind in kinds:
        for obj in cluster.list("v1", kind, labels):
            current = obj["metadata"].get("ownerReferences") or []
            known = {ref.get("uid") for ref in current}
            missing = [
                ref
                for ref in owners.get((kind, obj["metadata"]["name"]), [])
                if ref["uid"] not in known
            ]
            if missing:
                cluster.merge_patch(
                    "v1",
                    kind,
                    obj["metadata"]["name"],
                    {"metadata": {"ownerReferences": current + missing}},
                )


def _report_failure(result: RolloutResult, out) -> None:
    out(f"rollout failed: {result.reason}")
    for line in result.details:
        out(f"  {line}")


# -- restart, scale, rollback -------------------------------------------------------------
def restart(
    cluster: Cluster,
    name: str,
    *,
    wait: bool = True,
    timeout: float | None = None,
    poll_interval: float = 1.0,
    out=print,
) -> RolloutResult | None:
    """A rolling restart as `kubectl rollout restart` does it: stamp the pod template."""
    deployment = require_deployment(cluster, name)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.merge_patch(
        "apps/v1",
        "Deployment",
        name,
        {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: now}}}}},
    )
    out(f"deployment/{name} restarted at {now}")
    return _maybe_watch(cluster, deployment, wait, timeout, poll_interval, out)


def scale(
    cluster: Cluster,
    name: str,
    replicas: int,
    *,
    wait: bool = True,
    timeout: float | None = None,
    poll_interval: float = 1.0,
    out=print,
) -> RolloutResult | None:
    """Set the replica count through the scale subresource, as `kubectl scale` does."""
    if replicas < 0:
        raise OperationError(f"replicas {replicas}: must be 0 or more")
    deployment = require_deployment(cluster, name)
    if cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", name):
        out(f"warning: an autoscaler manages {name}; it will change the replica count again")
    cluster.merge_patch(
        "apps/v1", "Deployment", name, {"spec": {"replicas": replicas}}, subresource="scale"
    )
    out(f"deployment/{name} scaled to {replicas}")
    return _maybe_watch(cluster, deployment, wait, timeout, poll_interval, out)


def rollback(
    cluster: Cluster,
    name: str,
    to_revision: str | int | None = None,
    *,
    wait: bool = True,
    timeout: float | None = None,
    poll_interval: float = 1.0,
    out=print,
) -> RolloutResult | None:
    """`kubectl rollout undo`: put an earlier ReplicaSet's pod template back in the Deployment.

    Without `to_revision`, the revision before the current one. The template goes in by
    server-side apply (forced, field manager plumbline) together with the rest of the live
    spec, so that the next `deploy` owns every field again instead of conflicting with a
    patch's owner. Keys of the live template that the old one lacks and that another manager
    set (a restart's restartedAt) are then removed by a merge patch of nulls, which sets
    nothing and so takes no ownership.
    """
    deployment = require_deployment(cluster, name)
    replicasets = owned_replicasets(cluster, deployment)
    current = revision_of(deployment)
    known = [revision_of(rs) for rs in replicasets]
    if to_revision is None:
        earlier = [rs for rs in replicasets if revision_of(rs) != current]
        if not earlier:
            raise OperationError(f"{name} has no earlier revision to roll back to")
        target = earlier[-1]
    else:
        target = next((rs for rs in replicasets if revision_of(rs) == str(to_revision)), None)
        if target is None:
            raise OperationError(
                f"revision {to_revision} of {name} not found "
                f"(known revisions: {', '.join(filter(None, known)) or 'none'})"
            )
    revision = revision_of(target)
    template = copy.deepcopy(target["spec"]["template"])
    ((template.get("metadata") or {}).get("labels") or {}).pop("pod-template-hash", None)
    if template == (deployment.get("spec") or {}).get("template"):
        out(f"deployment/{name} already runs the template of revision {revision}; nothing to do")
        return _maybe_watch(cluster, deployment, wait, timeout, poll_interval, out)
    cluster.apply(_with_template(deployment, template), force=True)
    removals = _removed_keys(
        cluster.get("apps/v1", "Deployment", name)["spec"]["template"], template
    )
    if removals:
        cluster.merge_patch("apps/v1", "Deployment", name, {"spec": {"template": removals}})
    out(f"deployment/{name} rolled back to the template of revision {revision}")
    return _maybe_watch(cluster, deployment, wait, timeout, poll_interval, out)


def _with_template(deployment: dict, template: dict) -> dict:
    meta = deployment["metadata"]
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if key != REVISION_ANNOTATION and key != "kubectl.kubernetes.io/last-applied-configuration"
    }
    spec = copy.deepcopy(deployment.get("spec") or {})
    spec["template"] = template
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace")},
        "spec": spec,
    }
    if meta.get("labels"):
        body["metadata"]["labels"] = dict(meta["labels"])
    if annotations:
        body["metadata"]["annotations"] = annotations
    return body


def _removed_keys(live: dict, wanted: dict) -> dict | None:
    """A merge patch of nulls deleting the mapping keys of `live` that `wanted` lacks."""
    patch = {}
    for key, value in live.items():
        if key not in wanted:
            patch[key] = None
        elif isinstance(value, dict) and isinstance(wanted[key], dict):
            nested = _removed_keys(value, wanted[key])
            if nested:
                patch[key] = nested
    return patch or None


def _maybe_watch(cluster, deployment, wait, timeout, poll_interval, out) -> RolloutResult | None:
    if not wait:
        return None
    deadline = (deployment.get("spec") or {}).get(
        "progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE
    )
    return watch_rollout(
        cluster,
        deployment["metadata"]["name"],
        timeout=timeout or deadline,
        out=out,
        poll_interval=poll_interval,
    )


def require_deployment(cluster: Cluster, name: str) -> dict:
    deployment = cluster.get("apps/v1", "Deployment", name)
    if deployment is None:
        raise NoDeployment(f"no deployment {name} in namespace {cluster.namespace}")
    return deployment


# -- status -------------------------------------------------------------------------------
@dataclass
class AppStatus:
    name: str
    namespace: str
    desired: int
    updated: int
    ready: int
    available: int
    revision: str | None
    images: list[str]
    state: str  # "done" (rolled out), "waiting" or "failed"
    message: str
    urls: list[str] = field(default_factory=list)  # "GET http://host/path", one per endpoint

    @property
    def healthy(self) -> bool:
        return self.state == "done" and self.available >= self.desired


def status(cluster: Cluster, name: str) -> AppStatus:
    deployment = require_deployment(cluster, name)
    labels = {INSTANCE_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
    return _status_of(
        cluster,
        deployment,
        cluster.list("networking.k8s.io/v1", "Ingress", labels),
        lambda: cluster.list("v1", "Service", labels),
    )


def statuses(cluster: Cluster) -> list[AppStatus]:
    """Every plumbline app of the namespace, by name: three list calls however many apps
    there are (plus a ConfigMap read per app whose pods mount their plumber.R from one)."""
    managed = {MANAGED_BY_LABEL: MANAGED_BY}
    deployments = cluster.list("apps/v1", "Deployment", managed)
    ingresses = _by_instance(cluster.list("networking.k8s.io/v1", "Ingress", managed))
    services = _by_instance(cluster.list("v1", "Service", managed))
    return [
        _status_of(cluster, d, ingresses.get(name, []), lambda name=name: services.get(name, []))
        for d in sorted(deployments, key=lambda d: d["metadata"]["name"])
        for name in [d["metadata"]["name"]]
    ]


def _by_instance(objects: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for obj in objects:
        instance = ((obj.get("metadata") or {}).get("labels") or {}).get(INSTANCE_LABEL)
        if instance:
            grouped.setdefault(instance, []).append(obj)
    return grouped


def _status_of(
    cluster: Cluster,
    deployment: dict,
    ingresses: list[dict],
    services: Callable[[], list[dict]],
) -> AppStatus:
    name = deployment["metadata"]["name"]
    spec, st = deployment.get("spec") or {}, deployment.get("status") or {}
    state, message = deployment_state(deployment)
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return AppStatus(
        name=name,
        namespace=cluster.namespace,
        desired=spec.get("replicas", 1),
        updated=st.get("updatedReplicas") or 0,
        ready=st.get("readyReplicas") or 0,
        available=st.get("availableReplicas") or 0,
        revision=revision_of(deployment),
        images=[c.get("image", "") for c in containers],
        state=state,
        message=message,
        urls=endpoint_urls(cluster, deployment, ingresses, services),
    )


def endpoint_urls(
    cluster: Cluster,
    deployment: dict,
    ingresses: list[dict],
    services: Callable[[], list[dict]],
) -> list[str]:
    """How each endpoint of the app is reached: through its Ingress, else its Service
    (`services` is called only when no Ingress routes to the app)."""
    routes = _endpoint_routes(cluster, deployment)
    bases = []  # (base URL, path, pathType)
    for ingress in ingresses:
        ing_spec = ingress.get("spec") or {}
        tls_hosts = {h for tls in ing_spec.get("tls") or [] for h in tls.get("hosts") or []}
        lb = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        address = (lb[0].get("hostname") or lb[0].get("ip")) if lb else None
        for rule in ing_spec.get("rules") or []:
            host = rule.get("host") or address or "<ingress-address>"
            scheme = "https" if rule.get("host") in tls_hosts else "http"
            for path in (rule.get("http") or {}).get("paths") or []:
                bases.append(
                    (f"{scheme}://{host}", path.get("path", "/"), path.get("pathType", "Prefix"))
                )
    if not bases:
        for service in services():
            port = ((service.get("spec") or {}).get("ports") or [{}])[0].get("port", 80)
            svc = service["metadata"]["name"]
            bases.append(
                (f"http://{svc}.{cluster.namespace}.svc.cluster.local:{port}", "/", "Prefix")
            )
    if not routes:  # no plumber.R to read: the routed paths themselves
        return [f"{base}{path}" for base, path, _ in bases]
    urls = []
    for verbs, route, prefix in routes:
        for base, path, path_type in bases:
            if _routes_to(path, path_type, prefix):
                urls.append(f"{verbs} {base}{route}")
                break
    return urls


def _endpoint_routes(cluster: Cluster, deployment: dict) -> list[tuple[str, str, str]]:
    """(verbs, path template, static prefix) of the plumber.R the live Deployment mounts.

    ConfigMaps are named by content and kept for rollbacks, so the one that counts is the
    one named by the Deployment's app-files volume, not any labelled one.
    """
    volumes = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "volumes"
    ) or []
    config_maps = [
        v["configMap"]["name"]
        for v in volumes
        if v.get("name") == "app-files" and v.get("configMap")
    ]
    for config_map_name in config_maps:
        config_map = cluster.get("v1", "ConfigMap", config_map_name) or {}
        source = (config_map.get("data") or {}).get("plumber.R")
        if source is None:
            continue
        try:
            api = parse_source(source)
        except AnnotationError:
            return []
        return [(",".join(ep.verbs), ep.path.raw, ep.path.static_prefix) for ep in api.endpoints]
    return []


def _routes_to(rule_path: str, path_type: str, prefix: str) -> bool:
    if path_type == "Exact":
        return prefix == rule_path
    base = rule_path.rstrip("/")
    return not base or prefix == base or prefix.startswith(base + "/")


# -- logs, delete -------------------------------------------------------------------------
def logs(
    cluster: Cluster, name: str, *, tail: int | None = None, follow: bool = False, out=print
) -> int:
    """Print the logs of every pod of the app, each line prefixed with its pod name.

    With `follow`, the pods' logs are read side by side, lines printed as they come, until
    every pod's stream ends (or the caller interrupts).
    """
    deployment = cluster.get("apps/v1", "Deployment", name)
    selector = (((deployment or {}).get("spec") or {}).get("selector") or {}).get(
        "matchLabels"
    ) or {INSTANCE_LABEL: name}
    pods = sorted(cluster.list("v1", "Pod", selector), key=lambda p: p["metadata"]["name"])
    if not pods:
        raise OperationError(f"no pods of {name} in namespace {cluster.namespace}")
    lines: queue.Queue[tuple[bool, str] | None] = queue.Queue()  # (is a log line, text)

    def read(pod: dict) -> None:
        pod_name = pod["metadata"]["name"]
        container = (((pod.get("spec") or {}).get("containers") or [{}])[0]).get("name")
        try:
            for line in cluster.pod_log_lines(pod_name, container, tail_lines=tail, follow=follow):
                lines.put((True, f"[{pod_name}] {line}"))
        except KubeError as exc:  # e.g. a container still waiting to start
            lines.put((False, f"[{pod_name}] (no logs: {exc.message})"))
        finally:
            lines.put(None)

    if follow:
        for pod in pods:
            threading.Thread(target=read, args=(pod,), daemon=True).start()
    else:
        for pod in pods:
            read(pod)
    printed, running = 0, len(pods)
    while running:
        item = lines.get()
        if item is None:
            running -= 1
        else:
            out(item[1])
            printed += item[0]
    return printed


def replica_metrics(
    cluster: Cluster, name: str, *, headers: dict[str, str] | None = None
) -> list[tuple[str, str | None, str]]:
    """(pod, its /metrics text or None, why not) for every ready pod of the app, read through
    the API server's pod proxy (the pods' own addresses are inside the cluster's network)."""
    deployment = require_deployment(cluster, name)
    selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {
        INSTANCE_LABEL: name
    }
    found: list[tuple[str, str | None, str]] = []
    for pod in sorted(cluster.list("v1", "Pod", selector), key=lambda p: p["metadata"]["name"]):
        if not _pod_ready(pod):
            continue
        pod_name = pod["metadata"]["name"]
        path = (
            f"/api/v1/namespaces/{quote(cluster.namespace, safe='')}/pods/"
            f"{quote(pod_name, safe='')}:{_runtime_port(pod)}/proxy/metrics"
        )
        try:
            found.append((pod_name, cluster.request("GET", path, raw=True, headers=headers), ""))
        except KubeError as exc:  # one pod's answer does not stop the others'
            found.append((pod_name, None, f"{exc.status} {exc.message}".strip()))
    return found


def _pod_ready(pod: dict) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _runtime_port(pod: dict) -> int:
    """The runtime's container port: the one named http (manifests.PORT_NAME), else the first."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    ports = containers[0].get("ports") or []
    for port in ports:
        if port.get("name") == PORT_NAME:
            return int(port["containerPort"])
    return int(ports[0]["containerPort"]) if ports else RUNTIME_PORT


def delete(cluster: Cluster, name: str, *, out=print) -> list[str]:
    """Delete what plumbline created for the app: objects with its instance and managed-by labels.

    Secrets are looked for only when the app's pods mount a fetch-token Secret (an app of
    plumbline server, whose Role may list them); the commands' Role has no Secrets at all."""
    labels = {INSTANCE_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
    deployment = cluster.get("apps/v1", "Deployment", name)
    pod = (((deployment or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    tokens = bool(_referenced(pod)[1])
    deleted = []
    for api_version, kind in APP_KINDS:
        if kind == "Secret" and not tokens:
            continue
        for obj in cluster.list(api_version, kind, labels):
            if cluster.delete(api_version, kind, obj["metadata"]["name"]):
                ref = f"{kind.lower()}/{obj['metadata']['name']}"
                out(f"{ref} deleted")
                deleted.append(ref)
    return deleted
