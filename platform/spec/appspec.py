"""AppSpec: the single description of a deployed app, consumed by every backend.

Built once from a plumber.R (its endpoints), an optional plumbline.toml beside it and
command-line flags (flags win over the file, the file over defaults). Nothing downstream
re-derives any of it. `build_spec` is strict: an unknown key or a value of the wrong kind
is refused with the key and where it came from (the file, or the command line).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plumbline.annotations import AnnotationError, parse_file
from plumbline.endpoints import PlumberFile
from plumbline.platform.spec.quantities import QuantityError, parse_cpu, parse_memory

DEFAULT_IMAGE = "ghcr.io/plumbline/runtime:0.1.0"
RUNTIME_PORT = 8000
APP_DIR = "/app"  # where the bundle (plumber.R and its files) is mounted in the pod
RUNTIME_USER = 10001  # numeric, so the kubelet can check runAsNonRoot
CONFIG_FILE = "plumbline.toml"
ENTRYPOINT_FILE = "entrypoint.R"  # the runtime reads its library() calls: ship it along
VOLUME_KINDS = ("pvc", "secret", "configmap", "csi")
PACKAGE_CACHE_DIR = "/var/cache/plumbline"  # the pod's R package cache volume
RESERVED_MOUNTS = (APP_DIR, "/tmp", PACKAGE_CACHE_DIR, "/bundle", "/var/run/plumbline")
RESERVED_VOLUME_NAMES = ("app-files", "tmp", "package-cache", "bundle-token")
PACKAGE_FILES = ("manifest.json", "renv.lock")  # what says which R packages an app needs
# The labels of plumbline server's pods (charts/plumbline-server): apps' NetworkPolicies let
# them in.
SERVER_POD_LABELS = {
    "app.kubernetes.io/part-of": "plumbline",
    "app.kubernetes.io/component": "server",
}

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_WILDCARD_HOST = re.compile(
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
RESERVED_LABEL_PREFIX = "app.kubernetes.io/"


class SpecError(ValueError):
    """A spec value that cannot be deployed; the message names the field."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SpecError(message)


def check_label_key(key: str, where: str) -> None:
    prefix, _, name = key.rpartition("/")
    _check(
        bool(_LABEL_NAME.match(name))
        and (not prefix or len(prefix) <= 253 and bool(_DNS_SUBDOMAIN.match(prefix))),
        f"{where}: {key!r} is not a valid label or annotation key",
    )


def check_label_value(value: str, where: str) -> None:
    _check(
        len(value) <= 63 and bool(_LABEL_VALUE.match(value)),
        f"{where}: {value!r} is not a valid label value (at most 63 letters, digits, "
        "'-', '_' or '.', starting and ending with a letter or digit)",
    )


def check_http_path(path: str, where: str) -> None:
    """What the Kubernetes API accepts for an Ingress path of type Exact or Prefix."""
    bad = ("//", "/./", "/../", "%2f", "%2F")
    _check(
        bool(_SAFE_PATH.match(path))
        and not any(b in path for b in bad)
        and not path.endswith(("/..", "/.")),
        f"{where}: {path!r} is not a valid HTTP path for an Ingress rule",
    )


@dataclass(frozen=True)
class Resources:
    cpu_request: str = "250m"
    cpu_limit: str = "1"
    memory_request: str = "256Mi"
    memory_limit: str = "1Gi"
    nvidia_gpus: int = 0
    amd_gpus: int = 0

    def __post_init__(self):
        try:
            cpu_req, cpu_lim = parse_cpu(self.cpu_request), parse_cpu(self.cpu_limit)
            mem_req, mem_lim = parse_memory(self.memory_request), parse_memory(self.memory_limit)
        except QuantityError as e:
            raise SpecError(f"resources: {e}") from None
        _check(
            cpu_req <= cpu_lim,
            f"resources.cpu_request {self.cpu_request} is more than "
            f"resources.cpu_limit {self.cpu_limit}",
        )
        _check(
            mem_req <= mem_lim,
            f"resources.memory_request {self.memory_request} is more "
            f"than resources.memory_limit {self.memory_limit}",
        )
        _check(self.nvidia_gpus >= 0 and self.amd_gpus >= 0, "resources: GPUs must be 0 or more")


@dataclass(frozen=True)
class Probes:
    period_seconds: int = 5
    timeout_seconds: int = 2
    failure_threshold: int = 3
    startup_failure_threshold: int = 60  # startup probe: R loading may take a while

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check(getattr(self, f.name) >= 1, f"probes.{f.name}: must be 1 or more")


@dataclass(frozen=True)
class Rollout:
    max_surge: int = 1
    max_unavailable: int = 0
    progress_deadline_seconds: int = 600
    revision_history_limit: int = 10
    auto_rollback: bool = True
    drain_delay_seconds: int = 5  # runtime keeps serving after SIGTERM for LBs to notice
    graceful_timeout_seconds: int = 30  # in-flight requests get this long to finish

    def __post_init__(self):
        _check(
            self.max_surge >= 0 and self.max_unavailable >= 0,
            "rollout.max_surge and rollout.max_unavailable must be 0 or more",
        )
        _check(
            self.max_surge + self.max_unavailable > 0,
            "rollout.max_surge and rollout.max_unavailable cannot both be 0",
        )
        _check(
            self.progress_deadline_seconds >= 1,
            "rollout.progress_deadline_seconds: must be 1 or more",
        )
        _check(
            self.revision_history_limit >= 1,
            "rollout.revision_history_limit: must be 1 or more (rollback needs old revisions)",
        )
        _check(self.drain_delay_seconds >= 0, "rollout.drain_delay_seconds: must be 0 or more")
        _check(
            self.graceful_timeout_seconds >= 1,
            "rollout.graceful_timeout_seconds: must be 1 or more",
        )

    @property
    def termination_grace_seconds(self) -> int:
        """preStop pause + the runtime's own drain + graceful timeout + a margin to exit."""
        return 2 * self.drain_delay_seconds + self.graceful_timeout_seconds + 5


@dataclass(frozen=True)
class Ingress:
    enabled: bool = True
    host: str | None = None
    class_name: str | None = None
    tls_secret: str | None = None
    path_prefix: str | None = None  # one prefix rule instead of one rule per endpoint path
    # More prefixes routed exactly as path_prefix is (a server app's vanity path).
    path_aliases: tuple[str, ...] = ()
    expose_docs: bool = True  # route /__docs__/ and /openapi.json too (never /metrics)
    annotations: dict[str, str] = field(default_factory=dict)  # e.g. controller settings

    def __post_init__(self):
        if self.host is not None:
            _check(
                len(self.host) <= 253 and bool(_WILDCARD_HOST.match(self.host)),
                f"ingress.host {self.host!r}: must be a DNS name such as api.example.com",
            )
        if self.class_name is not None:
            _check(
                bool(_DNS_SUBDOMAIN.match(self.class_name)),
                f"ingress.class_name {self.class_name!r}: must be a DNS subdomain",
            )
        if self.tls_secret is not None:
            _check(
                bool(_DNS_SUBDOMAIN.match(self.tls_secret)),
                f"ingress.tls_secret {self.tls_secret!r}: must be a Secret name",
            )
            _check(
                self.host is not None,
                "ingress.tls_secret needs ingress.host (the certificate is for a host name)",
            )
        if self.path_prefix is not None:
            check_http_path(self.path_prefix, "ingress.path_prefix")
        for alias in self.path_aliases:
            check_http_path(alias, "ingress.path_aliases")
            _check(
                self.path_prefix is not None,
                "ingress.path_aliases needs ingress.path_prefix "
                "(an alias is routed as the prefix is)",
            )
            _check(
                alias.rstrip("/") not in ("", (self.path_prefix or "").rstrip("/")),
                f"ingress.path_aliases: {alias!r} must differ from / and the path prefix",
            )
        for key in self.annotations:
            check_label_key(key, "ingress.annotations")


@dataclass(frozen=True)
class Autoscaling:
    enabled: bool = False
    min_replicas: int = 2
    max_replicas: int = 10
    cpu_utilization: int = 70

    def __post_init__(self):
        _check(self.min_replicas >= 1, "autoscaling.min_replicas: must be 1 or more")
        _check(
            self.max_replicas >= self.min_replicas,
            f"autoscaling.max_replicas {self.max_replicas}: must be at least "
            f"autoscaling.min_replicas {self.min_replicas}",
        )
        _check(
            1 <= self.cpu_utilization <= 100,
            "autoscaling.cpu_utilization: a percentage of the CPU request, 1 to 100",
        )


@dataclass(frozen=True)
class Volume:
    """A volume mounted into the app container."""

    name: str
    mount_path: str
    kind: str  # "pvc", "secret", "configmap", "csi"
    source: str = ""  # claim / secret / configmap name, or CSI driver
    read_only: bool = True
    csi_attributes: dict[str, str] = field(default_factory=dict)
    csi_secret: str = ""  # CSI nodePublishSecretRef (e.g. blob storage account key)

    def __post_init__(self):
        where = f"volume {self.name!r}"
        _check(bool(_DNS_LABEL.match(self.name)), f"{where}: name must be a DNS label")
        _check(self.name not in RESERVED_VOLUME_NAMES, f"{where}: name is used by plumbline")
        _check(
            self.kind in VOLUME_KINDS,
            f"{where}: kind {self.kind!r} is not one of {', '.join(VOLUME_KINDS)}",
        )
        _check(
            bool(self.source),
            f"{where}: source is required (claim, secret or configmap name, or the CSI driver)",
        )
        _check(
            self.mount_path.startswith("/") and ":" not in self.mount_path,
            f"{where}: mount_path {self.mount_path!r} must be an absolute path",
        )
        norm = "/" + self.mount_path.strip("/")
        _check(
            norm not in RESERVED_MOUNTS and norm != "/",
            f"{where}: mount_path {self.mount_path!r} is used by plumbline",
        )
        _check(
            self.kind == "csi" or not (self.csi_attributes or self.csi_secret),
            f"{where}: csi_attributes and csi_secret are only for kind 'csi'",
        )


@dataclass(frozen=True)
class Packages:
    """The R packages of the app's manifest.json or renv.lock that the image lacks: on
    Kubernetes an init container installs them into a cache volume; locally they go to the
    user's cache. Either way one library per exact set, shared by the apps that need it."""

    repos: tuple[str, ...] = ()  # where from (default: the repositories the file names)
    cache_claim: str | None = None  # Kubernetes: PVC of the shared cache (else an emptyDir)
    cache_size: str = "4Gi"  # Kubernetes: size limit of that emptyDir
    cache_dir: str | None = None  # local: the cache folder (default: the user's cache)

    def __post_init__(self):
        from plumbline.packages.requirements import RequirementsError, parse_repos

        try:
            parse_repos(self.repos)
        except RequirementsError as e:
            raise SpecError(f"packages.repos: {e}") from None
        if self.cache_claim is not None:
            _check(
                bool(_DNS_SUBDOMAIN.match(self.cache_claim)),
                f"packages.cache_claim {self.cache_claim!r}: must be a PVC name",
            )
        try:
            parse_memory(self.cache_size)
        except QuantityError as e:
            raise SpecError(f"packages.cache_size: {e}") from None


@dataclass(frozen=True)
class NetworkPolicy:
    """Who may reach the app's pods: the ingress controller's namespace, plumbline server
    (when it deployed the app), and the namespaces listed; nothing else."""

    enabled: bool = True
    ingress_namespace: str = "ingress-nginx"  # where the ingress controller runs
    server_namespace: str | None = None  # where plumbline server runs (set by the server)
    namespaces: tuple[str, ...] = ()  # more namespaces let in (e.g. monitoring, to scrape)

    def __post_init__(self):
        for ns in (self.ingress_namespace, self.server_namespace, *self.namespaces):
            _check(
                ns is None or bool(_DNS_LABEL.match(ns)),
                f"network_policy: {ns!r} is not a namespace name",
            )


@dataclass(frozen=True)
class BundleSource:
    """The pods fetch the app's files from plumbline server (no ConfigMap, no size limit)."""

    url: str  # where the init container downloads the bundle
    sha256: str  # checked before anything is unpacked
    token: str  # short-lived, for this bundle only; reaches the pod as a Secret's file
    # A key-only app's allowed key digests (None: a public app). They travel in the same
    # Secret as the token, which the server rewrites in place: a change of keys or grants
    # reaches the running pods without a rollout.
    access_keys: tuple[str, ...] | None = None

    def __post_init__(self):
        _check(
            bool(re.match(r"^https?://[^\s]+$", self.url)),
            f"bundle_source.url {self.url!r}: must be an http(s) URL",
        )
        _check(bool(re.match(r"^[0-9a-f]{64}$", self.sha256)), "bundle_source.sha256: not a sha256")
        _check(
            bool(re.match(r"^[A-Za-z0-9_-]{16,200}$", self.token)),
            "bundle_source.token: not a token",
        )
        for digest in self.access_keys or ():
            _check(
                bool(re.fullmatch(r"[0-9a-f]{64}", digest)),
                "bundle_source.access_keys: not a sha256 digest",
            )


@dataclass(frozen=True)
class AppSpec:
    name: str
    plumber_file: Path
    namespace: str = "default"
    image: str = DEFAULT_IMAGE
    image_digest: str | None = None  # "sha256:...": the image pinned by content
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
    # Runtime settings passed to `plumbline serve` (None: the runtime's default).
    request_timeout: int | None = None  # --timeout, seconds (0: no limit)
    max_queue: int | None = None  # --max-queue
    files_in_image: bool = False  # the custom-image route: plumber.R baked in at /app, no ConfigMap
    disruption_budget: bool = True
    tmp_size: str = "1Gi"  # the writable /tmp (R's tempdir) beside a read-only root filesystem
    # plumbline.toml when it has a [serve] table: shipped with the app and passed to
    # `plumbline serve --config` in the pod, so one file configures local and cluster runs.
    serve_config: Path | None = None
    # Set by profiles (see profiles.apply_profile), not by flags or plumbline.toml.
    node_affinity: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> allowed values
    deployment_overrides: tuple[tuple[str, Any], ...] = ()  # (RFC 6901 pointer, JSON value)
    set_fields: frozenset[str] = frozenset()  # dotted keys the user gave (flags or file)
    packages: Packages = Packages()
    network_policy: NetworkPolicy = NetworkPolicy()
    # Set by plumbline server: the pods fetch the bundle instead of mounting a ConfigMap.
    bundle_source: BundleSource | None = None

    def __post_init__(self):
        if not _DNS_LABEL.match(self.name):
            raise SpecError(
                f"name {self.name!r}: must be a DNS label (lowercase letters, "
                "digits and '-', starting with a letter, at most 63 characters)"
            )
        if not _DNS_LABEL.match(self.namespace):
            raise SpecError(f"namespace {self.namespace!r}: must be a DNS label")
        if self.replicas < 0:
            raise SpecError(f"replicas {self.replicas}: must be 0 or more")
        if self.workers < 1:
            raise SpecError(f"workers {self.workers}: must be 1 or more")
        _check(
            bool(self.image) and not any(c.isspace() for c in self.image),
            f"image {self.image!r}: must be an image reference",
        )
        if "@" in self.image:
            _check(
                bool(_DIGEST.match(self.image.split("@", 1)[1])) and not self.image_digest,
                f"image {self.image!r}: a digest must read @sha256:<64 hex digits> (or "
                "give it as image_digest)",
            )
        _check(
            self.image_digest is None or bool(_DIGEST.match(self.image_digest)),
            f"image_digest {self.image_digest!r}: must read sha256:<64 hex digits>",
        )
        for secret in self.image_pull_secrets:
            _check(
                bool(_DNS_SUBDOMAIN.match(secret)),
                f"image_pull_secrets: {secret!r} is not a Secret name",
            )
        for var in list(self.env) + list(self.secret_env):
            _check(bool(_ENV_NAME.match(var)), f"env: {var!r} is not a valid variable name")
        both = set(self.env) & set(self.secret_env)
        _check(not both, f"env and secret_env both set {', '.join(sorted(both))}")
        for var, (secret, key) in self.secret_env.items():
            _check(
                bool(_DNS_SUBDOMAIN.match(secret)) and bool(_CONFIG_KEY.match(key)),
                f"secret_env.{var}: {secret}:{key} must be SECRET:KEY",
            )
        names = [v.name for v in self.volumes]
        paths = ["/" + v.mount_path.strip("/") for v in self.volumes]
        _check(len(set(names)) == len(names), "volumes: two volumes have the same name")
        _check(len(set(paths)) == len(paths), "volumes: two volumes have the same mount_path")
        for where, mapping in (("labels", self.labels), ("node_selector", self.node_selector)):
            for key, value in mapping.items():
                check_label_key(key, where)
                check_label_value(value, f"{where}.{key}")
        for key in self.labels:
            _check(
                not key.startswith(RESERVED_LABEL_PREFIX),
                f"labels: {key!r} is set by plumbline (app.kubernetes.io/* labels select "
                "the app's pods)",
            )
        for key in self.annotations:
            check_label_key(key, "annotations")
        try:
            parse_memory(self.tmp_size)
        except QuantityError as e:
            raise SpecError(f"tmp_size: {e}") from None
        for what, value in (
            ("request_timeout", self.request_timeout),
            ("max_queue", self.max_queue),
        ):
            _check(value is None or value >= 0, f"{what} {value}: must be 0 or more")

    @property
    def endpoint_paths(self) -> list[str]:
        """Distinct endpoint path templates, in file order."""
        seen: list[str] = []
        for ep in self.api.endpoints if self.api else ():
            if ep.path.raw not in seen:
                seen.append(ep.path.raw)
        return seen

    @property
    def app_dir(self) -> Path:
        return self.plumber_file.parent

    @property
    def image_ref(self) -> str:
        """The image as pods pull it: pinned by digest when one is given."""
        return f"{self.image}@{self.image_digest}" if self.image_digest else self.image

    @property
    def package_file(self) -> str | None:
        """manifest.json or renv.lock when the app ships one (its R packages)."""
        shipped = {f.name for f in self.extra_files if f.parent == self.app_dir.resolve()}
        return next((name for name in PACKAGE_FILES if name in shipped), None)


def with_api(spec: AppSpec, api: PlumberFile) -> AppSpec:
    """spec with `api` in place of the annotations' reading: plumber's own route table
    (plumbline.routes.route_table, which the commands and backends get from R; the spec
    itself runs no process), and the static folders R code adds (pr_static()) shipped."""
    folders = bundle_files(spec.plumber_file, api, ())
    return dataclasses.replace(
        spec, api=api, extra_files=tuple(dict.fromkeys(spec.extra_files + folders))
    )


# ---- building a spec from plumber.R + plumbline.toml + flags ------------------------------

# Keys that only plumbline itself sets; neither flags nor the file may.
_INTERNAL = {
    "plumber_file",
    "api",
    "node_affinity",
    "deployment_overrides",
    "set_fields",
    "serve_config",
    "bundle_source",
}
# Flags that set a request alongside a limit (a lone limit below the default request lowers it).
_REQUEST_OF = {"cpu_limit": "cpu_request", "memory_limit": "memory_request"}


def build_spec(
    plumber_file: str | Path, flags: dict | None = None, toml_path: str | Path | None = None
) -> AppSpec:
    """The AppSpec for `plumber_file`: flags over plumbline.toml over defaults.

    `plumber_file` may be the app's folder (its plumber.R). `flags` maps keys to values; keys are AppSpec field names, dotted for nested ones
    ("replicas", "resources.cpu_limit", "ingress.host", "env") and None values are ignored
    (an argparse flag that was not given). `toml_path` defaults to plumbline.toml beside
    the plumber.R, read only when it exists.
    """
    plumber_file = Path(plumber_file)
    if plumber_file.is_dir():
        plumber_file = plumber_file / "plumber.R"
    if not plumber_file.is_file():
        raise SpecError(f"{plumber_file}: no such file")
    try:
        api: PlumberFile | None = parse_file(plumber_file)
    except AnnotationError as e:
        if not e.r_decides:
            raise SpecError(str(e)) from None
        api = None  # a name the file registers: only plumber's route table can tell
    except UnicodeDecodeError:
        raise SpecError(f"{plumber_file}: not UTF-8 text") from None

    layers = []
    file_source = serve_config = None
    if toml_path is None and (plumber_file.parent / CONFIG_FILE).is_file():
        toml_path = plumber_file.parent / CONFIG_FILE
    if toml_path is not None:
        file_source = str(toml_path)
        raw = _read_toml(Path(toml_path))
        if "serve" in raw:
            _check_serve_table(raw.pop("serve"), file_source)
            serve_config = Path(toml_path).resolve()
        layers.append(_coerce_layer(raw, file_source))
    layers.append(_coerce_layer(_nest(flags or {}, "the command line"), "the command line"))
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge(merged, layer)
    given = frozenset(_leaf_keys(merged))
    sources = " and ".join(filter(None, ["the command line", file_source]))
    try:
        spec = _assemble(plumber_file, api, merged, given)
    except SpecError as e:
        raise SpecError(f"{e} (settings from {sources})") from None
    if serve_config is None:
        return spec
    if spec.app_dir.resolve() != serve_config.parent:
        raise SpecError(
            f"{serve_config}: a [serve] table ships with the app, so the file must "
            f"be beside {plumber_file}"
        )
    return dataclasses.replace(
        spec,
        serve_config=serve_config,
        extra_files=tuple(dict.fromkeys(spec.extra_files + (serve_config,))),
    )


def _check_serve_table(table, source: str) -> None:
    """The runtime's own settings (`plumbline serve --config`); checked here, used there."""
    from plumbline.platform.spec.serve import ServeTableError, check_serve_table

    try:
        check_serve_table(table, source)
    except ServeTableError as e:
        raise SpecError(str(e)) from None


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None


def _nest(flags: dict, source: str) -> dict:
    """{"ingress.host": "x"} -> {"ingress": {"host": "x"}}; None values dropped."""
    nested: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"{source}: {key!r} conflicts with another setting")
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf].update(value)
        else:
            node[leaf] = value
    return nested


def _coerce_layer(raw: dict, source: str) -> dict:
    """Check one layer's keys and value kinds against AppSpec; names key and source on error."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(AppSpec)
    for key, value in raw.items():
        where = f"{source}: {key}"
        if key in _INTERNAL or key not in hints:
            raise SpecError(f"{source}: unknown setting {key!r}")
        if key == "volumes":
            out[key] = tuple(
                _coerce_volume(v, f"{where}[{i}]")
                for i, v in enumerate(_expect(value, list, where))
            )
        elif key == "secret_env":
            out[key] = {
                var: _secret_ref(ref, f"{where}.{var}")
                for var, ref in _expect(value, dict, where).items()
            }
        elif key == "extra_files":
            out[key] = tuple(_expect(v, str, where) for v in _expect(value, list, where))
        elif dataclasses.is_dataclass(hints[key]):
            out[key] = _coerce_table(hints[key], value, where)
        else:
            out[key] = _coerce_value(value, hints[key], where)
    return out


def _coerce_table(cls, value, where: str) -> dict:
    hints = typing.get_type_hints(cls)
    table = _expect(value, dict, where)
    for key in table:
        if key not in hints:
            raise SpecError(f"{where}: unknown setting {key!r} (known: {', '.join(hints)})")
    return {k: _coerce_value(v, hints[k], f"{where}.{k}") for k, v in table.items()}


def _coerce_value(value, hint, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return _expect(value, bool, where)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where}: {value!r} must be a whole number")
        return value
    if hint is str:
        return _expect(value, str, where)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return _coerce_value(value, inner, where)
    if origin is dict:
        table = _expect(value, dict, where)
        for k, v in table.items():
            _expect(v, str, f"{where}.{k}")
        return dict(table)
    if origin is tuple:
        return tuple(_expect(v, str, where) for v in _expect(value, list, where))
    raise SpecError(f"{where}: cannot be set here")  # pragma: no cover - every field is handled


def _expect(value, kind, where: str):
    names = {
        str: "a string (quoted)",
        bool: "true or false",
        list: "a list",
        dict: "a table of key = value",
    }
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise SpecError(f"{where}: {value!r} must be {names.get(kind, kind.__name__)}")
    return value


def _secret_ref(ref, where: str) -> tuple[str, str]:
    if isinstance(ref, (tuple, list)) and len(ref) == 2:
        ref = f"{ref[0]}:{ref[1]}"
    secret, sep, key = _expect(ref, str, where).partition(":")
    if not sep or not secret or not key:
        raise SpecError(f"{where}: {ref!r} must be SECRET:KEY")
    return secret, key


def _coerce_volume(value, where: str) -> Volume:
    table = _coerce_table(Volume, value, where)
    for required in ("name", "mount_path", "kind"):
        if required not in table:
            raise SpecError(f"{where}: {required!r} is required")
    try:
        return Volume(**table)
    except SpecError as e:
        raise SpecError(f"{where}: {e}") from None


def _merge(into: dict, layer: dict) -> None:
    """Later layer wins; tables and string maps merge key by key, lists are replaced."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


def _leaf_keys(merged: dict) -> list[str]:
    hints = typing.get_type_hints(AppSpec)
    keys = []
    for key, value in merged.items():
        if dataclasses.is_dataclass(hints[key]):
            keys += [f"{key}.{sub}" for sub in value]
        keys.append(key)
    return keys


def _assemble(
    plumber_file: Path, api: PlumberFile | None, merged: dict, given: frozenset
) -> AppSpec:
    values = dict(merged)
    resources = dict(values.pop("resources", {}))
    defaults = Resources()
    for limit, request in _REQUEST_OF.items():
        # A limit given alone, below the default request, brings the request down with it.
        if limit in resources and request not in resources:
            parse = parse_cpu if limit.startswith("cpu") else parse_memory
            try:
                if parse(resources[limit]) < parse(getattr(defaults, request)):
                    resources[request] = resources[limit]
            except QuantityError as e:
                raise SpecError(f"resources.{limit}: {e}") from None
    sub: dict[str, Any] = {"resources": Resources(**resources)}
    for key in ("ingress", "probes", "rollout", "autoscaling", "packages", "network_policy"):
        if key in values:
            cls = typing.get_type_hints(AppSpec)[key]
            sub[key] = cls(**values.pop(key))
    name = values.pop("name", None) or default_name(plumber_file)
    extra = values.pop("extra_files", ())
    spec = AppSpec(
        name=name, plumber_file=plumber_file.resolve(), api=api, set_fields=given, **sub, **values
    )
    files = bundle_files(plumber_file, api, extra)
    return dataclasses.replace(spec, extra_files=files)


def default_name(plumber_file: Path) -> str:
    """The app's directory name as a DNS label ("plumber_on_k8s/" -> "plumber-on-k8s")."""
    folder = plumber_file.resolve().parent.name.lower()
    name = re.sub(r"[^a-z0-9-]+", "-", folder).strip("-")[:63].strip("-")
    if not name or not name[0].isalpha():
        raise SpecError(f"name: cannot derive one from the folder {folder!r}; give --name")
    return name


def bundle_files(
    plumber_file: Path, api: PlumberFile | None, extra: tuple[str, ...]
) -> tuple[Path, ...]:
    """The files shipped beside plumber.R: the whole folder as rsconnect bundles it (minus
    what `.rscignore` names, see files.py), and entrypoint.R, @assets folders and `extra`
    (names relative to the folder) even when ignored.

    Everything must live under the plumber.R's folder, since it is mounted as /app.
    """
    from plumbline.platform.spec.files import app_files

    base = plumber_file.resolve().parent
    wanted: list[Path] = list(app_files(base))
    if (base / ENTRYPOINT_FILE).is_file():
        wanted.append(base / ENTRYPOINT_FILE)
    for assets in api.assets if api else ():
        folder = base / assets.directory
        if folder.is_dir():
            wanted.append(folder)
    for entry in extra:
        path = base / entry
        if not path.exists():
            raise SpecError(f"extra_files: {entry!r} does not exist in {base}")
        wanted.append(path)
    found: list[Path] = []
    for path in wanted:
        resolved = path.resolve()
        if resolved != base and base not in resolved.parents:
            raise SpecError(f"extra_files: {path} is outside the app folder {base}")
        candidates = (
            sorted(p for p in resolved.rglob("*") if p.is_file())
            if resolved.is_dir()
            else [resolved]
        )
        for file in candidates:
            real = file.resolve()
            if base not in real.parents:
                raise SpecError(f"extra_files: {file} links outside the app folder {base}")
            if real != plumber_file.resolve() and real not in found:
                found.append(real)
    return tuple(found)
