"""`plumbline render` (an app's manifests as YAML) and `plumbline rbac` (least privilege).

`add_spec_arguments(parser)` and `spec_from_args(args)` are shared with `plumbline deploy`
and `plumbline up`, so every command that builds an AppSpec takes the same flags.
Precedence: flag, then environment variable (PLUMBLINE_<FLAG>, e.g. PLUMBLINE_IMAGE), then
plumbline.toml beside the plumber.R, then the default.
"""

from __future__ import annotations

import argparse
import getpass
import grp
import os
import pwd
import sys
from pathlib import Path

from plumbline.exits import CommandError, ExitCode
from plumbline.platform.kube.helm_values import helm_values
from plumbline.platform.kube.manifests import render, render_yaml
from plumbline.platform.spec.ingress import ingress_warnings
from plumbline.platform.spec.profiles import apply_profile, parse_profiles
from plumbline.platform.kube.rbac import DEFAULT_ACCOUNT, render_rbac
from plumbline.platform.spec.appspec import (
    DEFAULT_IMAGE,
    AppSpec,
    Autoscaling,
    Resources,
    Rollout,
    SpecError,
    build_spec,
    with_api,
)
from plumbline.routes import RouteReportError, route_table
from plumbline.runtime.settings import entrypoint_packages

_R, _ROLL, _HPA = Resources(), Rollout(), Autoscaling()


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} must be KEY=VALUE")
    return key, value


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """The PLUMBER_R argument and every AppSpec flag (all default to None: "not given")."""
    parser.add_argument(
        "plumber_file",
        metavar="PLUMBER_R",
        help="the plumber.R of the app, or its folder; the whole folder ships "
        "with it (as rsconnect bundles it, minus what .rscignore names)",
    )
    add = parser.add_argument
    add(
        "--config",
        metavar="TOML",
        default=None,
        help="app settings file (default: plumbline.toml beside PLUMBER_R, when present)",
    )
    add("--name", help="app name, a DNS label (default: the plumber.R's folder name)")
    add("--namespace", "-n", help="namespace (default: the kube context's namespace, else default)")
    add("--image", help=f"runtime image (default: {DEFAULT_IMAGE})")
    add(
        "--image-digest",
        metavar="sha256:HEX",
        help="pin the runtime image by its digest: pods pull exactly that image (default: by tag)",
    )
    add(
        "--files-in-image",
        action="store_true",
        default=None,
        help="plumber.R and its files are baked into --image at /app: no ConfigMap",
    )
    add(
        "--file",
        dest="extra_files",
        action="append",
        metavar="PATH",
        help="a file or folder of the app's folder, named relative to it, to ship even if "
        ".rscignore leaves it out; repeatable",
    )
    add("--replicas", type=int, help="pods (default: 2)")
    add("--workers", type=int, help="R worker processes per pod (default: 2)")
    add("--cpu", help=f"CPU limit per pod, e.g. 2 or 1500m (default: {_R.cpu_limit})")
    add("--memory", help=f"memory limit per pod, e.g. 2Gi (default: {_R.memory_limit})")
    add("--cpu-request", help=f"CPU request per pod (default: {_R.cpu_request}, at most the limit)")
    add(
        "--memory-request",
        help=f"memory request per pod (default: {_R.memory_request}, at most the limit)",
    )
    add("--gpus", type=int, help="NVIDIA GPUs per pod (default: 0)")
    add(
        "--env",
        action="append",
        type=_pair,
        metavar="KEY=VALUE",
        help="environment variable; repeatable",
    )
    add(
        "--secret-env",
        action="append",
        type=_pair,
        metavar="VAR=SECRET:KEY",
        help="environment variable from a key of a Secret; repeatable",
    )
    add(
        "--image-pull-secret",
        dest="image_pull_secrets",
        action="append",
        metavar="SECRET",
        help="Secret with registry credentials; repeatable",
    )
    add(
        "--label",
        action="append",
        type=_pair,
        metavar="KEY=VALUE",
        help="extra label on every object; repeatable",
    )
    add(
        "--annotation",
        action="append",
        type=_pair,
        metavar="KEY=VALUE",
        help="annotation on the Deployment and its pods; repeatable",
    )
    add(
        "--node-selector",
        action="append",
        type=_pair,
        metavar="KEY=VALUE",
        help="run only on nodes with this label; repeatable",
    )
    add("--ingress-host", help="ingress host name (default: any host)")
    add("--ingress-class", help="IngressClass (default: the cluster's default class)")
    add("--tls-secret", help="TLS Secret for --host (default: plain HTTP)")
    add("--path-prefix", help="route one path prefix instead of one rule per endpoint")
    add("--no-ingress", action="store_true", default=None, help="no Ingress object")
    add("--no-pdb", action="store_true", default=None, help="no PodDisruptionBudget")
    add(
        "--no-network-policy",
        action="store_true",
        default=None,
        help="no NetworkPolicy (default: one admitting only the ingress controller's "
        "namespace to the pods)",
    )
    add(
        "--ingress-namespace",
        metavar="NAMESPACE",
        help="namespace of the ingress controller, admitted by the NetworkPolicy (default: "
        "ingress-nginx)",
    )
    add(
        "--repos",
        metavar="URL[,URL]",
        help="repositories to install the R packages of manifest.json or renv.lock from "
        "(default: the ones the file names)",
    )
    add(
        "--package-cache-claim",
        metavar="PVC",
        help="PVC holding the R package cache shared by the pods (default: an emptyDir per pod)",
    )
    add(
        "--request-timeout",
        type=int,
        metavar="SECONDS",
        help="seconds a request may run in R before 504, 0 for no limit (default: the runtime's, 60)",
    )
    add(
        "--max-queue",
        type=int,
        help="requests waiting per pod before 503 (default: the runtime's, 100)",
    )
    add(
        "--drain-delay",
        type=int,
        metavar="SECONDS",
        help=f"seconds a stopping pod keeps serving (default: {_ROLL.drain_delay_seconds})",
    )
    add(
        "--graceful-timeout",
        type=int,
        metavar="SECONDS",
        help=f"seconds in-flight requests get to finish (default: {_ROLL.graceful_timeout_seconds})",
    )
    add(
        "--hpa-min",
        type=int,
        help=f"autoscale: fewest pods (enables the HPA; default: {_HPA.min_replicas})",
    )
    add(
        "--hpa-max",
        type=int,
        help=f"autoscale: most pods (enables the HPA; default: {_HPA.max_replicas})",
    )
    add(
        "--hpa-cpu",
        type=int,
        metavar="PERCENT",
        help=f"autoscale: target CPU use in %% of the request (enables the HPA; default: "
        f"{_HPA.cpu_utilization})",
    )
    add(
        "--profiles",
        metavar="FILE",
        help="Job Launcher style profiles file limiting what may be deployed (default: none)",
    )
    add("--user", help="whose profile applies (default: the current user)")
    add(
        "--group",
        dest="groups",
        action="append",
        metavar="GROUP",
        help="group whose [@GROUP] profile applies; repeatable (default: the user's Unix groups)",
    )


def _flags(args: argparse.Namespace) -> dict:
    a = vars(args)
    pairs = {
        key: dict(a[key]) if a.get(key) else None
        for key in ("env", "label", "annotation", "node_selector")
    }
    secret_env = {var: ref for var, ref in a["secret_env"]} if a.get("secret_env") else None
    hpa = {k: a.get(k) for k in ("hpa_min", "hpa_max", "hpa_cpu")}
    return {
        "name": a.get("name"),
        "namespace": a.get("namespace"),
        "image": a.get("image"),
        "image_digest": a.get("image_digest"),
        "files_in_image": a.get("files_in_image"),
        "extra_files": _relative_to_app(args.plumber_file, a.get("extra_files")),
        "replicas": a.get("replicas"),
        "workers": a.get("workers"),
        "resources.cpu_limit": a.get("cpu"),
        "resources.memory_limit": a.get("memory"),
        "resources.cpu_request": a.get("cpu_request"),
        "resources.memory_request": a.get("memory_request"),
        "resources.nvidia_gpus": a.get("gpus"),
        "env": pairs["env"],
        "secret_env": secret_env,
        "image_pull_secrets": a.get("image_pull_secrets"),
        "labels": pairs["label"],
        "annotations": pairs["annotation"],
        "node_selector": pairs["node_selector"],
        "ingress.host": a.get("ingress_host"),
        "ingress.class_name": a.get("ingress_class"),
        "ingress.tls_secret": a.get("tls_secret"),
        "ingress.path_prefix": a.get("path_prefix"),
        "ingress.enabled": False if a.get("no_ingress") else None,
        "disruption_budget": False if a.get("no_pdb") else None,
        "network_policy.enabled": False if a.get("no_network_policy") else None,
        "network_policy.ingress_namespace": a.get("ingress_namespace"),
        "packages.repos": _split(a.get("repos")),
        "packages.cache_claim": a.get("package_cache_claim"),
        "request_timeout": a.get("request_timeout"),
        "max_queue": a.get("max_queue"),
        "rollout.drain_delay_seconds": a.get("drain_delay"),
        "rollout.graceful_timeout_seconds": a.get("graceful_timeout"),
        "autoscaling.enabled": True if any(v is not None for v in hpa.values()) else None,
        "autoscaling.min_replicas": hpa["hpa_min"],
        "autoscaling.max_replicas": hpa["hpa_max"],
        "autoscaling.cpu_utilization": hpa["hpa_cpu"],
    }


def _split(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _relative_to_app(plumber_file: str, paths: list[str] | None) -> list[str] | None:
    """--file names a file of the app's folder, relative to that folder (as rsconnect names
    a bundle's files); an absolute path must lie inside it."""
    if not paths:
        return None
    path = Path(plumber_file)
    base = (path if path.is_dir() else path.parent).resolve()
    return [os.path.relpath(Path(p).resolve(), base) if os.path.isabs(p) else p for p in paths]


def unix_groups(user: str) -> set[str]:
    """The user's Unix groups, as the Job Launcher sees them."""
    groups = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    try:
        groups.add(grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name)
    except KeyError:
        pass
    return groups


def spec_from_args(args: argparse.Namespace) -> AppSpec:
    """The AppSpec the flags describe, with plumber's own route table (R loads the file when
    installed) and the caller's profile applied; SpecError if not."""
    spec = build_spec(Path(args.plumber_file), _flags(args), getattr(args, "config", None))
    try:  # with R installed, one Rscript loads the file with plumber
        api = route_table(spec.plumber_file, entrypoint_packages(spec.plumber_file))
    except (ValueError, RouteReportError) as e:  # AnnotationError is a ValueError
        raise SpecError(str(e)) from None
    spec = with_api(spec, api)
    profiles_file = getattr(args, "profiles", None)
    if profiles_file:
        user = getattr(args, "user", None) or getpass.getuser()
        groups = getattr(args, "groups", None)
        spec = apply_profile(
            spec, parse_profiles(profiles_file), user, set(groups) if groups else unix_groups(user)
        )
    return spec


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _render(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
        text = render_yaml([helm_values(spec)] if args.helm_values else render(spec))
    except SpecError as e:
        raise CommandError(f"refused: {e}", ExitCode.USAGE) from None
    for warning in ingress_warnings(spec):
        print(f"plumbline render: warning: {warning}", file=sys.stderr)
    _write(text, args.output)
    return ExitCode.OK


def _rbac(args: argparse.Namespace) -> int:
    if not args.namespace:
        raise CommandError("--namespace is required (or PLUMBLINE_NAMESPACE)", ExitCode.USAGE)
    try:
        text = render_yaml(render_rbac(args.namespace, args.service_account, server=args.server))
    except SpecError as e:
        raise CommandError(f"refused: {e}", ExitCode.USAGE) from None
    _write(text, args.output)
    return ExitCode.OK


def configure(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "render":
        parser.description = (
            "Build the app spec from PLUMBER_R, plumbline.toml and the flags, and print the "
            "ConfigMap, Service, Deployment, PodDisruptionBudget, optional "
            "HorizontalPodAutoscaler and Ingress that `plumbline deploy` would apply."
        )
        add_spec_arguments(parser)
        parser.add_argument(
            "--output",
            "-o",
            metavar="FILE",
            help="write the YAML to FILE (default: standard output)",
        )
        parser.add_argument(
            "--helm-values",
            action="store_true",
            help="print values for charts/plumbline-app instead, which make "
            "Helm deploy the same objects",
        )
        parser.set_defaults(func=_render)
    elif name == "rbac":
        parser.description = (
            "The namespaced permissions plumbline's commands need, and nothing more, for a CI "
            "job or an operator (instead of a cluster-admin binding)."
        )
        parser.add_argument("--namespace", "-n", help="namespace to grant access in (required)")
        parser.add_argument(
            "--service-account",
            default=DEFAULT_ACCOUNT,
            help=f"name of the ServiceAccount, Role and RoleBinding (default: {DEFAULT_ACCOUNT})",
        )
        parser.add_argument(
            "--server",
            action="store_true",
            help="for plumbline server: also the Secrets that hold published "
            "versions' fetch tokens (default: the commands' needs only)",
        )
        parser.add_argument(
            "--output",
            "-o",
            metavar="FILE",
            help="write the YAML to FILE (default: standard output)",
        )
        parser.set_defaults(func=_rbac)
