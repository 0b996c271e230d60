"""Least-privilege access for plumbline in one namespace: ServiceAccount, Role, RoleBinding.

Instead of the cluster-admin binding the RStudio Kubernetes setups use, the Role grants
only what plumbline's operations do (kube/operations.py through kube/client.py):
server-side apply of the app's objects (get, patch, and create: the API server authorises
an apply that creates an object as a create too; restart, scale and rollback are patches;
`scale` goes through deployments/scale), listing by label (rollout polling, status,
delete), deletion of what it created, and reading ReplicaSets (rollback), pods, pod logs
and events (status and failure diagnosis). No watch (rollouts are polled), no update, no
deletecollection. No Secrets, except for plumbline server (`--server`), which keeps each
published version's short-lived fetch token in a Secret its pods mount.
tests/platform/kube/test_platform_rbac.py derives these verbs from the requests a full
cycle of operations sends.
"""

from __future__ import annotations

import re

from plumbline.platform.kube.manifests import MANAGED_BY
from plumbline.platform.spec.appspec import SpecError

DEFAULT_ACCOUNT = "plumbline-deployer"
_MANAGE = ["get", "list", "create", "patch", "delete"]
_READ = ["get", "list"]

# (API group, resources, verbs) - what `deploy`, `restart`, `scale`, `status`, `rollback`,
# `logs`, `metrics` and `delete` call.
RULES: tuple[tuple[str, tuple[str, ...], list[str]], ...] = (
    ("", ("configmaps", "services"), _MANAGE),
    ("apps", ("deployments",), _MANAGE),
    ("apps", ("deployments/scale",), ["get", "patch"]),  # `scale` uses the scale subresource
    ("apps", ("replicasets",), _READ),
    ("", ("pods",), _READ),
    ("", ("pods/log",), ["get"]),
    ("", ("pods/proxy",), ["get"]),  # the server's dashboard reads each pod's /metrics
    ("", ("events",), _READ),
    ("networking.k8s.io", ("ingresses", "networkpolicies"), _MANAGE),
    ("policy", ("poddisruptionbudgets",), _MANAGE),
    ("autoscaling", ("horizontalpodautoscalers",), _MANAGE),
)


def _labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "rbac",
        "app.kubernetes.io/part-of": "plumbline",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


# What plumbline server does beyond the commands: the fetch tokens of published versions.
SERVER_RULES: tuple[tuple[str, tuple[str, ...], list[str]], ...] = (("", ("secrets",), _MANAGE),)


def role_rules(server: bool = False) -> list[dict]:
    return [
        {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}
        for group, resources, verbs in RULES + (SERVER_RULES if server else ())
    ]


def render_rbac(
    namespace: str, account: str = DEFAULT_ACCOUNT, *, server: bool = False
) -> list[dict]:
    for what, value in (("namespace", namespace), ("service account", account)):
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
            raise SpecError(f"{what} {value!r}: must be a DNS label")
    meta = {"name": account, "namespace": namespace, "labels": _labels(account)}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": dict(meta),
            "rules": role_rules(server),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    ]
