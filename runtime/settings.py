"""Every `plumbline serve` setting, declared once (gunicorn-style).

Each Setting knows its flag, its PLUMBLINE_* environment variable, how to read a value and
its help text; the argparse options and docs/configuration.md are generated from SETTINGS.
Precedence: command-line flag, then environment variable, then the `[serve]` table of a TOML
file given with --config (or PLUMBLINE_CONFIG), then the default. A bad value anywhere
fails loudly, naming the setting and where the value came from.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ENV_PREFIX = "PLUMBLINE_"
CONFIG_ENV = "PLUMBLINE_CONFIG"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingError(ValueError):
    """A setting got a value it cannot take; the message names the setting and the source."""


# --- value readers: each takes a str (flag/env) or a TOML value, returns the typed value ---

def _integer(minimum: int) -> Callable[[Any], int]:
    def read(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected an integer, got {value!r}")
        number = int(value) if isinstance(value, int) else int(value.strip())
        if number < minimum:
            raise ValueError(f"must be >= {minimum}, got {number}")
        return number
    read.kind = "integer"
    return read


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number of seconds, got {value!r}")
    number = float(value)
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"must be a finite number >= 0, got {value!r}")
    return number


_seconds.kind = "seconds"

_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.I)
_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000 ** 2, "mib": 1024 ** 2,
          "gb": 1000 ** 3, "gib": 1024 ** 3}


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


_byte_size.kind = "bytes"

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


_boolean.kind = "on/off"


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


_text.kind = "string"

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


_packages.kind = "list of R packages"


def _log_level(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return text


_log_level.kind = "one of " + "|".join(LOG_LEVELS)


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a pod's limit).

    os.cpu_count() is the node's count; in a pod limited to 1 CPU on a 64-core node it would
    start 64 R workers.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
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


@dataclass(frozen=True)
class Setting:
    name: str             # attribute name, e.g. max_queue
    read: Callable[[Any], Any]
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
            return self.read(value)
        except (ValueError, TypeError) as exc:
            raise SettingError(f"invalid value for setting '{self.file_key}' (from {source}): "
                               f"{exc}") from None


SETTINGS: tuple[Setting, ...] = (
    Setting("host", _text, "127.0.0.1",
            "Address to listen on. Use 0.0.0.0 in a container so the pod IP is reachable."),
    Setting("port", _integer(0), 8000, "TCP port to listen on (0 picks a free port)."),
    Setting("workers", _integer(1), available_cpus(),
            "Number of R worker processes; each runs one request at a time.",
            default_doc="CPUs available (cgroup limit)"),
    Setting("max_queue", _integer(0), 100,
            "Requests that may wait for a free worker; beyond it clients get 503 with "
            "Retry-After."),
    Setting("timeout", _seconds, 60.0,
            "Seconds one request may run in R before the client gets 504 and the worker is "
            "replaced; also the longest a request waits for a free worker before 503 "
            "(0 = no limit)."),
    Setting("max_requests", _integer(0), 0,
            "Recycle a worker after this many requests, to bound memory growth (0 = never)."),
    Setting("max_requests_jitter", _integer(0), 0,
            "Add a random 0..N to max-requests per worker so they do not recycle together."),
    Setting("max_body", _byte_size, 10 * 1024 ** 2,
            "Largest request body accepted, in bytes (suffixes KiB, MiB, GiB allowed); "
            "larger bodies get 413 before anything reaches R.",
            default_doc="10MiB"),
    Setting("drain_delay", _seconds, 5.0,
            "On SIGTERM/SIGINT, keep serving this many seconds with /readyz at 503 so load "
            "balancers stop sending traffic, then stop listening."),
    Setting("graceful_timeout", _seconds, 30.0,
            "After the listener closes, seconds in-flight requests get to finish before "
            "they are cut off and the workers stopped."),
    Setting("attach", _packages, (),
            "R packages to attach in every worker before plumber.R is loaded, comma-separated; "
            "added to the library()/require() calls of an entrypoint.R beside plumber.R.",
            default_doc="packages named in entrypoint.R"),
    Setting("inline_futures", _boolean, True,
            "Run future({...}) blocks inline in the worker (concurrency comes from the pool); "
            "off uses the future package itself."),
    Setting("health_interval", _seconds, 5.0,
            "Seconds between calls of the app's own GET /health on idle workers "
            "(0 = never)."),
    Setting("log_level", _log_level, "info", "Minimum level of the JSON server log."),
    Setting("access_log", _boolean, True, "Write one JSON line per request to stdout."),
    Setting("docs", _boolean, True, "Serve Swagger UI at /__docs__/ (and /openapi.json)."),
)
BY_NAME = {s.name: s for s in SETTINGS}


_METAVARS = {"integer": "N", "seconds": "SECONDS", "bytes": "SIZE", "on/off": "on|off",
             _packages.kind: "PKG[,PKG]", _log_level.kind: "LEVEL"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per setting; defaults stay None so a missing flag falls through to env."""
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"TOML file whose [serve] table sets any option below "
                             f"(env {CONFIG_ENV}; default: none)")
    for s in SETTINGS:
        metavar = _METAVARS.get(s.read.kind, s.name.upper())
        parser.add_argument(s.flag, dest=s.name, metavar=metavar, default=None,
                            help=f"{s.help} (env {s.env}; default: {s.shown_default})")


def resolve(args: argparse.Namespace | None = None,
            environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The effective value of every setting: flag, then env, then config file, then default."""
    environ = os.environ if environ is None else environ
    values = vars(args) if args is not None else {}
    config_path = values.get("config") or environ.get(CONFIG_ENV)
    from_file = _read_config(Path(config_path)) if config_path else {}
    result = {}
    for s in SETTINGS:
        if values.get(s.name) is not None:
            result[s.name] = s.parse(values[s.name], f"flag {s.flag}")
        elif s.env in environ:
            result[s.name] = s.parse(environ[s.env], f"env {s.env}")
        elif s.file_key in from_file:
            result[s.name] = s.parse(from_file[s.file_key], f"{config_path} [serve]")
        else:
            result[s.name] = s.default
    return result


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingError(f"config file {path} is not valid TOML: {exc}") from None
    table = data.get("serve", {})
    if not isinstance(table, dict):
        raise SettingError(f"config file {path}: [serve] must be a table")
    known = {s.file_key for s in SETTINGS}
    found = {}
    for key, value in table.items():
        normal = key.replace("_", "-")
        if normal not in known:
            raise SettingError(f"config file {path}: unknown setting '{key}' in [serve] "
                               f"(known: {', '.join(sorted(known))})")
        found[normal] = value
    return found


_LIBRARY_CALL = re.compile(
    r"""(?:^|[^\w.])(?:library|require)\s*\(\s*(?:package\s*=\s*)?["']?([A-Za-z][A-Za-z0-9.]*)""",
    re.M)


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
        "workers = 4",
        "max-body = \"1MiB\"",
        "attach = [\"dplyr\"]",
        "```",
        "",
        "| Setting | Flag | Environment | Type | Default | Description |",
        "|---|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        lines.append(f"| `{s.file_key}` | `{s.flag}` | `{s.env}` | {s.read.kind} | "
                     f"`{s.shown_default}` | {s.help} |")
    lines += [
        "",
        "## Exit codes",
        "",
        "| Code | Meaning |",
        "|---|---|",
        "| 0 | Stopped by SIGTERM/SIGINT after draining. |",
        "| 2 | Bad usage, bad setting, or a plumber.R annotation plumber would refuse. |",
        "| 3 | plumber.R failed to load in R (R's message is printed); the port was never bound. |",
        "| 4 | The address could not be bound (for example the port is in use). |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else None
    if target:
        Path(target).write_text(render_markdown(), encoding="utf-8")
    else:
        sys.stdout.write(render_markdown())
