"""The server's settings, declared once: flag, default, help (the CLI adds each flag's
PLUMBLINE_<FLAG> environment variable, as for every command).

`ServerConfig` is the frozen, typed object the server reads by attribute; a bad value fails
loudly, naming the setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plumbline.packages.requirements import parse_repos

_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.I)
_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


class ConfigError(ValueError):
    """A setting got a value it cannot take; the message names the setting and its source."""


def byte_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise ValueError(f"expected a size such as 500MiB or 2GiB, got {value!r}")
        size = int(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]
    if size < 1:
        raise ValueError("must be at least 1 byte")
    return size


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"must be 1 or more, got {number}")
    return number


def _seconds(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(f"must be more than 0, got {value!r}")
    return number


def _url_or_none(value: Any) -> str | None:
    text = str(value).strip().rstrip("/")
    if not text:
        return None
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", text):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return text


def _seconds_or_off(value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"must be 0 (off) or more, got {value!r}")
    return number


def _selector(value: Any) -> str:
    """A PromQL label matcher list with {app} and {namespace} placeholders."""
    text = str(value).strip()
    bare = text.replace("{app}", "").replace("{namespace}", "")
    if "{" in bare or "}" in bare:
        raise ValueError(
            f'expected label matchers such as app="{{app}}" (no braces around them), got {value!r}'
        )
    return text


def _dns_label(value: Any) -> str:
    text = str(value).strip()
    if not re.match(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", text):
        raise ValueError(f"expected a namespace name, got {value!r}")
    return text


def _optional_text(value: Any) -> str | None:
    return str(value).strip() or None


def _digest(value: Any) -> str | None:
    text = str(value).strip()
    if text and not re.match(r"^sha256:[0-9a-f]{64}$", text):
        raise ValueError(f"expected sha256:<64 hex digits>, got {value!r}")
    return text or None


def _on_off(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected on or off, got {value!r}")


def _backend(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("local", "kubernetes"):
        raise ValueError(f"expected local or kubernetes, got {value!r}")
    return text


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = Path("plumbline-server")
    database_url: str | None = None  # None: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = 3939
    public_url: str | None = None  # how users reach the server
    apps_url: str | None = None  # where apps are reached (the ingress); default public_url
    apps_host: str = "127.0.0.1"  # the local backend's ingress (HAProxy) address...
    apps_port: int = 3940  # ...and port
    backend: str = "local"
    namespace: str = "default"  # Kubernetes namespace of published apps
    retention: int = 5  # deployed versions kept per app (the active one always)
    max_bundle_size: int = 2 * 1024**3  # compressed upload limit
    max_expanded_size: int = 4 * 1024**3  # what an archive may expand to
    max_bundle_files: int = 20000
    auth_failures: int = 10  # failed authentications per client and window...
    auth_window: float = 60.0  # ...before 429 until the window passes
    deploy_timeout: float = 900.0  # longest a deploy task waits for its rollout
    task_workers: int = 2  # tasks run at once (one per app at a time)
    session_lifetime: float = 12 * 3600.0  # a dashboard sign-in lasts this long
    metrics_interval: float = 10.0  # seconds between scrapes of the replicas (0: off)
    prometheus_url: str | None = None  # read traffic from this Prometheus instead
    prometheus_selector: str = 'app="{app}"'  # an app's series in that Prometheus
    # R packages of the bundles (manifest.json, renv.lock)
    repos: tuple[str, ...] = ()  # where from (default: the bundle's own repositories)
    package_cache: Path | None = None  # local backend: the libraries (default: in data_dir)
    package_cache_claim: str | None = None  # Kubernetes: the PVC pods share (else emptyDir)
    # Kubernetes: how published apps run
    image: str | None = None  # the runtime image (default: plumbline's)
    image_digest: str | None = None  # pin it by digest
    fetch_url: str | None = None  # where pods download bundles (default: public_url)
    bundle_token_ttl: float = 3600.0  # seconds a pod's download token lives
    network_policy: bool = True  # a NetworkPolicy per app
    ingress_namespace: str = "ingress-nginx"  # the ingress controller's namespace
    server_namespace: str | None = None  # this server's namespace (default: --namespace)

    @property
    def bundle_dir(self) -> Path:
        return self.data_dir / "bundles"

    @property
    def apps_dir(self) -> Path:
        return self.data_dir / "apps"

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def package_dir(self) -> Path:
        return self.package_cache or self.data_dir / "R-libraries"

    @property
    def bundle_fetch_url(self) -> str:
        return self.fetch_url or self.url

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # One driver for PostgreSQL: psycopg 3 (binary wheels), whatever the URL says.
            return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)
        return f"sqlite:///{(self.data_dir / 'plumbline.db').resolve()}"


@dataclass(frozen=True)
class _Setting:
    name: str
    read: Callable[[Any], Any]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS = (
    _Setting("data_dir", Path, "Folder for the SQLite database, bundles and extracted versions."),
    _Setting(
        "database_url",
        str,
        "Database URL, e.g. postgresql://user@host/db (default: SQLite in the data folder).",
    ),
    _Setting("host", str, "Address to listen on."),
    _Setting("port", int, "TCP port to listen on."),
    _Setting(
        "public_url", _url_or_none, "URL users reach the server at (default: http://HOST:PORT)."
    ),
    _Setting("apps_host", str, "Address the local backend's ingress (HAProxy) listens on."),
    _Setting("apps_port", int, "Port of the local backend's ingress."),
    _Setting(
        "apps_url",
        _url_or_none,
        "URL of the ingress that serves the apps; app URLs are "
        "<apps-url>/content/<name>/ (default: the local ingress, or --public-url).",
    ),
    _Setting("backend", _backend, "Where apps run: local (replicas behind HAProxy) or kubernetes."),
    _Setting("namespace", str, "Kubernetes namespace for published apps."),
    _Setting("retention", _positive_int, "Deployed versions kept per app for rollback."),
    _Setting("max_bundle_size", byte_size, "Largest bundle upload (compressed)."),
    _Setting("max_expanded_size", byte_size, "Largest size a bundle may expand to."),
    _Setting("max_bundle_files", _positive_int, "Most files a bundle may hold."),
    _Setting(
        "auth_failures",
        _positive_int,
        "Failed authentications allowed per client "
        "address within --auth-window before it gets 429.",
    ),
    _Setting("auth_window", _seconds, "Seconds over which failed authentications count."),
    _Setting("deploy_timeout", _seconds, "Seconds a deploy task waits for its rollout."),
    _Setting("task_workers", _positive_int, "Tasks (deploys, restarts...) run at once."),
    _Setting(
        "session_lifetime", _seconds, "Seconds a dashboard sign-in lasts before it must be renewed."
    ),
    _Setting(
        "metrics_interval",
        _seconds_or_off,
        "Seconds between two reads of every replica's /metrics for the dashboard's charts "
        "(kept for an hour, in memory); 0 turns scraping off.",
    ),
    _Setting(
        "prometheus_url",
        _url_or_none,
        "Read the dashboard's traffic charts from this Prometheus (its HTTP API) instead of "
        "scraping the replicas (default: none).",
    ),
    _Setting(
        "prometheus_selector",
        _selector,
        "Label matchers of one app's series in that Prometheus; {app} is the app's name "
        "(slug), {namespace} its namespace.",
    ),
    _Setting(
        "repos",
        parse_repos,  # a RequirementsError is a ValueError
        "Repositories to install bundles' R packages from, comma-separated URLs; a binary "
        "repository for the runtime image's Linux distribution (Posit Package Manager's "
        "__linux__/bookworm) saves compiling (default: each bundle's own repositories).",
    ),
    _Setting(
        "package_cache",
        Path,
        "Local backend: folder of the installed R libraries, shared by the apps "
        "(default: R-libraries in the data folder).",
    ),
    _Setting(
        "package_cache_claim",
        _optional_text,
        "Kubernetes: PVC (ReadWriteMany across nodes) holding the R package cache the apps' "
        "pods share (default: an emptyDir per pod).",
    ),
    _Setting(
        "image",
        _optional_text,
        "Kubernetes: runtime image of published apps (default: plumbline's).",
    ),
    _Setting("image_digest", _digest, "Kubernetes: pin that image by digest (sha256:...)."),
    _Setting(
        "fetch_url",
        _url_or_none,
        "Kubernetes: URL the apps' pods download their bundle from, e.g. the server's "
        "Service (default: --public-url).",
    ),
    _Setting(
        "bundle_token_ttl",
        _seconds,
        "Seconds a pod's bundle download token is valid; renewed at a third of it.",
    ),
    _Setting("network_policy", _on_off, "Kubernetes: give each app a NetworkPolicy (on/off)."),
    _Setting(
        "ingress_namespace",
        _dns_label,
        "Kubernetes: namespace of the ingress controller, which the apps' NetworkPolicy lets in.",
    ),
    _Setting(
        "server_namespace",
        _dns_label,
        "Kubernetes: this server's namespace, which the apps' NetworkPolicy lets in (default: "
        "--namespace).",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServerConfig()
    for s in SETTINGS:
        default = getattr(defaults, s.name)
        shown = (
            "" if "default" in s.help else f" (default: {'none' if default is None else default})"
        )
        parser.add_argument(
            s.flag, dest=s.name, default=None, metavar=s.name.upper(), help=s.help + shown
        )


def resolve(args: argparse.Namespace) -> ServerConfig:
    """The config from parsed flags (the CLI has put PLUMBLINE_<FLAG> variables in them)."""
    given = vars(args)
    values = {}
    for s in SETTINGS:
        if given.get(s.name) is None:
            continue
        try:
            values[s.name] = s.read(given[s.name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid value for {s.flag}: {exc}") from None
    return dataclasses.replace(ServerConfig(), **values)
