"""`plumbline prepare APP_DIR`: make an app folder ready to serve, in a pod's init container.

With `--fetch URL`: download the app's bundle from plumbline server with the token in
`--token-file` (a Secret's file; short-lived, good for this one bundle only), check its sha256
against `--sha256` before unpacking anything, and extract it safely into APP_DIR. Then, in
every case, install the R packages of APP_DIR's manifest.json or renv.lock that R lacks into
the shared package cache (the pod's cache volume), where the app container's
`plumbline serve --packages cached` finds them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from plumbline.exits import CommandError, ExitCode
from plumbline.runtime import settings

TOKEN_ENV = "PLUMBLINE_BUNDLE_TOKEN"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# What a pod may unpack: the server's own limits are the operator's business; these only
# stop a corrupt download from filling the volume.
MAX_EXPANDED = 64 * 1024**3
MAX_FILES = 200_000


def say(line: str) -> None:
    print(line, flush=True)


def configure(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Make an app folder ready to serve (a pod's init container runs it): fetch its bundle "
        "from plumbline server (--fetch, sha256 checked), then install the R packages of its "
        "manifest.json or renv.lock that R lacks into the package cache."
    )
    parser.add_argument("app_dir", metavar="APP_DIR", help="the app's folder")
    parser.add_argument(
        "--fetch",
        metavar="URL",
        default=None,
        help="download the bundle from URL into APP_DIR, which must not exist yet "
        "(default: APP_DIR is there)",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        default=None,
        help=f"the server's token for this bundle (default: the variable {TOKEN_ENV})",
    )
    parser.add_argument(
        "--sha256",
        default=None,
        help="the bundle's sha256, checked before it is unpacked (needed with --fetch)",
    )
    cache = settings.BY_NAME["package_cache"]
    parser.add_argument(
        "--package-cache",
        default=cache.default,
        help=f"folder of the installed R libraries (default: {cache.default_doc})",
    )
    parser.add_argument(
        "--repos",
        default="",
        help="repositories to install R packages from, comma-separated URLs "
        "(default: the bundle's own)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    app_dir = Path(args.app_dir)
    if args.fetch:
        sha256 = (args.sha256 or "").lower()
        if not _SHA256.match(sha256):
            raise CommandError(
                "--sha256 must be the bundle's sha256 (64 hex digits)", ExitCode.USAGE
            )
        fetch(args.fetch, _token(args.token_file), sha256, app_dir)
    elif not app_dir.is_dir():
        raise CommandError(f"{app_dir} is not a folder", ExitCode.USAGE)
    return install_packages(app_dir, args)


def _token(path: str | None) -> str:
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CommandError(
                f"cannot read the token file {path}: {exc.strerror}", ExitCode.USAGE
            ) from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise CommandError(
            f"no token: give the server's token for this bundle with --token-file or {TOKEN_ENV}",
            ExitCode.USAGE,
        )
    return token


def fetch(url: str, token: str, sha256: str, app_dir: Path) -> None:
    from plumbline.archive import BundleError, Limits, extract

    if app_dir.exists():
        raise CommandError(f"{app_dir} exists already: the bundle is unpacked into a new folder")
    app_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say(f"fetching the bundle {sha256[:12]} from {url}")
    with tempfile.NamedTemporaryFile(dir=app_dir.parent, suffix=".tar.gz") as part:
        digest, size = hashlib.sha256(), 0
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                while chunk := response.read(1024 * 1024):
                    digest.update(chunk)
                    part.write(chunk)
                    size += len(chunk)
        except urllib.error.HTTPError as exc:
            raise CommandError(
                f"the server refused the download: HTTP {exc.code} {_detail(exc)}"
            ) from None
        except OSError as exc:
            raise CommandError(f"cannot download the bundle from {url}: {exc}") from None
        part.flush()
        if digest.hexdigest() != sha256:
            raise CommandError(
                f"the download's sha256 is {digest.hexdigest()}, not {sha256}: "
                "refusing to unpack it"
            )
        try:
            extract(Path(part.name), app_dir, Limits(size, MAX_EXPANDED, MAX_FILES))
        except BundleError as exc:
            raise CommandError(f"cannot unpack the bundle: {exc}") from None
    say(
        f"fetched and unpacked {size / 2**20:.1f} MiB in {time.monotonic() - started:.1f}s "
        f"(sha256 checked)"
    )


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(500).decode("utf-8", "replace")
    except OSError:
        return ""


def install_packages(app_dir: Path, args: argparse.Namespace) -> int:
    from plumbline.packages.library import PackageError, prepare_library
    from plumbline.packages.requirements import RequirementsError, parse_repos

    try:
        library = prepare_library(
            app_dir, Path(args.package_cache), repos=parse_repos(args.repos), emit=say
        )
    except (PackageError, RequirementsError) as exc:
        print(f"plumbline prepare: {exc}", file=sys.stderr, flush=True)
        return ExitCode.PACKAGES
    say(f"ready: {app_dir}" + (f", R library {library}" if library else ""))
    return ExitCode.OK
