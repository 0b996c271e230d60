"""AppSpec: the single description of a deployed app, consumed by every backend.

Built once from a plumber.R (its endpoints), an optional plumbline.toml beside it and
command-line flags (flags win over the file, the file over defaults). Nothing downstream
re-derives any of it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from plumbline.annotations import parse_file
from plumbline.endpoints import PlumberFile

DEFAULT_IMAGE = "ghcr.io/plumbline/runtime:0.1.0"
RUNTIME_PORT = 8000
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


class SpecError(ValueError):
    """A spec value that cannot be deployed; the message names the field."""


@dataclass(frozen=True)
class Resources:
    cpu_request: str = "250m"
    cpu_limit: str = "1"
    memory_request: str = "256Mi"
    memory_limit: str = "1Gi"
    nvidia_gpus: int = 0


@dataclass(frozen=True)
class Probes:
    period_seconds: int = 5
    timeout_seconds: int = 2
    failure_threshold: int = 3
    startup_failure_threshold: int = 60  # startup probe: R loading may take a while


@dataclass(frozen=True)
class Rollout:
    max_surge: int = 1
    max_unavailable: int = 0
    progress_deadline_seconds: int = 600
    revision_history_limit: int = 10
    auto_rollback: bool = True
    drain_delay_seconds: int = 5      # runtime keeps serving after SIGTERM for LBs to notice
    graceful_timeout_seconds: int = 30  # in-flight requests get this long to finish


@dataclass(frozen=True)
class Ingress:
    enabled: bool = True
    host: str | None = None
    class_name: str | None = None
    tls_secret: str | None = None
    path_prefix: str | None = None  # one prefix rule instead of one rule per endpoint path


@dataclass(frozen=True)
class Autoscaling:
    enabled: bool = False
    min_replicas: int = 2
    max_replicas: int = 10
    cpu_utilization: int = 70


@dataclass(frozen=True)
class Volume:
    """A volume mounted into the app container."""

    name: str
    mount_path: str
    kind: str  # "pvc", "secret", "configmap", "csi"
    source: str = ""  # claim / secret / configmap name, or CSI driver
    read_only: bool = True
    csi_attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppSpec:
    name: str
    plumber_file: Path
    namespace: str = "default"
    image: str = DEFAULT_IMAGE
    image_pull_secrets: tuple[str, ...] = ()
    replicas: int = 2
    workers: int = 2  # R worker processes per pod
    resources: Resources = Resources()
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)  # VAR -> (secret, key)
    extra_files: tuple[Path, ...] = ()  # siblings shipped with plumber.R in the ConfigMap
    volumes: tuple[Volume, ...] = ()
    ingress: Ingress = Ingress()
    probes: Probes = Probes()
    rollout: Rollout = Rollout()
    autoscaling: Autoscaling = Autoscaling()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    api: PlumberFile | None = None  # the parsed plumber.R

    def __post_init__(self):
        if not _DNS_LABEL.match(self.name):
            raise SpecError(f"name {self.name!r}: must be a DNS label (lowercase letters, "
                            "digits and '-', starting with a letter, at most 63 characters)")
        if not _DNS_LABEL.match(self.namespace):
            raise SpecError(f"namespace {self.namespace!r}: must be a DNS label")
        if self.replicas < 0:
            raise SpecError(f"replicas {self.replicas}: must be 0 or more")
        if self.workers < 1:
            raise SpecError(f"workers {self.workers}: must be 1 or more")

    @property
    def endpoint_paths(self) -> list[str]:
        """Distinct endpoint path templates, in file order."""
        seen: list[str] = []
        for ep in (self.api.endpoints if self.api else ()):
            if ep.path.raw not in seen:
                seen.append(ep.path.raw)
        return seen


def load_api(plumber_file: Path) -> PlumberFile:
    return parse_file(plumber_file)
