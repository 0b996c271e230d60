"""`plumbline deploy|restart|scale|status|rollback|logs|delete`, against any Backend.

Each prints its progress and ends with a one-line verdict. Exit status (ExitCode): 0 done,
1 failed (a rollout, the API, the local cluster), 2 refused before anything changed (a broken
plumber.R, a bad spec). The backend is the cluster of the kubeconfig context, or with
`--local` the local cluster of `plumbline up`; these commands know neither (backends.py
picks).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from plumbline.exits import CommandError, ExitCode
from plumbline.platform.backend import AppRef, AppStatus, BackendError, OperationResult, Refused
from plumbline.platform.cli.backends import add_backend_arguments, is_local, open_backend


def say(line: str) -> None:
    print(line, flush=True)


def configure(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "deploy":
        from plumbline.platform.cli.manifests import add_spec_arguments

        parser.description = (
            "Validate the plumber.R (annotations and R syntax), deploy its app spec (on "
            "Kubernetes: server-side apply of its manifests, field manager plumbline), watch "
            "the rollout, and roll back to the last good revision if it fails."
        )
        add_spec_arguments(parser)
        _add_wait_arguments(parser)
        parser.add_argument(
            "--no-rollback",
            dest="auto_rollback",
            action="store_false",
            default=None,
            help="leave a failed rollout in place instead of rolling back "
            "(default: roll back, unless the spec's rollout policy says "
            "otherwise)",
        )
        parser.add_argument(
            "--force-conflicts",
            action="store_true",
            help="Kubernetes: take over fields another field manager owns "
            "(server-side apply force; default: refuse, naming them)",
        )
        add_backend_arguments(parser, namespace=False)  # the spec arguments have --namespace
        parser.set_defaults(func=_deploy)
        return
    _add_name_argument(parser)
    if name == "scale":
        parser.add_argument("replicas", type=int, help="the number of replicas")
    elif name == "rollback":
        parser.add_argument(
            "--to-revision",
            default=None,
            help="the revision to return to (default: the one before the current)",
        )
    elif name == "logs":
        parser.add_argument(
            "--tail",
            type=int,
            default=None,
            help="only the last N lines of each replica (default: all; locally 200)",
        )
        parser.add_argument(
            "--follow",
            "-f",
            action="store_true",
            help="keep printing new lines until the replicas stop (default: print and exit)",
        )
    if name in ("restart", "scale", "rollback"):
        _add_wait_arguments(parser)
    add_backend_arguments(parser)
    parser.set_defaults(func=_RUN[name])


def _add_name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name",
        nargs="?",
        default=None,
        help="the app's name (with --local, the only local cluster running when left out)",
    )


def _add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="return once the change is made, without watching the rollout "
        "(default: watch it to the end)",
    )
    parser.add_argument(
        "--rollout-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds to wait for the replicas to become ready (default: the "
        "spec's progress deadline, 600)",
    )


def _app(args: argparse.Namespace) -> AppRef:
    if args.name is None and not is_local(args):
        raise CommandError(
            "the app's name is required (it may be left out only with --local)", ExitCode.USAGE
        )
    return AppRef(args.name or "", getattr(args, "namespace", None))


def _verdict(result: OperationResult) -> int:
    say(result.verdict)
    return ExitCode.OK if result.ok else ExitCode.FAILED


def _backend_errors(run: Any) -> Any:
    """BackendError -> `plumbline COMMAND: message` and its exit code."""

    def func(args: argparse.Namespace) -> int:
        try:
            return int(run(args))
        except Refused as exc:
            raise CommandError(str(exc), ExitCode.USAGE) from None
        except BackendError as exc:
            raise CommandError(str(exc), ExitCode.FAILED) from None
        except KeyboardInterrupt:
            raise CommandError(
                "interrupted (what was applied stays applied; a rollout goes on)",
                ExitCode.INTERRUPTED,
            ) from None

    return func


@_backend_errors
def _deploy(args: argparse.Namespace) -> int:
    from plumbline.platform.cli.manifests import spec_from_args
    from plumbline.platform.spec.appspec import SpecError

    try:
        spec = spec_from_args(args)
    except SpecError as exc:
        raise Refused(f"refused: {exc}") from None
    if args.auto_rollback is not None:
        spec = replace(spec, rollout=replace(spec.rollout, auto_rollback=args.auto_rollback))
    return _verdict(
        open_backend(args).deploy(spec, emit=say, wait=args.wait, timeout=args.rollout_timeout)
    )


@_backend_errors
def _restart(args: argparse.Namespace) -> int:
    return _verdict(
        open_backend(args).restart(
            _app(args), emit=say, wait=args.wait, timeout=args.rollout_timeout
        )
    )


@_backend_errors
def _scale(args: argparse.Namespace) -> int:
    if args.replicas < 0:
        raise Refused(f"refused: replicas {args.replicas}: must be 0 or more")
    return _verdict(
        open_backend(args).scale(
            _app(args), args.replicas, emit=say, wait=args.wait, timeout=args.rollout_timeout
        )
    )


@_backend_errors
def _rollback(args: argparse.Namespace) -> int:
    return _verdict(
        open_backend(args).rollback(
            _app(args), args.to_revision, emit=say, wait=args.wait, timeout=args.rollout_timeout
        )
    )


@_backend_errors
def _status(args: argparse.Namespace) -> int:
    st = open_backend(args).status(_app(args))
    print_status(st)
    return ExitCode.OK if st.healthy else ExitCode.FAILED


def print_status(st: AppStatus) -> None:
    say(
        f"{st.name} ({st.location}), revision {st.revision or '-'}: "
        f"{st.updated}/{st.desired} updated, {st.ready}/{st.desired} ready, "
        f"{st.available}/{st.desired} available"
    )
    for image in st.images:
        say(f"image: {image}")
    if st.replicas:
        headings = ["REPLICA", "STATE", "READY", "REVISION"] + [
            h for h, _ in st.replicas[0].details
        ]
        rows = [headings] + [
            [
                r.name,
                r.state,
                "yes" if r.ready else "no",
                r.revision or "-",
                *[v for _, v in r.details],
            ]
            for r in st.replicas
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(headings))]
        for row in rows:
            say("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if st.endpoints:
        say("endpoints:")
        for endpoint in st.endpoints:
            say(f"  {endpoint}")
    say(
        f"{st.name} is healthy"
        if st.healthy
        else f"{st.name} is not ready: {st.message or f'{st.ready}/{st.desired} replicas ready'}"
    )


@_backend_errors
def _logs(args: argparse.Namespace) -> int:
    count = 0
    try:
        for line in open_backend(args).logs(_app(args), tail=args.tail, follow=args.follow):
            print(line, flush=args.follow)
            count += 1
    except KeyboardInterrupt:
        pass
    print(f"{count} log lines from the replicas of {args.name or 'the app'}", file=sys.stderr)
    return ExitCode.OK


@_backend_errors
def _delete(args: argparse.Namespace) -> int:
    return _verdict(open_backend(args).delete(_app(args), emit=say))


_RUN = {
    "restart": _restart,
    "scale": _scale,
    "status": _status,
    "rollback": _rollback,
    "logs": _logs,
    "delete": _delete,
}
