"""Server-side apply of an app's manifests, reporting what each apply changed.

Each manifest is applied with field manager ``plumbline`` and, by default, without forcing:
a field another manager owns is a conflict the user must see, not silently take over.
"Unchanged" is decided from the object before and after: the same resourceVersion (the API
server does not bump it for a no-op apply), or, where the server keeps none, the same body.
"""

from __future__ import annotations

from dataclasses import dataclass

from plumbline.platform.kube.client import Cluster, Conflict, KubeError

# Dependencies first: the ConfigMap before the pods that mount it, the Service before the
# Ingress that routes to it.
_KIND_ORDER = (
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Ingress",
)


class ApplyError(RuntimeError):
    """An apply the API server refused; the message names the object and how to resolve it."""


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    action: str  # "created", "configured" or "unchanged"
    object: dict

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name} {self.action}"


def apply_manifests(
    cluster: Cluster, manifests: list[dict], *, force: bool = False, out=None
) -> list[Applied]:
    """Apply every manifest in dependency order; print one line per object when `out` is given."""
    results = []
    for manifest in sorted(manifests, key=_rank):
        applied = apply_one(cluster, manifest, force=force)
        if out:
            out(str(applied))
        results.append(applied)
    return results


def apply_one(cluster: Cluster, manifest: dict, *, force: bool = False) -> Applied:
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    before = cluster.get(manifest["apiVersion"], kind, name)
    try:
        after = cluster.apply(manifest, force=force)
    except Conflict as exc:
        raise ApplyError(
            f"{kind.lower()}/{name}: {exc.message} — another field manager owns "
            "these fields; re-run with --force-conflicts to take them over"
        ) from exc
    except KubeError as exc:
        raise ApplyError(f"{kind.lower()}/{name}: {exc}") from exc
    if before is None:
        action = "created"
    else:
        action = "unchanged" if _same(before, after) else "configured"
    return Applied(kind, name, action, after)


def _same(before: dict, after: dict) -> bool:
    old = (before.get("metadata") or {}).get("resourceVersion")
    new = (after.get("metadata") or {}).get("resourceVersion")
    if old and new:
        return old == new
    return before == after


def _rank(manifest: dict) -> int:
    kind = manifest.get("kind")
    return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
