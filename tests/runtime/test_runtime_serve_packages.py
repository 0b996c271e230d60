"""`plumbline serve DIR` for a folder with a manifest.json: the packages R lacks (or has in
another version) are installed into the shared cache before R starts, and that library is
first on every worker's .libPaths(); a package that cannot be installed stops serve before
it listens, with R's message and its own exit code."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from r_repository import LocalRepository, RPackage, manifest_json
from support import free_port

from plumbline.exits import ExitCode

pytestmark = pytest.mark.slow

APP = """\
library(plumblinetest)

#* @serializer text
#* @get /where
function() paste(.libPaths()[1], greet("R"), packageVersion("base64enc"))
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repository = LocalRepository(tmp_path_factory.mktemp("cran") / "repo")
    repository.add(RPackage("plumblinetest", "1.0.0", 'greet <- function(x) paste("hello", x)'))
    # A package R has (0.1-3 from Debian), in another version: ours must win.
    repository.add(RPackage("base64enc", "99.0.0", 'base64encode <- function(x) "mine"'))
    repository.add(RPackage("plumblinebroken", "1.0.0", "f <- function() 1", fail_install=True))
    return repository


def folder(tmp_path, repo, **packages):
    app = tmp_path / "app"
    app.mkdir()
    (app / "plumber.R").write_text(APP)
    (app / "manifest.json").write_text(manifest_json(packages, repo.url))
    return app


def serve(app, cache, port):
    env = {**os.environ, "PLUMBLINE_PACKAGE_CACHE": str(cache)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plumbline",
            "serve",
            str(app),
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_serve_dir_installs_and_puts_the_library_first(tmp_path, repo):
    app = folder(tmp_path, repo, plumblinetest="1.0.0", base64enc="99.0.0")
    port = free_port()
    proc = serve(app, tmp_path / "cache", port)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/where", timeout=5) as r:
                    answer = r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.3)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    library, *greeting, version = answer.split(" ")
    assert library.startswith(str(tmp_path / "cache"))
    assert (" ".join(greeting), version) == ("hello R", "99.0.0")
    assert "R packages: installing 2 into library" in stderr
    # R started once the library was on R_LIBS, in the zygote started ahead (none replaced).
    assert "zygote_environment_changed" not in stderr


def test_serve_stops_before_listening_when_a_package_cannot_be_installed(tmp_path, repo):
    app = folder(tmp_path, repo, plumblinetest="1.0.0", plumblinebroken="1.0.0")
    proc = serve(app, tmp_path / "cache", free_port())
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == ExitCode.PACKAGES
    assert "plumblinebroken 1.0.0" in stderr and "this package refuses to be installed" in stderr
    assert "listening" not in stderr
