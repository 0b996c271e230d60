"""`plumbline up`, `down` and `loadtest`: the local cluster (replicas behind HAProxy).

`up` takes every app spec flag `deploy` takes (and plumbline.toml), so the local cluster
runs the very spec a cluster would; the spec's Kubernetes-only settings have no effect here.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import time
from pathlib import Path

from plumbline.exits import CommandError, ExitCode
from plumbline.platform.backend import AppRef, BackendError
from plumbline.platform.cli.apps import say
from plumbline.platform.local.backend import KUBERNETES_ONLY, LocalBackend
from plumbline.platform.local.cluster import MAX_REPLICAS, Settings
from plumbline.platform.local.ports import port_is_free
from plumbline.platform.local.control import ControlClient, ControlError, HostRecord
from plumbline.platform.local.haproxy import HAProxyMissing, find_binary
from plumbline.platform.spec.appspec import SpecError
from plumbline.platform.spec.ingress import ingress_warnings
from plumbline.runtime import logs

DEFAULT_PORT = 8080
SCENARIOS = (
    "rolling-restart",
    "kill-replica",
    "quit-worker",
    "fail-health",
    "deploy-change",
    "freeze-replica",
)  # platform/local/failover.py, loaded only when one runs


_REPLICA_LINE = re.compile(r"^(r\d+|haproxy) \| (.*)$")


def say_json(line: str) -> None:
    """The supervisor's lines as JSON log lines (the runtime's own encoder); a replica's JSON
    lines pass through with the replica's name added."""
    source, text = "supervisor", line
    m = _REPLICA_LINE.match(line)
    if m:
        source, text = m.group(1), m.group(2)
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            print(logs.encode({**parsed, "replica": source}), flush=True)
            return
    fields = {"source": source}
    print(
        logs.encode(
            logs.entry(logs.timestamp(time.time()), "info", "plumbline.local", text, fields)
        ),
        flush=True,
    )


def configure(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "up":
        from plumbline.platform.cli.manifests import add_spec_arguments

        parser.description = (
            "Start the app's replicas of `plumbline serve` behind a real HAProxy ingress on "
            "127.0.0.1 and keep them running (like `docker compose up`); Ctrl-C stops "
            "everything. Takes the app spec flags of `deploy` and plumbline.toml."
        )
        add_spec_arguments(parser)
        parser.add_argument(
            "--port", type=int, default=DEFAULT_PORT, help="ingress port on 127.0.0.1"
        )
        parser.add_argument(
            "--watch",
            action="store_true",
            help="roll out plumber.R again whenever the file changes",
        )
        parser.add_argument(
            "--unready-timeout",
            type=float,
            default=15.0,
            help="seconds a replica may stay unready before it is replaced",
        )
        parser.add_argument(
            "--log-format",
            choices=("text", "json"),
            default="text",
            help="the console: lines for a person, or one JSON object a line "
            "(the replicas' own lines included) for a log collector",
        )
        parser.add_argument(
            "--access-log",
            action="store_true",
            help="show the replicas' per-request access log lines (unless "
            "plumbline.toml's [serve] table decides)",
        )
        parser.set_defaults(func=cmd_up)
    elif name == "down":
        parser.add_argument(
            "--name", default=None, help="which cluster (default: the only one running)"
        )
        parser.set_defaults(func=cmd_down)
    elif name == "loadtest":
        parser.description = (
            "Drive Locust load through the local ingress while something breaks, then judge "
            "it: scenarios " + ", ".join(SCENARIOS) + "."
        )
        parser.add_argument("scenario", choices=SCENARIOS)
        parser.add_argument("--name", default=None, help="which cluster (default: the only one)")
        parser.add_argument("--users", type=int, default=10, help="concurrent Locust users")
        parser.add_argument(
            "--baseline", type=float, default=10.0, help="seconds of load before the event"
        )
        parser.add_argument(
            "--after", type=float, default=5.0, help="seconds of load after the event settled"
        )
        parser.add_argument(
            "--reports",
            default="loadtest/reports",
            help="folder for Locust's CSV and HTML reports (one per scenario)",
        )
        parser.set_defaults(func=cmd_loadtest)


def cmd_up(args: argparse.Namespace) -> int:
    from plumbline.platform.cli.manifests import spec_from_args
    from plumbline.platform.local.host import LocalHost

    try:
        find_binary()
    except HAProxyMissing as exc:
        raise CommandError(str(exc)) from None
    try:
        spec = spec_from_args(args)
    except SpecError as exc:
        raise CommandError(f"refused: {exc}", ExitCode.USAGE) from None
    if spec.replicas > MAX_REPLICAS:
        raise CommandError(
            f"refused: replicas {spec.replicas}: the local backend runs at most {MAX_REPLICAS}",
            ExitCode.USAGE,
        )
    host = "127.0.0.1"
    if not port_is_free(host, args.port):
        raise CommandError(
            f"port {args.port} on {host} is taken (another `plumbline up`? see "
            "`plumbline status --local`); choose another with --port"
        )
    _install_packages(spec)
    settings = Settings(
        host=host,
        port=args.port,
        unready_timeout=args.unready_timeout,
        drain_timeout=float(spec.rollout.graceful_timeout_seconds),
        access_log=args.access_log,
        watch=args.watch,
    )
    try:
        local = LocalHost(spec, settings, say=say_json if args.log_format == "json" else say)
    except ControlError as exc:
        raise CommandError(str(exc)) from None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(
            sig, lambda signum, frame: local.request_stop(signal.strsignal(signum) or str(signum))
        )
    console = local.say
    console(
        f"{spec.name}: {spec.replicas} replicas of {spec.plumber_file} "
        f"({spec.workers} R workers each); control socket {local.record.socket}"
    )
    for warning in ingress_warnings(spec):
        console(f"warning: {warning}")
    ignored = [f for f in KUBERNETES_ONLY if f in spec.set_fields]
    if ignored:
        console(f"note: the local backend ignores {', '.join(ignored)} (Kubernetes only)")
    code = local.run()
    if local.fatal:
        raise CommandError(local.fatal)
    return code


def _install_packages(spec) -> None:
    """The app's R packages, installed once before the replicas start (they find them)."""
    from plumbline.packages.library import PackageError
    from plumbline.packages.requirements import RequirementsError
    from plumbline.platform.local.packages import install_packages

    try:
        install_packages(spec, say)
    except (PackageError, RequirementsError) as exc:
        raise CommandError(str(exc), ExitCode.PACKAGES) from None


def cmd_down(args: argparse.Namespace) -> int:
    try:
        result = LocalBackend().delete(AppRef(args.name or ""), emit=say)
    except BackendError as exc:
        raise CommandError(str(exc)) from None
    say(result.verdict)
    return ExitCode.OK if result.ok else ExitCode.FAILED


def cmd_loadtest(args: argparse.Namespace) -> int:
    from plumbline.platform.local.failover import run_scenario

    try:
        record = HostRecord.find(args.name)
    except ControlError as exc:
        raise CommandError(str(exc)) from None
    result = run_scenario(
        args.scenario,
        ControlClient(record),
        users=args.users,
        baseline=args.baseline,
        after=args.after,
        reports=Path(args.reports),
        emit=say,
    )
    return ExitCode.OK if result.passed else ExitCode.FAILED
