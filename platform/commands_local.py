"""`plumbline up`, `down` and `loadtest`: the local cluster (replicas behind HAProxy).

`run_local()` is the `--local` side of restart, scale, status, logs, delete and deploy.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from plumbline.cli import HelpFormatter
from plumbline.platform.haproxy import HAProxyMissing, find_binary
from plumbline.platform.local_cluster import LocalCluster, Settings, port_is_free
from plumbline.platform.local_control import (ControlClient, ControlError, ControlServer,
                                              StateFile)
from plumbline.platform.manifests import ingress_warnings
from plumbline.platform.spec import SpecError, build_spec

DEFAULT_PORT = 8080


def say(line: str) -> None:
    print(line, flush=True)


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else default


def register(subparsers) -> None:
    up = subparsers.add_parser(
        "up", help="run the app locally: replicas behind HAProxy, in the foreground",
        description="Start N replicas of `plumbline serve` behind a real HAProxy ingress and "
                    "keep them running (like `docker compose up`). Ctrl-C stops everything.",
        formatter_class=HelpFormatter)
    up.add_argument("plumber_file", metavar="PLUMBER_R", help="the plumber.R to serve")
    up.add_argument("--name", default=None,
                    help="app name (default: from plumbline.toml or the plumber.R's folder)")
    up.add_argument("--replicas", type=int, default=_env_int("PLUMBLINE_REPLICAS", None),
                    help="replicas (env PLUMBLINE_REPLICAS; default: the spec's, 2)")
    up.add_argument("--workers", type=int, default=None,
                    help="R workers per replica (default: the spec's, 2)")
    up.add_argument("--port", type=int, default=_env_int("PLUMBLINE_INGRESS_PORT", DEFAULT_PORT),
                    help="ingress port on 127.0.0.1 (env PLUMBLINE_INGRESS_PORT)")
    up.add_argument("--watch", action="store_true",
                    help="roll out plumber.R again whenever the file changes")
    up.add_argument("--unready-timeout", type=float, default=15.0,
                    help="seconds a replica may stay unready before it is replaced")
    up.add_argument("--access-log", action="store_true",
                    help="show the replicas' per-request access log lines")
    up.set_defaults(func=cmd_up)

    down = subparsers.add_parser("down", help="stop a local cluster started by `plumbline up`",
                                 formatter_class=HelpFormatter)
    down.add_argument("--name", default=None,
                      help="which cluster (default: the only one running)")
    down.set_defaults(func=lambda args: run_local("delete", args))

    load = subparsers.add_parser(
        "loadtest", help="run a Locust failover scenario against the local cluster",
        description="Drive Locust load through the local ingress while something breaks, "
                    "then judge it: scenarios " + ", ".join(_scenario_names()) + ".",
        formatter_class=HelpFormatter)
    load.add_argument("scenario", choices=_scenario_names())
    load.add_argument("--name", default=None, help="which cluster (default: the only one)")
    load.add_argument("--users", type=int, default=10, help="concurrent Locust users")
    load.add_argument("--baseline", type=float, default=10.0,
                      help="seconds of load before the event")
    load.add_argument("--after", type=float, default=5.0,
                      help="seconds of load after the event settled")
    load.add_argument("--reports", default="loadtest/reports",
                      help="folder for Locust's CSV and HTML reports (one per scenario)")
    load.set_defaults(func=cmd_loadtest)


def _scenario_names() -> list[str]:
    from plumbline.platform.failover import SCENARIOS
    return list(SCENARIOS)


def cmd_up(args) -> int:
    try:
        find_binary()
    except HAProxyMissing as exc:
        return fail(str(exc))
    flags = {"replicas": args.replicas, "workers": args.workers, "name": args.name}
    try:
        spec = build_spec(args.plumber_file, flags)
    except SpecError as exc:
        return fail(str(exc), 2)
    host = "127.0.0.1"
    if not port_is_free(host, args.port):
        return fail(f"port {args.port} on {host} is taken (another `plumbline up`? "
                    "see `plumbline status --local`); choose another with --port")
    for other in StateFile.running():
        if other.name == spec.name:
            return fail(f"a local cluster named {spec.name!r} is already running at "
                        f"{other.url} (pid {other.pid}); stop it with `plumbline down` "
                        "or give --name")
    settings = Settings(host=host, port=args.port, unready_timeout=args.unready_timeout,
                        drain_timeout=float(spec.rollout.graceful_timeout_seconds),
                        access_log=args.access_log, watch=args.watch)
    cluster = LocalCluster(spec, settings, say=say)
    control = ControlServer(cluster)
    control.start()
    state = StateFile(spec.name, cluster.url, control.url, os.getpid())
    state.write()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: cluster.request_stop(signal.strsignal(signum)))
    say(f"{spec.name}: {spec.replicas} replicas of {spec.plumber_file} "
        f"({spec.workers} R workers each); control {control.url}")
    for warning in ingress_warnings(spec):
        say(f"warning: {warning}")
    try:
        code = cluster.run()
    finally:
        state.remove()
        control.stop()
    if cluster.fatal:
        return fail(cluster.fatal)
    return code


def run_local(command: str, args) -> int:
    """restart, scale, status, logs, delete or deploy against the local cluster."""
    try:
        state = StateFile.find(getattr(args, "name", None))
        client = ControlClient(state)
        if command == "status":
            print_status(client.call("GET", "/status"))
            return 0
        if command == "logs":
            return _logs(client, args)
        if command == "delete":
            return _down(client, state)
        if command == "restart":
            reply = client.call("POST", "/restart")
        elif command == "scale":
            reply = client.call("POST", "/scale", {"replicas": args.replicas})
        elif command == "deploy":
            path = str(Path(args.plumber_file).resolve())
            reply = client.call("POST", "/deploy", {"plumber_file": path})
        else:
            return fail(f"{command} is not available for the local cluster")
        ok, _ = client.follow(reply["operation"], say, timeout=900)
        return 0 if ok else 1
    except ControlError as exc:
        return fail(str(exc))


def _down(client: ControlClient, state: StateFile) -> int:
    client.call("POST", "/down")
    say(f"stopping {state.name} (pid {state.pid}): draining replicas, then haproxy")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            os.kill(state.pid, 0)
        except ProcessLookupError:
            say(f"stopped: {state.name}")
            return 0
        time.sleep(0.2)
    return fail(f"{state.name} (pid {state.pid}) is still running after 120s")


def _logs(client: ControlClient, args) -> int:
    lines = int(getattr(args, "tail", None) or 200)
    reply = client.call("GET", f"/logs?lines={lines}")
    for line in reply["lines"]:
        print(line)
    last = reply["last"]
    try:
        while getattr(args, "follow", False):
            time.sleep(0.5)
            reply = client.call("GET", f"/logs?since={last}&lines=1000")
            for line in reply["lines"]:
                print(line, flush=True)
            last = reply["last"]
    except KeyboardInterrupt:
        pass
    return 0


def print_status(status: dict) -> None:
    say(f"{status['name']} (local): {status['url']}  revision {status['revision']}  "
        f"{status['ready']}/{status['desired']} replicas ready")
    say(f"  plumber.R: {status['plumber_file']}")
    rows = [("REPLICA", "STATE", "READY", "PID", "PORT", "REQUESTS", "IN-FLIGHT", "REVISION",
             "AGE")]
    for r in status["replicas"]:
        rows.append((r["name"], r["state"], "yes" if r["ready"] else "no", str(r["pid"]),
                     str(r["port"]), str(r["requests"]), str(r["in_flight"]),
                     str(r["revision"]), f"{r['age']:.0f}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        say("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    say("endpoints:")
    for ep in status["endpoints"]:
        say(f"  {','.join(ep['verbs']):<6} {ep['url']}")


def cmd_loadtest(args) -> int:
    from plumbline.platform.failover import run_scenario
    try:
        state = StateFile.find(args.name)
    except ControlError as exc:
        return fail(str(exc))
    result = run_scenario(args.scenario, state, users=args.users, baseline=args.baseline,
                          after=args.after, reports=Path(args.reports), emit=say)
    return 0 if result.passed else 1
