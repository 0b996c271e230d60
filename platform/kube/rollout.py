"""Follow a Deployment rollout to its end and, when it fails, say why.

Completion follows `kubectl rollout status`: the controller has observed the latest
generation, every replica is updated, no old replica is left and all updated ones are
available. Failure is any of: the Progressing condition's ProgressDeadlineExceeded, a pod of
the new revision that cannot run (CrashLoopBackOff, image pull errors, ...) or keeps
restarting, or our own deadline passing without the pods becoming ready. The Deployment is
polled, like `helm --wait` does, so one loop sees the Deployment and its pods together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from plumbline.platform.kube.client import Cluster, KubeError, Unreachable

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
# Waiting reasons that mean a container of the new revision will not start by itself.
FATAL_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
_MAX_EXPLAINED_PODS = 3
_MAX_EVENTS_PER_OBJECT = 5
_INIT_LOG_LINES = 20  # of a failing init container: why the bundle or a package failed


@dataclass
class RolloutResult:
    ok: bool
    name: str
    revision: str | None
    reason: str  # one line: what completed, or what failed
    details: list[str] = field(default_factory=list)  # why it failed: pod states, exits, events

    @property
    def verdict(self) -> str:
        state = "complete" if self.ok else "FAILED"
        revision = f" (revision {self.revision})" if self.revision else ""
        return f"rollout of {self.name} {state}{revision}: {self.reason}"


def watch_rollout(
    cluster: Cluster,
    name: str,
    *,
    timeout: float,
    out=print,
    poll_interval: float = 1.0,
    max_restarts: int = 3,
) -> RolloutResult:
    """Poll the Deployment until its rollout completes or fails; one progress line per change."""
    started = time.monotonic()
    first_restarts: dict[tuple[str, str], int] = {}
    last_line = None
    while True:
        deployment = cluster.get("apps/v1", "Deployment", name)
        if deployment is None:
            return RolloutResult(False, name, None, f"deployment {name} not found")
        revision = revision_of(deployment)
        line = progress_line(deployment)
        if line != last_line:
            out(line)
            last_line = line
        state, message = deployment_state(deployment)
        # Until the controller has seen the new spec, the current revision's pods are the old ones.
        pods = (
            new_revision_pods(cluster, deployment)
            if observed(deployment) and state != "done"
            else []
        )
        if state == "failed":
            return _failure(cluster, deployment, pods, message)
        if state == "done":
            return RolloutResult(True, name, revision, message)
        problem = pod_problem(pods, first_restarts, max_restarts)
        if problem:
            return _failure(cluster, deployment, pods, problem)
        if time.monotonic() - started > timeout:
            return _failure(
                cluster, deployment, pods, f"pods not ready within {timeout:g}s ({message})"
            )
        time.sleep(poll_interval)


def revision_of(deployment: dict) -> str | None:
    return ((deployment.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)


def progress_line(deployment: dict) -> str:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = spec.get("replicas", 1)
    counts = ", ".join(
        f"{status.get(key) or 0}/{desired} {label}"
        for key, label in (
            ("updatedReplicas", "updated"),
            ("readyReplicas", "ready"),
            ("availableReplicas", "available"),
        )
    )
    return f"{deployment['metadata']['name']}: {counts}"


def observed(deployment: dict) -> bool:
    """Whether the deployment controller has acted on the latest spec."""
    generation = (deployment.get("metadata") or {}).get("generation")
    seen = (deployment.get("status") or {}).get("observedGeneration")
    return generation is None or (seen is not None and seen >= generation)


def deployment_state(deployment: dict) -> tuple[str, str]:
    """("done" | "waiting" | "failed", message), as `kubectl rollout status` decides."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    if not observed(deployment):
        return "waiting", "waiting for the deployment controller to observe the new spec"
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return "failed", f"progress deadline exceeded: {condition.get('message', '')}".strip()
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    replicas = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < desired:
        return "waiting", f"{updated} of {desired} new replicas updated"
    if replicas > updated:
        return "waiting", f"{replicas - updated} old replicas pending termination"
    if available < updated:
        return "waiting", f"{available} of {updated} updated replicas available"
    return "done", f"{available}/{desired} replicas updated and available"


def owned_replicasets(cluster: Cluster, deployment: dict) -> list[dict]:
    """The Deployment's ReplicaSets, oldest revision first."""
    meta = deployment["metadata"]
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    owned = [rs for rs in cluster.list("apps/v1", "ReplicaSet", labels) if _owned_by(rs, meta)]
    return sorted(owned, key=lambda rs: int(revision_of(rs) or 0))


def new_revision_pods(cluster: Cluster, deployment: dict) -> list[dict]:
    """Pods of the Deployment's current revision (all of its pods if that cannot be told)."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        return []
    pods = cluster.list("v1", "Pod", labels)
    revision = revision_of(deployment)
    current = [rs for rs in owned_replicasets(cluster, deployment) if revision_of(rs) == revision]
    if not current:
        return pods
    pod_hash = ((current[-1].get("metadata") or {}).get("labels") or {}).get("pod-template-hash")
    return [
        pod
        for pod in pods
        if ((pod.get("metadata") or {}).get("labels") or {}).get("pod-template-hash") == pod_hash
    ]


def pod_problem(
    pods: list[dict], first_restarts: dict[tuple[str, str], int], max_restarts: int
) -> str | None:
    """A reason the new revision cannot become ready, or None. Remembers restart counts."""
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        for container in _container_statuses(pod):
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in FATAL_WAITING_REASONS:
                return f"pod {pod_name}: container {container.get('name')} {waiting['reason']}"
            key = (pod_name, container.get("name", ""))
            restarts = container.get("restartCount") or 0
            first = first_restarts.setdefault(key, restarts)
            if restarts - first >= max_restarts and not container.get("ready"):
                return (
                    f"pod {pod_name}: container {container.get('name')} crash loop "
                    f"({restarts - first} restarts while watching)"
                )
    return None


def explain(cluster: Cluster, deployment: dict, pods: list[dict]) -> list[str]:
    """Why the rollout is stuck: failing conditions, container states and exits, events."""
    lines = []
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if (
            condition.get("status") == "False"
            or condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            lines.append(
                f"deployment condition {condition.get('type')}: "
                f"{condition.get('reason', '')} {condition.get('message', '')}".rstrip()
            )
    unready = [pod for pod in pods if not _pod_ready(pod)][:_MAX_EXPLAINED_PODS]
    for pod in unready:
        lines.extend(_describe_pod(pod))
    failing = next(((pod, c) for pod in unready for c in _failing_init_containers(pod)), None)
    if failing is not None:  # the same reason in every pod: one log says it
        lines.extend(_init_log(cluster, *failing))
    try:
        current = [
            rs
            for rs in owned_replicasets(cluster, deployment)
            if revision_of(rs) == revision_of(deployment)
        ]
        for kind, obj_name in (
            [("ReplicaSet", current[-1]["metadata"]["name"])] if current else []
        ) + [("Pod", pod["metadata"]["name"]) for pod in unready]:
            for event in cluster.events_for(kind, obj_name)[-_MAX_EVENTS_PER_OBJECT:]:
                lines.append(
                    f"{kind.lower()} {obj_name} event {event.get('type', '')} "
                    f"{event.get('reason', '')}: {event.get('message', '')}".rstrip()
                )
    except KubeError as exc:  # diagnostics are best effort; the failure itself is already known
        lines.append(f"(could not read events: {exc})")
    return lines


def _failure(cluster: Cluster, deployment: dict, pods: list[dict], reason: str) -> RolloutResult:
    return RolloutResult(
        False,
        deployment["metadata"]["name"],
        revision_of(deployment),
        reason,
        explain(cluster, deployment, pods),
    )


def _describe_pod(pod: dict) -> list[str]:
    name = pod["metadata"]["name"]
    lines = []
    for container in _container_statuses(pod):
        state = container.get("state") or {}
        label = f"pod {name} container {container.get('name')}"
        if "waiting" in state:
            waiting = state["waiting"] or {}
            lines.append(
                f"{label} waiting: {waiting.get('reason', '')} "
                f"{waiting.get('message', '')}".rstrip()
            )
        terminated = state.get("terminated") or (container.get("lastState") or {}).get("terminated")
        if terminated:
            lines.append(
                f"{label} last exit: {terminated.get('reason', 'terminated')}, exit code "
                f"{terminated.get('exitCode')}, restarts {container.get('restartCount', 0)}"
                + (f": {terminated['message']}" if terminated.get("message") else "")
            )
    if not lines:
        phase = (pod.get("status") or {}).get("phase", "Unknown")
        lines.append(f"pod {name} is {phase} and not ready")
    return lines


def _failing_init_containers(pod: dict) -> list[str]:
    found = []
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        state, last = status.get("state") or {}, status.get("lastState") or {}
        exited = (state.get("terminated") or last.get("terminated") or {}).get("exitCode")
        if exited not in (None, 0):
            found.append(status.get("name", ""))
    return found


def _init_log(cluster: Cluster, pod: dict, container: str) -> list[str]:
    """The last lines of a failed init container (plumbline prepare: R's own message)."""
    name = pod["metadata"]["name"]
    try:
        tail = list(cluster.pod_log_lines(name, container, tail_lines=_INIT_LOG_LINES))
    except (KubeError, Unreachable) as exc:
        return [f"(could not read the log of pod {name} init container {container}: {exc})"]
    return [f"pod {name} init container {container} log:"] + [f"  {line}" for line in tail]


def _container_statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def _pod_ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _owned_by(obj: dict, owner_meta: dict) -> bool:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") != "Deployment":
            continue
        if owner_meta.get("uid") and ref.get("uid"):
            if ref["uid"] == owner_meta["uid"]:
                return True
        elif ref.get("name") == owner_meta.get("name"):
            return True
    return False
