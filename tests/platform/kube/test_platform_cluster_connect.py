"""Connecting from a kubeconfig, and reading a rollout's state the way kubectl does."""

from __future__ import annotations

import pytest
import yaml

from plumbline.platform.kube.client import ConnectError, connect, resource_path
from plumbline.platform.kube.rollout import deployment_state, pod_problem


@pytest.fixture
def kubeconfig(tmp_path):
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "dev",
                "clusters": [
                    {"name": "dev", "cluster": {"server": "http://127.0.0.1:6443"}},
                    {"name": "prod", "cluster": {"server": "http://127.0.0.1:7443"}},
                ],
                "users": [{"name": "me", "user": {"token": "t"}}],
                "contexts": [
                    {
                        "name": "dev",
                        "context": {"cluster": "dev", "user": "me", "namespace": "team-a"},
                    },
                    {"name": "prod", "context": {"cluster": "prod", "user": "me"}},
                ],
            }
        )
    )
    return str(path)


def test_the_current_context_and_its_namespace_are_used_by_default(kubeconfig):
    cluster = connect(kubeconfig=kubeconfig)
    assert cluster.server == "http://127.0.0.1:6443" and cluster.namespace == "team-a"


def test_context_and_namespace_flags_choose_another(kubeconfig):
    prod = connect(kubeconfig=kubeconfig, context="prod")
    assert prod.server == "http://127.0.0.1:7443" and prod.namespace == "default"
    assert connect(kubeconfig=kubeconfig, context="prod", namespace="shop").namespace == "shop"


def test_kubeconfig_from_the_environment(kubeconfig, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    assert connect().namespace == "team-a"


def test_a_missing_context_or_file_is_a_clear_error(kubeconfig, tmp_path):
    with pytest.raises(ConnectError, match="context nope"):
        connect(kubeconfig=kubeconfig, context="nope")
    with pytest.raises(ConnectError, match="no usable Kubernetes configuration"):
        connect(kubeconfig=str(tmp_path / "absent"))


def test_resource_paths_follow_the_api_layout():
    assert (
        resource_path("v1", "Pod", "shop", "p-1", "log") == "/api/v1/namespaces/shop/pods/p-1/log"
    )
    assert (
        resource_path("apps/v1", "Deployment", "shop", "parity", "scale")
        == "/apis/apps/v1/namespaces/shop/deployments/parity/scale"
    )


def _deployment(generation=2, observed=2, desired=3, **status):
    return {
        "metadata": {"name": "parity", "generation": generation},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": observed, **status},
    }


@pytest.mark.parametrize(
    "deployment, state, message",
    [
        (_deployment(observed=1), "waiting", "waiting for the deployment controller"),
        (_deployment(updatedReplicas=1, replicas=3), "waiting", "1 of 3 new replicas updated"),
        (
            _deployment(updatedReplicas=3, replicas=4),
            "waiting",
            "1 old replicas pending termination",
        ),
        (
            _deployment(updatedReplicas=3, replicas=3, availableReplicas=2),
            "waiting",
            "2 of 3 updated replicas available",
        ),
        (
            _deployment(updatedReplicas=3, replicas=3, availableReplicas=3),
            "done",
            "3/3 replicas updated and available",
        ),
        (
            _deployment(
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "timed out",
                    }
                ]
            ),
            "failed",
            "progress deadline exceeded: timed out",
        ),
    ],
)
def test_rollout_state_is_decided_as_kubectl_rollout_status_does(deployment, state, message):
    assert deployment_state(deployment)[0] == state
    assert deployment_state(deployment)[1].startswith(message)


def _pod(restarts, ready=False, waiting=None):
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": "parity-abc-1"},
        "status": {
            "containerStatuses": [
                {"name": "api", "ready": ready, "restartCount": restarts, "state": state}
            ]
        },
    }


def test_a_container_that_keeps_restarting_is_a_crash_loop_even_between_back_offs():
    seen: dict = {}
    assert pod_problem([_pod(5)], seen, max_restarts=3) is None  # restarts before we looked
    assert pod_problem([_pod(7)], seen, max_restarts=3) is None
    assert (
        pod_problem([_pod(8)], seen, max_restarts=3)
        == "pod parity-abc-1: container api crash loop (3 restarts while watching)"
    )
    assert pod_problem([_pod(9, ready=True)], seen, max_restarts=3) is None


def test_waiting_reasons_that_never_resolve_fail_at_once():
    assert (
        pod_problem([_pod(0, waiting="ImagePullBackOff")], {}, 3)
        == "pod parity-abc-1: container api ImagePullBackOff"
    )
    assert pod_problem([_pod(0, waiting="ContainerCreating")], {}, 3) is None
