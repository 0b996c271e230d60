"""`plumbline loadtest` from an installed wheel: the Locust users ship as package data."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from support import REPO

pytestmark = pytest.mark.slow


def test_loadtest_finds_its_scenarios_in_an_installed_wheel(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("plumbline-*.whl"))
    with zipfile.ZipFile(wheel) as archive:  # the dashboard ships whole: no CDN to fetch from
        shipped = set(archive.namelist())
    static = REPO / "platform" / "server" / "dashboard" / "static"
    for path in static.iterdir():
        assert f"plumbline/platform/server/dashboard/static/{path.name}" in shipped, path.name

    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The dependencies come from this test's environment (no network), not plumbline itself.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr

    outside = tmp_path / "elsewhere"  # no checkout on sys.path
    outside.mkdir()
    where = subprocess.run(
        [
            python,
            "-c",
            "import plumbline; from plumbline.platform.local.failover import "
            "locustfile; print(plumbline.__file__); print(locustfile())",
        ],
        capture_output=True,
        text=True,
        cwd=outside,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    package, locustfile = where.stdout.split()
    assert package.startswith(str(site)) and locustfile.startswith(str(site))
    listed = subprocess.run(
        [python, "-m", "locust", "-f", locustfile, "--list"],
        capture_output=True,
        text=True,
        cwd=outside,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()  # the Locust user classes of the failover scenarios
    help_text = subprocess.run(
        [python, "-m", "plumbline", "loadtest", "--help"],
        capture_output=True,
        text=True,
        cwd=outside,
        timeout=60,
    )
    assert help_text.returncode == 0 and "rolling-restart" in help_text.stdout
    no_cluster = subprocess.run(
        [python, "-m", "plumbline", "loadtest", "kill-replica"],
        capture_output=True,
        text=True,
        cwd=outside,
        timeout=60,
        env={"PLUMBLINE_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
    )
    assert no_cluster.returncode == 1
    assert "no local cluster is running" in no_cluster.stderr
