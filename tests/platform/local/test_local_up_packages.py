"""`plumbline up DIR` for a folder with a manifest.json: the R packages R lacks are
installed once, before any replica starts (the replicas find the library), and the app
answers through HAProxy with them; a package that cannot be installed stops `up` before any
replica starts, with R's message."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import pytest
from r_repository import LocalRepository, RPackage, manifest_json
from support import PLUMBLINE, free_port

from plumbline.exits import ExitCode

pytestmark = pytest.mark.slow  # real R and HAProxy (scripts/install.sh)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repository = LocalRepository(tmp_path_factory.mktemp("cran") / "repo")
    repository.add(RPackage("plumblinetest", "1.0.0", 'greet <- function(x) paste("hello", x)'))
    repository.add(RPackage("plumblinebroken", "1.0.0", "f <- function() 1", fail_install=True))
    return repository


def app(tmp_path, repo, **packages):
    folder = tmp_path / "greeter"
    folder.mkdir()
    (folder / "plumber.R").write_text(
        'library(plumblinetest)\n#* @serializer text\n#* @get /greet\nfunction() greet("up")\n'
    )
    (folder / "manifest.json").write_text(manifest_json(packages, repo.url, source="LOCAL"))
    return folder


def up(tmp_path, folder, port):
    env = {
        **os.environ,
        "PLUMBLINE_STATE_DIR": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return subprocess.Popen(
        [*PLUMBLINE, "up", str(folder), "--replicas", "2", "--workers", "1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_up_dir_installs_once_and_serves_with_the_package(tmp_path, repo):
    port = free_port()
    process = up(tmp_path, app(tmp_path, repo, plumblinetest="1.0.0"), port)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/greet", timeout=5) as r:
                    assert r.read().decode() == "hello up"
                    break
            except OSError:
                assert time.monotonic() < deadline, "up did not serve"
                time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
    assert out.count("R packages: installing 1 into library") == 1, out
    assert out.index("R packages: installed") < out.index(" starting (revision"), out
    libraries = list((tmp_path / "cache" / "plumbline" / "R-libraries").iterdir())
    assert len([p for p in libraries if not p.name.startswith(".")]) == 1


def test_up_stops_before_any_replica_when_a_package_cannot_be_installed(tmp_path, repo):
    process = up(tmp_path, app(tmp_path, repo, plumblinebroken="1.0.0"), free_port())
    out, _ = process.communicate(timeout=180)
    assert process.returncode == ExitCode.PACKAGES, out
    assert "this package refuses to be installed" in out
    assert " starting (revision" not in out
