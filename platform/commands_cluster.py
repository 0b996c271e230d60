"""`plumbline deploy|restart|scale|status|rollback|logs|delete`: the cluster commands.

Each prints its progress and ends with a one-line verdict. Exit status: 0 done, 1 failed
(a rollout, the API), 2 refused before touching the cluster (a broken plumber.R, a bad
spec). With `--local` (or `--context local`) the same command runs against the local
backend (replicas behind HAProxy on this machine) instead.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from plumbline.platform.apply import ApplyError
from plumbline.platform.kube import ConnectError, KubeError, Unreachable, connect
from plumbline.platform.operations import (InvalidPlumberFile, OperationError, delete, deploy,
                                           logs, restart, rollback, scale, status)

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130
LOCAL_CONTEXT = "local"


def register(subparsers) -> None:
    from plumbline.platform.commands_manifests import add_spec_arguments

    p = subparsers.add_parser(
        "deploy",
        help="validate a plumber.R, apply it to the cluster and watch the rollout",
        description="Validate the plumber.R (annotations and R syntax), server-side apply its "
                    "manifests (field manager plumbline), watch the rollout, and roll back to the "
                    "last good revision if it fails.")
    add_spec_arguments(p)
    _add_wait_arguments(p)
    p.add_argument("--no-rollback", dest="auto_rollback", action="store_false", default=None,
                   help="leave a failed rollout in place instead of rolling back "
                        "(default: roll back, unless the spec's rollout policy says otherwise)")
    p.add_argument("--force-conflicts", action="store_true",
                   help="take over fields another field manager owns (server-side apply force; "
                        "default: refuse, naming the conflicting fields)")
    _add_cluster_arguments(p)
    p.set_defaults(func=_deploy)

    p = subparsers.add_parser("restart",
                              help="rolling restart of an app's pods, watched to completion")
    _add_name_argument(p)
    _add_wait_arguments(p)
    _add_cluster_arguments(p)
    p.set_defaults(func=_restart)

    p = subparsers.add_parser("scale", help="set an app's replica count")
    _add_name_argument(p)
    p.add_argument("replicas", type=int, help="the number of pods")
    _add_wait_arguments(p)
    _add_cluster_arguments(p)
    p.set_defaults(func=_scale)

    p = subparsers.add_parser("status",
                              help="replicas, revision and endpoint URLs of an app")
    _add_name_argument(p)
    _add_cluster_arguments(p)
    p.set_defaults(func=_status)

    p = subparsers.add_parser("rollback",
                              help="return an app to an earlier revision (kubectl rollout undo)")
    _add_name_argument(p)
    p.add_argument("--to-revision", type=int, default=None,
                   help="the revision to return to (default: the one before the current)")
    _add_wait_arguments(p)
    _add_cluster_arguments(p)
    p.set_defaults(func=_rollback)

    p = subparsers.add_parser("logs",
                              help="logs of all pods of an app, each line prefixed with its pod")
    _add_name_argument(p)
    p.add_argument("--tail", type=int, default=None,
                   help="only the last N lines of each pod (default: all)")
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing new lines until the pods stop (default: print and exit)")
    _add_cluster_arguments(p)
    p.set_defaults(func=_logs)

    p = subparsers.add_parser("delete",
                              help="delete everything plumbline created for an app")
    _add_name_argument(p)
    _add_cluster_arguments(p)
    p.set_defaults(func=_delete)


def _add_name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=None,
                        help="the app's name (with --local, the only local cluster running "
                             "when left out)")
    parser.set_defaults(name_is_positional=True)


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    taken = set(parser._option_string_actions)  # the spec arguments may define --namespace
    if "--namespace" not in taken:
        parser.add_argument("--namespace", "-n", default=os.environ.get("PLUMBLINE_NAMESPACE"),
                            help="namespace (env PLUMBLINE_NAMESPACE; default: the context's "
                                 "namespace, else 'default')")
    parser.add_argument("--context", default=os.environ.get("PLUMBLINE_CONTEXT"),
                        help="kubeconfig context (env PLUMBLINE_CONTEXT; default: the current "
                             "context); 'local' means --local")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else "
                             "the in-cluster service account)")
    parser.add_argument("--local", action="store_true",
                        help="run against the local backend (replicas behind HAProxy) instead "
                             "(default: the cluster)")


def _add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="return once the change is applied, without watching the rollout "
                             "(default: watch it to the end)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for the pods to become ready (default: the "
                             "Deployment's progress deadline, 600)")


def _command(run):
    """Dispatch to the local backend when asked; turn errors into a verdict and exit status."""
    def func(args) -> int:
        if args.local or args.context == LOCAL_CONTEXT:
            from plumbline.platform.commands_local import run_local
            return run_local(args.command, args)
        if getattr(args, "name_is_positional", False) and args.name is None:
            return _fail(f"plumbline {args.command}: the app's name is required "
                         "(it may be left out only with --local)", EXIT_REFUSED)
        try:
            return run(args)
        except KeyboardInterrupt:
            return _fail(f"{args.command} interrupted (what was applied stays applied; "
                         "a rollout goes on in the cluster)", EXIT_INTERRUPTED)
        except InvalidPlumberFile as exc:
            return _fail(f"refused: {exc}", EXIT_REFUSED)
        except ValueError as exc:  # a spec value that cannot be deployed (SpecError)
            return _fail(f"refused: {exc}", EXIT_REFUSED)
        except ConnectError as exc:
            return _fail(f"cannot connect: {exc}", EXIT_FAILED)
        except Unreachable as exc:
            return _fail(f"{args.command} failed: cannot reach the Kubernetes API at "
                         f"{exc.message}", EXIT_FAILED)
        except (OperationError, ApplyError) as exc:
            return _fail(f"{args.command} failed: {exc}", EXIT_FAILED)
        except KubeError as exc:
            return _fail(f"{args.command} failed: the Kubernetes API answered {exc}", EXIT_FAILED)
    return func


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code


def _cluster(args):
    return connect(kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace)


def _rollout_verdict(result, done: str) -> int:
    if result is None:
        print(f"{done} (rollout not watched)")
        return EXIT_OK
    if not result.ok:
        print(f"rollout failed: {result.reason}")
        for line in result.details:
            print(f"  {line}")
    print(result.verdict)
    return EXIT_OK if result.ok else EXIT_FAILED


@_command
def _deploy(args) -> int:
    from plumbline.platform.commands_manifests import spec_from_args

    spec = spec_from_args(args)
    cluster = connect(kubeconfig=args.kubeconfig, context=args.context)
    if "namespace" not in spec.set_fields:  # neither a flag nor plumbline.toml chose one
        spec = replace(spec, namespace=cluster.namespace)
    result = deploy(spec, cluster, wait=args.wait, auto_rollback=args.auto_rollback,
                    force_conflicts=args.force_conflicts, timeout=args.timeout)
    print(result.verdict)
    return EXIT_OK if result.ok else EXIT_FAILED


@_command
def _restart(args) -> int:
    result = restart(_cluster(args), args.name, wait=args.wait, timeout=args.timeout)
    return _rollout_verdict(result, f"restart of {args.name} started")


@_command
def _scale(args) -> int:
    result = scale(_cluster(args), args.name, args.replicas, wait=args.wait, timeout=args.timeout)
    return _rollout_verdict(result, f"{args.name} scaled to {args.replicas}")


@_command
def _rollback(args) -> int:
    result = rollback(_cluster(args), args.name, args.to_revision, wait=args.wait,
                      timeout=args.timeout)
    return _rollout_verdict(result, f"rollback of {args.name} applied")


@_command
def _status(args) -> int:
    st = status(_cluster(args), args.name)
    print(f"{st.name} (namespace {st.namespace}), revision {st.revision or '-'}: "
          f"{st.updated}/{st.desired} updated, {st.ready}/{st.desired} ready, "
          f"{st.available}/{st.desired} available")
    for image in st.images:
        print(f"image: {image}")
    if st.urls:
        print("endpoints:")
        for url in st.urls:
            print(f"  {url}")
    print(f"{st.name} is healthy" if st.healthy else f"{st.name} is not ready: {st.message}")
    return EXIT_OK if st.healthy else EXIT_FAILED


@_command
def _logs(args) -> int:
    lines = logs(_cluster(args), args.name, tail=args.tail, follow=args.follow)
    print(f"{lines} log lines from the pods of {args.name}", file=sys.stderr)
    return EXIT_OK


@_command
def _delete(args) -> int:
    cluster = _cluster(args)
    deleted = delete(cluster, args.name)
    print(f"deleted {len(deleted)} objects of {args.name}" if deleted
          else f"nothing of {args.name} to delete in namespace {cluster.namespace}")
    return EXIT_OK
