"""Which Backend a command talks to: the one place that knows both.

`--local` (or `--context local`) picks the local backend (replicas behind HAProxy on this
machine); anything else the Kubernetes backend for the kubeconfig context. Each is imported
only when picked.
"""

from __future__ import annotations

import argparse

from plumbline.platform.backend import Backend

LOCAL_CONTEXT = "local"


def add_backend_arguments(parser: argparse.ArgumentParser, *, namespace: bool = True) -> None:
    if namespace:
        parser.add_argument(
            "--namespace",
            "-n",
            default=None,
            help="namespace (default: the context's namespace, else 'default')",
        )
    parser.add_argument(
        "--context",
        default=None,
        help="kubeconfig context (default: the current context); 'local' means --local",
    )
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else "
        "the in-cluster service account)",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="run against the local backend (replicas behind HAProxy on this "
        "machine) instead (default: the cluster)",
    )


def is_local(args: argparse.Namespace) -> bool:
    return bool(args.local or args.context == LOCAL_CONTEXT)


def open_backend(args: argparse.Namespace) -> Backend:
    if is_local(args):
        from plumbline.platform.local.backend import LocalBackend

        return LocalBackend()
    from plumbline.platform.kube.backend import KubernetesBackend

    return KubernetesBackend(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=getattr(args, "namespace", None),
        force_conflicts=getattr(args, "force_conflicts", False),
    )
