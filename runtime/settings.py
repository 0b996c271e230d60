"""Every `plumbline serve` setting, declared once (gunicorn-style), read into one typed,
frozen `ServeConfig`.

Each field of ServeConfig declares its setting: how a value is read (and checked), its
default and its help. The flag (`--max-queue`), the environment variable
(`PLUMBLINE_MAX_QUEUE`), the `[serve]` key (`max-queue`), the argparse options and
docs/configuration.md all follow from the field's name. Precedence: command-line flag, then
environment variable, then the `[serve]` table of a TOML file given with --config (or
PLUMBLINE_CONFIG), then the default. A bad value anywhere fails loudly, naming the setting
and where the value came from. The control plane checks an app's `[serve]` table with
`read_table`, against these same declarations.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plumbline.exits import exit_codes_markdown
from plumbline.packages.requirements import parse_repos
from plumbline.runtime.protocol import MAX_BODY_SIZE, MAX_HEADER_SIZE

ENV_PREFIX = "PLUMBLINE_"
CONFIG_ENV = "PLUMBLINE_CONFIG"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingError(ValueError):
    """A setting got a value it cannot take; the message names the setting and the source."""


@dataclass(frozen=True)
class ValueType:
    """How one kind of value is read from a flag, an environment variable or TOML."""

    kind: str  # as the docs name it
    metavar: str  # as --help shows it
    parse: Callable[[Any], Any]  # str (flag/env) or TOML value -> typed value; ValueError if bad


# --- value readers: each takes a str (flag/env) or a TOML value, returns the typed value ---


def _integer(minimum: int) -> ValueType:
    def read(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected an integer, got {value!r}")
        number = int(value) if isinstance(value, int) else int(value.strip())
        if number < minimum:
            raise ValueError(f"must be >= {minimum}, got {number}")
        return number

    return ValueType("integer", "N", read)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number of seconds, got {value!r}")
    number = float(value)
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"must be a finite number >= 0, got {value!r}")
    return number


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


def _byte_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"must be >= 1 byte, got {value}")
        return value
    m = _SIZE.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"expected a size such as 1048576, 512KiB or 10MiB, got {value!r}")
    size = int(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]
    if size < 1:
        raise ValueError(f"must be >= 1 byte, got {value!r}")
    return size


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected on/off (true/false, 1/0, yes/no), got {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")


def _packages(value: Any) -> tuple[str, ...]:
    """R package names: a comma-separated string or a TOML list."""
    items = value if isinstance(value, list) else str(value).split(",")
    names = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        if not _PACKAGE.match(name):
            raise ValueError(f"{name!r} is not an R package name")
        names.append(name)
    return tuple(names)


def _log_level(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return text


NATURAL = _integer(0)
POSITIVE = _integer(1)
SECONDS = ValueType("seconds", "SECONDS", _seconds)
BYTES = ValueType("bytes", "SIZE", _byte_size)
ON_OFF = ValueType("on/off", "on|off", _boolean)
TEXT = ValueType("string", "TEXT", _text)
PACKAGES = ValueType("list of R packages", "PKG[,PKG]", _packages)
LEVEL = ValueType("one of " + "|".join(LOG_LEVELS), "LEVEL", _log_level)

_ROOT_PATH = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$")


def _root_path(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if text and not _ROOT_PATH.match(text):
        raise ValueError(f"expected a path such as /content/my-api, got {value!r}")
    return text


def _root_paths(value: Any) -> tuple[str, ...]:
    """Path prefixes: a comma-separated string or a TOML list."""
    items = value if isinstance(value, list) else str(value).split(",")
    paths = tuple(_root_path(item) for item in items if str(item).strip())
    if any(not path for path in paths):
        raise ValueError(f"/ cannot be an alias of the root path, got {value!r}")
    return paths


ACCESS_MODES = ("public", "keys")


def _access(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ACCESS_MODES:
        raise ValueError(f"expected one of {', '.join(ACCESS_MODES)}, got {value!r}")
    return text


_HASH = re.compile(r"^[0-9a-f]{64}$")


def _key_hashes(value: Any) -> tuple[str, ...]:
    """sha256 hex digests of API keys: a comma-separated string or a TOML list."""
    items = value if isinstance(value, list) else str(value).split(",")
    hashes = tuple(str(item).strip().lower() for item in items if str(item).strip())
    for item in hashes:
        if not _HASH.match(item):
            raise ValueError(f"{item[:12]!r}... is not a sha256 hex digest")
    return hashes


PACKAGE_MODES = ("install", "cached", "off")


def _package_mode(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in PACKAGE_MODES:
        raise ValueError(f"expected one of {', '.join(PACKAGE_MODES)}, got {value!r}")
    return text


def default_package_cache() -> str:
    """Where installed R libraries are kept: the user's cache folder (XDG)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "plumbline", "R-libraries")


def _memory_size(value: Any) -> int | None:
    """A byte size, 0 (no limit), or auto (None: derived at start)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    if value in (0, "0") or (isinstance(value, str) and value.strip() == "0"):
        return 0
    return _byte_size(value)


ROOT_PATH = ValueType("path", "PATH", _root_path)
ROOT_PATHS = ValueType("list of paths", "PATH[,PATH]", _root_paths)
PACKAGE_MODE = ValueType("one of " + "|".join(PACKAGE_MODES), "install|cached|off", _package_mode)
REPOS = ValueType("list of URLs", "URL[,URL]", parse_repos)  # RequirementsError: ValueError
MEMORY = ValueType("bytes, 0 or auto", "SIZE|0|auto", _memory_size)
ACCESS = ValueType("one of " + "|".join(ACCESS_MODES), "public|keys", _access)
KEY_HASHES = ValueType("list of sha256", "SHA256[,SHA256]", _key_hashes)
FILE = ValueType("file", "FILE", lambda value: str(value).strip())


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a pod's limit).

    os.cpu_count() is the node's count; in a pod limited to 1 CPU on a 64-core node it would
    start 64 R workers.
    """
    count = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    limit = _cgroup_cpu_limit()
    return max(1, min(count, limit) if limit else count)


def _cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    try:
        quota, period = (root / "cpu.max").read_text().split()  # cgroup v2
    except (OSError, ValueError):
        try:  # cgroup v1
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if quota in ("max", "-1"):
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def _setting(value_type: ValueType, default: Any, help: str, default_doc: str = "") -> Any:
    """A ServeConfig field that is a setting (its declaration lives in the field's metadata)."""
    return field(
        default=default, metadata={"type": value_type, "help": help, "default_doc": default_doc}
    )


@dataclass(frozen=True)
class ServeConfig:
    """The effective settings of one `plumbline serve`; `resolve()` builds it."""

    host: str = _setting(
        TEXT,
        "127.0.0.1",
        "Address to listen on. Use 0.0.0.0 in a container so the pod IP is reachable.",
    )
    port: int = _setting(NATURAL, 8000, "TCP port to listen on (0 picks a free port).")
    workers: int = _setting(
        POSITIVE,
        available_cpus(),
        "Number of R worker processes; each runs one request at a time.",
        default_doc="CPUs available (cgroup limit)",
    )
    max_queue: int = _setting(
        NATURAL,
        100,
        "Requests that may wait for a free worker; beyond it clients get 503 with Retry-After.",
    )
    timeout: float = _setting(
        SECONDS,
        60.0,
        "Seconds one request may run in R before the client gets 504 and the worker is "
        "replaced; also the longest a request waits for a free worker before 503 "
        "(0 = no limit).",
    )
    max_requests: int = _setting(
        NATURAL, 0, "Recycle a worker after this many requests, to bound memory growth (0 = never)."
    )
    max_requests_jitter: int = _setting(
        NATURAL, 0, "Add a random 0..N to max-requests per worker so they do not recycle together."
    )
    max_worker_memory: int | None = _setting(
        MEMORY,
        None,
        "Memory one worker may allocate beyond what it holds once the app is loaded (its "
        "data segment, RLIMIT_DATA): past it an allocation fails inside R as R's own "
        "'cannot allocate vector' error, plumber's 500, instead of the container being "
        "OOM-killed. auto: what the container's memory limit (cgroup) leaves once the "
        "first worker has loaded, less a tenth, shared among the workers (no limit when the "
        "container has none); 0: no limit.",
        default_doc="auto",
    )
    recycle_memory: int | None = _setting(
        MEMORY,
        None,
        "Replace a worker, after the request it ran and once its successor has loaded, when "
        "its resident memory has grown by more than this since it loaded the app (like "
        "uWSGI's reload-on-rss). auto: half of max-worker-memory; 0: never.",
        default_doc="auto",
    )
    max_body: int = _setting(
        BYTES,
        10 * 1024**2,
        "Largest request body accepted, in bytes (suffixes KiB, MiB, GiB allowed); "
        "larger bodies get 413 before anything reaches R.",
        default_doc="10MiB",
    )
    max_header_bytes: int = _setting(
        BYTES,
        64 * 1024,
        "Largest total size of a request's header fields (names and values); larger, or "
        "more than max-headers fields, get 431 and the connection closes.",
        default_doc="64KiB",
    )
    max_headers: int = _setting(
        POSITIVE, 100, "Most header fields one request may have (more: 431)."
    )
    max_url_length: int = _setting(
        POSITIVE, 8192, "Longest request target (path and query) in bytes; longer gets 414."
    )
    header_timeout: float = _setting(
        SECONDS,
        10.0,
        "Seconds a client has to send a whole request head once it started one (else 408 "
        "and the connection closes), and a new connection to start its first request (else "
        "it is closed) (0 = no limit).",
    )
    body_timeout: float = _setting(
        SECONDS,
        30.0,
        "Seconds the server waits for more of a request body; past it 408, the connection "
        "closes and the request never reaches R (0 = no limit).",
    )
    keep_alive_timeout: float = _setting(
        SECONDS,
        5.0,
        "Seconds an idle keep-alive connection stays open for the client's next request. "
        "Behind a load balancer that reuses connections, make it longer than the balancer's "
        "own idle timeout.",
    )
    max_connections: int = _setting(
        POSITIVE,
        1000,
        "Most client connections open at once. One more is answered at once and closed: "
        "/livez and /readyz as usual (so probes still pass), anything else 503 with "
        "Retry-After.",
    )
    drain_delay: float = _setting(
        SECONDS,
        5.0,
        "On SIGTERM/SIGINT, keep serving this many seconds with /readyz at 503 so load "
        "balancers stop sending traffic, then stop listening.",
    )
    graceful_timeout: float = _setting(
        SECONDS,
        30.0,
        "After the listener closes, seconds in-flight requests get to finish before "
        "they are cut off and the workers stopped.",
    )
    attach: tuple[str, ...] = _setting(
        PACKAGES,
        (),
        "R packages to attach in every worker before plumber.R is loaded, comma-separated; "
        "added to the library()/require() calls of an entrypoint.R beside plumber.R.",
        default_doc="packages named in entrypoint.R",
    )
    inline_futures: bool = _setting(
        ON_OFF,
        True,
        "Run future({...}) blocks inline in the worker (concurrency comes from the pool); "
        "off uses the future package itself.",
    )
    preload: bool = _setting(
        ON_OFF,
        True,
        "Load R, plumber and the app once and fork the workers from that loaded process, "
        "so they share its memory (a model loaded at start) copy-on-write and a replaced "
        "worker starts in milliseconds. Turned off by itself, with a warning, when the "
        "loaded app holds an open connection, a socket or a thread of its own; off: each "
        "worker starts R and loads the app.",
    )
    refork_after_full_gc: bool = _setting(
        ON_OFF,
        True,
        "With preload: replace a worker (after its request, once its successor has loaded, "
        "at most every 10 s) when R has run a full garbage collection in it, which writes to "
        "every live R object and so makes R's whole heap (~45-75 MiB with plumber loaded) "
        "private to that worker; the fresh fork shares it with the zygote again. off: keep "
        "workers (their memory then grows towards one copy of R's heap each).",
    )
    pipeline: bool = _setting(
        ON_OFF,
        True,
        "When every worker is busy, write one more request to a worker whose current request "
        "is on a route that takes at most 5 ms in R on average, so it starts as soon as that "
        "one is answered (a worker never sleeps between two requests under load). Such a "
        "request never starts before the one ahead of it is answered, and goes to another "
        "worker if that one times out or its worker dies. off: a request waits for a free "
        "worker.",
    )
    health_interval: float = _setting(
        SECONDS,
        5.0,
        "Seconds between calls of the app's own GET /health on idle workers (0 = never).",
    )
    log_level: str = _setting(LEVEL, "info", "Minimum level of the JSON server log.")
    access_log: bool = _setting(ON_OFF, True, "Write one JSON line per request to stdout.")
    docs: bool = _setting(ON_OFF, True, "Serve Swagger UI at /__docs__/ (and /openapi.json).")
    root_path: str = _setting(
        ROOT_PATH,
        "",
        "Public path prefix the app is reached under behind a proxy, e.g. /content/my-api: "
        "removed from request paths that carry it, so plumber.R sees /parity. /openapi.json "
        "then names a relative server URL, so Swagger UI calls the API through the prefix "
        "its page was opened by.",
        default_doc="none",
    )
    root_path_aliases: tuple[str, ...] = _setting(
        ROOT_PATHS,
        (),
        "Other public path prefixes the app is also reached under (a vanity path such as "
        "/parity-api), comma-separated: removed from request paths as root-path is.",
        default_doc="none",
    )
    access: str = _setting(
        ACCESS,
        "public",
        "Who may call the app: public, or keys (requests need `Authorization: Key <key>` "
        "with a key whose sha256 is in --access-keys or --access-keys-file; /livez and "
        "/readyz stay open for probes).",
    )
    access_keys: tuple[str, ...] = _setting(
        KEY_HASHES,
        (),
        "sha256 hex digests of the API keys allowed when access is keys, comma-separated.",
        default_doc="none",
    )
    access_keys_file: str = _setting(
        FILE,
        "",
        "File of allowed key digests, one sha256 hex a line; re-read when it changes, so "
        "keys are granted and revoked without a restart.",
        default_doc="none",
    )
    metrics_keys: tuple[str, ...] = _setting(
        KEY_HASHES,
        (),
        "sha256 hex digests of keys that may read /metrics only (a scraper's, such as "
        "plumbline server's), comma-separated; sent as `Authorization: Key <key>` or "
        "`X-Plumbline-Metrics-Key: <key>`. When set, /metrics answers only these keys (and, "
        "when access is keys, the app's own keys); unset, /metrics is as open as the app's "
        "probes.",
        default_doc="none",
    )
    packages: str = _setting(
        PACKAGE_MODE,
        "install",
        "R packages of a manifest.json (rsconnect) or renv.lock beside plumber.R: install "
        "what R lacks (or has in another version) into a shared library in package-cache "
        "and put it first on the workers' .libPaths(); cached: use that library, never "
        "install (fail if it is missing); off: ignore those files.",
    )
    package_cache: str = _setting(
        FILE,
        default_package_cache(),
        "Folder of the installed R libraries, one per exact set of packages, shared by "
        "every app that needs that set.",
        default_doc="~/.cache/plumbline/R-libraries",
    )
    repos: tuple[str, ...] = _setting(
        REPOS,
        (),
        "Repositories to install R packages from, comma-separated URLs (a binary "
        "repository for this Linux distribution, such as Posit Package Manager's, saves "
        "compiling); default: the repositories the manifest.json or renv.lock names.",
        default_doc="the bundle's own",
    )

    def __post_init__(self) -> None:
        check_limits(self)


def check_limits(config: ServeConfig) -> None:
    """Refuse limits under which a request could make a frame a worker cannot read.

    A worker reads a request frame whose header holds the URL and the header fields (as JSON,
    and the URL and Content-Type values again in its call key) and whose body is the request
    body (runtime/protocol.py caps both). In the worst case every byte of the URL and the
    header fields is JSON-escaped to six characters (\\u00XX), twice.
    """
    worst = (
        12 * (config.max_url_length + config.max_header_bytes)
        + 8 * config.max_headers
        + _FRAME_HEADER_SLACK
    )
    if worst > MAX_HEADER_SIZE:
        raise SettingError(
            f"max-url-length ({config.max_url_length}) and max-header-bytes "
            f"({config.max_header_bytes}) are too large together: a request could make a "
            f"frame header of {worst} bytes, over the workers' {MAX_HEADER_SIZE}"
        )
    if config.max_body > MAX_BODY_SIZE:
        raise SettingError(
            f"max-body ({config.max_body}) is over the largest body a worker "
            f"reads ({MAX_BODY_SIZE} bytes)"
        )


# The frame header's own fields besides the URL and the header fields (method, addresses).
_FRAME_HEADER_SLACK = 1024


@dataclass(frozen=True)
class Setting:
    """One setting of ServeConfig, with the names it goes by everywhere."""

    name: str  # attribute name, e.g. max_queue
    type: ValueType
    default: Any
    help: str
    default_doc: str = ""  # how the default reads in --help and docs when it is computed

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def file_key(self) -> str:
        return self.name.replace("_", "-")

    @property
    def shown_default(self) -> str:
        if self.default_doc:
            return self.default_doc
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return str(self.default)

    def parse(self, value: Any, source: str) -> Any:
        try:
            return self.type.parse(value)
        except (ValueError, TypeError) as exc:
            raise SettingError(
                f"invalid value for setting '{self.file_key}' (from {source}): {exc}"
            ) from None

    def render(self, value: Any) -> str:
        """A value as a flag or an environment variable takes it (the inverse of parse)."""
        if value is None and self.type is MEMORY:
            return "auto"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, tuple):
            return ",".join(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.metadata["type"], f.default, f.metadata["help"], f.metadata["default_doc"])
    for f in dataclasses.fields(ServeConfig)
)
BY_NAME = {s.name: s for s in SETTINGS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per setting; defaults stay None so a missing flag falls through to env."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"TOML file whose [serve] table sets any option below "
        f"(env {CONFIG_ENV}; default: none)",
    )
    for s in SETTINGS:
        parser.add_argument(
            s.flag,
            dest=s.name,
            metavar=s.type.metavar,
            default=None,
            help=f"{s.help} (env {s.env}; default: {s.shown_default})",
        )


def resolve(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> ServeConfig:
    """The effective value of every setting: flag, then env, then config file, then default."""
    environ = os.environ if environ is None else environ
    values = vars(args) if args is not None else {}
    config_path = values.get("config") or environ.get(CONFIG_ENV)
    from_file = read_config(Path(config_path)) if config_path else {}
    result: dict[str, Any] = {}
    for s in SETTINGS:
        if values.get(s.name) is not None:
            result[s.name] = s.parse(values[s.name], f"flag {s.flag}")
        elif s.env in environ:
            result[s.name] = s.parse(environ[s.env], f"env {s.env}")
        elif s.name in from_file:
            result[s.name] = from_file[s.name]
    return ServeConfig(**result)


def read_config(path: Path) -> dict[str, Any]:
    """The `[serve]` table of a TOML file, checked: {setting name: typed value}."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingError(f"config file {path} is not valid TOML: {exc}") from None
    return read_table(data.get("serve", {}), f"config file {path}")


def read_table(table: Any, source: str) -> dict[str, Any]:
    """A `[serve]` table checked against the settings: {setting name: typed value}.

    Keys may be written with '-' or '_'; an unknown key or a bad value raises SettingError
    naming it and `source`.
    """
    if not isinstance(table, dict):
        raise SettingError(f"{source}: [serve] must be a table")
    found: dict[str, Any] = {}
    for key, value in table.items():
        setting = BY_NAME.get(str(key).replace("-", "_"))
        if setting is None:
            known = ", ".join(sorted(s.file_key for s in SETTINGS))
            raise SettingError(f"{source}: unknown setting '{key}' in [serve] (known: {known})")
        found[setting.name] = setting.parse(value, f"{source} [serve]")
    return found


_LIBRARY_CALL = re.compile(
    r"""(?:^|[^\w.])(?:library|require)\s*\(\s*(?:package\s*=\s*)?["']?([A-Za-z][A-Za-z0-9.]*)""",
    re.M,
)


PLUMBER_FILE = "plumber.R"


def app_file(path: str | Path) -> Path:
    """`serve` takes the plumber.R or the app's folder (which holds a plumber.R)."""
    path = Path(path)
    return path / PLUMBER_FILE if path.is_dir() else path


def app_folder(path: str | Path) -> Path:
    """The folder whose manifest.json or renv.lock lists the app's packages: the plumber.R's
    own, a linked one's real folder."""
    return app_file(path).resolve().parent


def entrypoint_packages(plumber_file: Path) -> tuple[str, ...]:
    """Packages that an entrypoint.R beside plumber.R attaches (read, never executed)."""
    entrypoint = Path(plumber_file).parent / "entrypoint.R"
    try:
        source = entrypoint.read_text(encoding="utf-8")
    except OSError:
        return ()
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    names: list[str] = []
    for name in _LIBRARY_CALL.findall(code):
        if name not in names:
            names.append(name)
    return tuple(names)


def render_markdown() -> str:
    """docs/configuration.md, generated from SETTINGS (a test keeps the file current)."""
    lines = [
        "# Configuration of `plumbline serve`",
        "",
        "<!-- Generated by `python -m plumbline.runtime.settings docs/configuration.md`; "
        "do not edit. -->",
        "",
        "Every setting can be given as a command-line flag, as an environment variable, or "
        f"in the `[serve]` table of a TOML file passed with `--config FILE` (or `{CONFIG_ENV}`).",
        "A flag wins over the environment, the environment over the file, the file over the "
        "default. A bad value stops the server with a message naming the setting.",
        "",
        "```toml",
        "# plumbline.toml",
        "[serve]",
        'max-body = "1MiB"',
        'attach = ["dplyr"]',
        "max-requests = 1000",
        "```",
        "",
        "When plumbline runs the app (`plumbline deploy`, `plumbline up`), the plumbline.toml "
        "beside plumber.R is passed as `--config`; the settings plumbline sets itself (host, "
        "port, workers, drain-delay, graceful-timeout, timeout, max-queue) come from the app "
        "spec and are refused in its `[serve]` table (see docs/app-spec.md).",
        "",
        "| Setting | Flag | Environment | Type | Default | Description |",
        "|---|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        lines.append(
            f"| `{s.file_key}` | `{s.flag}` | `{s.env}` | {s.type.kind} | "
            f"`{s.shown_default}` | {s.help} |"
        )
    lines += [
        "",
        "## Exit codes",
        "",
        "Every `plumbline` command exits with one of these (`plumbline.exits.ExitCode`).",
        "",
        *exit_codes_markdown(),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else None
    if target:
        Path(target).write_text(render_markdown(), encoding="utf-8")
    else:
        sys.stdout.write(render_markdown())
