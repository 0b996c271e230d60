"""Checks a version must pass before it reaches a backend: plumber.R, R syntax, settings.

Nothing in the bundle is run: R only parses the .R files (their paths are data passed as
arguments, never code), and plumbline.toml may set only what belongs to the app itself,
never where it runs or what it can reach (name, namespace, ingress, image, volumes,
secrets are the server's to decide).
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

from plumbline.platform.server.bundles import BundleError

# plumbline.toml keys a published bundle may set (the rest would let one app take another's
# routes or mount what it should not read).
BUNDLE_TOML_KEYS = frozenset(
    {
        "workers",
        "resources",
        "probes",
        "rollout",
        "request_timeout",
        "max_queue",
        "serve",
        "tmp_size",
        "env",
    }
)
# [serve] settings the server gives every published app itself.
SERVER_SERVE_KEYS = frozenset(
    {
        "host",
        "port",
        "root-path",
        "root-path-aliases",
        "access",
        "access-keys",
        "access-keys-file",
        "metrics-keys",
        "packages",
        "package-cache",
        "repos",
    }
)
_PARSE_ALL = (
    "for (f in commandArgs(TRUE)) tryCatch(invisible(parse(file = f, keep.source = "
    "FALSE)), error = function(e) { message(conditionMessage(e)); quit(status = 1) })"
)


def check_app_folder(folder: Path) -> None:
    """Raise BundleError with a message for the user when `folder` cannot be deployed."""
    if not (folder / "plumber.R").is_file():
        names = sorted(p.name for p in folder.iterdir())[:10]
        raise BundleError(
            "the bundle has no plumber.R at its top level (found: "
            f"{', '.join(names) or 'nothing'}); plumbline serves plumber.R APIs"
        )
    check_bundle_toml(folder)
    check_r_syntax(folder)


def check_bundle_toml(folder: Path) -> None:
    path = folder / "plumbline.toml"
    if not path.is_file():
        return
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"plumbline.toml is not valid TOML: {exc}") from None
    refused = sorted(set(data) - BUNDLE_TOML_KEYS)
    if refused:
        raise BundleError(
            f"plumbline.toml sets {', '.join(refused)}, which the server decides "
            f"for published apps (a bundle may set: "
            f"{', '.join(sorted(BUNDLE_TOML_KEYS))})"
        )
    env = data.get("env") if isinstance(data.get("env"), dict) else {}
    serve = data.get("serve") if isinstance(data.get("serve"), dict) else {}
    taken = sorted(
        [f"env.{k}" for k in env if str(k).upper().startswith("PLUMBLINE_")]
        + [f"serve.{k}" for k in serve if str(k).replace("_", "-") in SERVER_SERVE_KEYS]
    )
    if taken:
        raise BundleError(
            f"plumbline.toml sets {', '.join(taken)}: the server sets these for "
            "published apps (where they are served and who may call them)"
        )


def check_r_syntax(folder: Path) -> None:
    files = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.suffix in (".R", ".r") and p.is_file() and not p.is_symlink()
    )
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise BundleError("Rscript is not installed on the server: cannot check the R files")
    proc = subprocess.run(
        [rscript, "--vanilla", "-e", _PARSE_ALL, *files],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        message = proc.stderr.strip().replace("\nExecution halted", "")
        raise BundleError(f"R syntax error: {message}")
