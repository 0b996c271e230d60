"""What the dashboard's browser tests share: plumbline server with the real local backend
(replicas of `plumbline serve` behind HAProxy, real R), Debian's Chromium driven by
Playwright (browser.py), a bundle with a fast, a failing and a slow endpoint, and screenshots.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from r_repository import manifest_json
from running_server import RunningServer
from support import REPO, free_port

from plumbline.platform.server.backends import open_backend
from plumbline.platform.server.config import ServerConfig

PHONE = {"width": 390, "height": 844}
# Set to a folder (docs/images) to keep the screenshots the tests take there.
SCREENSHOTS_ENV = "PLUMBLINE_SCREENSHOTS"

APP_R = """\
#* @serializer text
#* @get /hello
function() "hello v{version}"

#* @get /boom
function() stop("boom")

#* @serializer text
#* @get /slow
function() {{ Sys.sleep(0.2); "slow" }}
"""


@functools.cache
def image_versions(*packages: str) -> dict[str, str]:
    """The versions R has installed: a manifest naming them needs no package installed."""
    code = "for (p in commandArgs(TRUE)) cat(p, format(packageVersion(p)), '\\n')"
    out = subprocess.run(
        ["Rscript", "-e", code, *packages], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def bundle(version: int) -> bytes:
    """A gzip tar of an app folder, as rsconnect uploads it (with its manifest.json)."""
    files = {
        "plumber.R": APP_R.format(version=version).encode(),
        "manifest.json": manifest_json(image_versions("plumber", "jsonlite")).encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@contextlib.contextmanager
def local_server(tmp_path: Path, **settings):
    """A server on loopback with the local backend it would open itself (HAProxy on a free
    port), in a private state folder short enough for its control socket."""
    state = tempfile.mkdtemp(prefix="pl-")
    old = os.environ.get("PLUMBLINE_STATE_DIR")
    os.environ["PLUMBLINE_STATE_DIR"] = state
    opened = None
    running = None
    try:
        config = ServerConfig(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path / 'server.db'}",
            port=free_port(),
            apps_port=free_port(),
            **settings,
        )
        opened = open_backend(config)
        running = RunningServer(opened.config, opened.backend)
        yield running
    finally:
        if running is not None:
            running.stop()
        if opened is not None:
            opened.close()
        if old is None:
            os.environ.pop("PLUMBLINE_STATE_DIR", None)
        else:
            os.environ["PLUMBLINE_STATE_DIR"] = old
        shutil.rmtree(state, ignore_errors=True)


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot, kept in $PLUMBLINE_SCREENSHOTS (relative to the repository)
    when set, else with the test's files."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    target = (REPO / folder) if folder else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(page, expression: str, timeout: float = 120.0) -> None:
    """Until `expression` is true in the page. (Playwright's wait_for_function evaluates its
    predicate with eval(), which the dashboard's Content-Security-Policy rightly forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {expression}"
        page.wait_for_timeout(200)
