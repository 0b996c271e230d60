"""The one `plumbline serve` command line of an app: AppSpec -> arguments and environment.

A pod's container (manifests.py, the Helm chart) and a local replica (the local backend)
both run what `serve_arguments` returns, so they honour the same spec and the same
`[serve]` table of plumbline.toml (passed with --config). The platform itself sets only
the settings in PLATFORM_OWNED, from spec fields; plumbline.toml may not set those in
`[serve]` (`check_serve_table` refuses them, naming the spec field to use instead), so a
flag never silently overrides the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plumbline.runtime import settings

if TYPE_CHECKING:  # spec.py imports this module
    from plumbline.platform.spec.appspec import AppSpec

# Settings `plumbline serve` gets from the platform: setting -> where the spec sets it.
PLATFORM_OWNED: dict[str, str] = {
    "host": "nothing: the platform picks the listen address (0.0.0.0 in a pod, "
    "loopback behind the local HAProxy)",
    "port": "nothing: the platform picks the port (8000 in a pod, a free one locally)",
    "workers": "`workers` (flag --workers)",
    "drain_delay": "`rollout.drain_delay_seconds` (flag --drain-delay)",
    "graceful_timeout": "`rollout.graceful_timeout_seconds` (flag --graceful-timeout)",
    "timeout": "`request_timeout` (flag --request-timeout)",
    "max_queue": "`max_queue` (flag --max-queue)",
    "packages": "nothing: the platform installs the app's R packages itself",
    "package_cache": "`packages.cache_dir` (locally) or `packages.cache_claim` (Kubernetes)",
    "repos": "`packages.repos` (flag --repos)",
}


class ServeTableError(ValueError):
    """A `[serve]` table that cannot ship with an app; the message names the key and source."""


def check_serve_table(table: Any, source: str) -> dict[str, Any]:
    """The app's `[serve]` table checked against the runtime's own setting declarations.

    Returns {setting name: typed value}. A key the platform sets itself is refused with the
    spec field to use instead.
    """
    try:
        values = settings.read_table(table, source)
    except settings.SettingError as exc:
        raise ServeTableError(str(exc)) from None
    for name in values:
        if name in PLATFORM_OWNED:
            key = settings.BY_NAME[name].file_key
            raise ServeTableError(
                f"{source}: [serve] {key} is set by plumbline from the app spec, so it cannot "
                f"be set here; use {PLATFORM_OWNED[name]} instead"
            )
    return values


@dataclass(frozen=True)
class Placement:
    """Where one replica runs: how it finds its files and what it listens on."""

    plumber_file: str  # the plumber.R as the replica sees it
    app_dir: str  # the folder of plumber.R and plumbline.toml as the replica sees it
    host: str
    port: int
    # The runtime's own drain after SIGTERM. None: the spec's rollout.drain_delay_seconds
    # (a pod); the local backend drains a replica in HAProxy before it signals it, so 0.
    drain_delay: int | None = None
    # The app's R packages: "cached" in a pod (its init container installed them), "install"
    # locally; and the cache folder as the replica sees it (None: the runtime's default).
    packages: str = "install"
    package_cache: str | None = None


def pod_placement(app_dir: str, plumber_key: str, port: int, package_cache: str) -> Placement:
    return Placement(
        f"{app_dir}/{plumber_key}",
        app_dir,
        "0.0.0.0",
        port,
        packages="cached",
        package_cache=package_cache,
    )


def local_placement(spec: AppSpec, port: int) -> Placement:
    folder = spec.serve_config.parent if spec.serve_config else spec.app_dir
    return Placement(
        str(spec.plumber_file),
        str(folder),
        "127.0.0.1",
        port,
        drain_delay=0,
        package_cache=spec.packages.cache_dir,
    )


def _flag(name: str, value: Any) -> list[str]:
    setting = settings.BY_NAME[name]
    return [setting.flag, setting.render(value)]


def serve_arguments(spec: AppSpec, where: Placement) -> list[str]:
    """`serve PLUMBER_R --flag value ...`: every argument after the program name."""
    drain = spec.rollout.drain_delay_seconds if where.drain_delay is None else where.drain_delay
    args = [
        "serve",
        where.plumber_file,
        *_flag("host", where.host),
        *_flag("port", where.port),
        *_flag("workers", spec.workers),
        *_flag("drain_delay", drain),
        *_flag("graceful_timeout", spec.rollout.graceful_timeout_seconds),
    ]
    if spec.serve_config is not None:
        args += ["--config", f"{where.app_dir}/{spec.serve_config.name}"]
    if spec.request_timeout is not None:
        args += _flag("timeout", spec.request_timeout)
    if spec.max_queue is not None:
        args += _flag("max_queue", spec.max_queue)
    if spec.package_file is not None:
        args += _flag("packages", where.packages)
        if where.package_cache:
            args += _flag("package_cache", where.package_cache)
        if spec.packages.repos:
            args += _flag("repos", spec.packages.repos)
    return args


def serve_environment(spec: AppSpec) -> dict[str, str]:
    """The plain environment variables of the app (Secret references stay with the backend)."""
    return dict(spec.env)


def serve_table(spec: AppSpec) -> dict[str, Any]:
    """The settings the app's own `[serve]` table sets, typed ({} without one)."""
    if spec.serve_config is None:
        return {}
    try:
        return settings.read_config(Path(spec.serve_config))
    except settings.SettingError as exc:
        raise ServeTableError(str(exc)) from None


def without_serve_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """An inherited environment minus the PLUMBLINE_* variables `plumbline serve` reads.

    A local replica must run as a pod would: a PLUMBLINE_TIMEOUT left in the shell that
    started `plumbline up` must not override the app's plumbline.toml.
    """
    ours = {s.env for s in settings.SETTINGS} | {settings.CONFIG_ENV}
    return {key: value for key, value in environ.items() if key not in ours}
