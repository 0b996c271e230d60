"""`plumbline up` when it cannot work: no HAProxy, or a plumber.R that does not load."""

from __future__ import annotations

import os
import subprocess

import psutil
import pytest
from support import EXAMPLE, PLUMBLINE, free_port


def test_missing_haproxy_says_how_to_install_it(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with no haproxy on it
    bin_dir.mkdir()
    env = {**os.environ, "PATH": str(bin_dir), "PLUMBLINE_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [*PLUMBLINE, "up", str(EXAMPLE), "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "HAProxy is not installed" in result.stderr
    assert "apt-get install haproxy" in result.stderr
    assert not (tmp_path / "state").exists() or not list((tmp_path / "state").iterdir())


@pytest.mark.slow  # R and real HAProxy
def test_app_that_fails_to_load_makes_up_exit_with_r_message(tmp_path):
    app = tmp_path / "broken" / "plumber.R"
    app.parent.mkdir()
    app.write_text(
        'stop("cannot reach the database at db.internal")\n\n#* @get /hello\nfunction() "hi"\n'
    )
    env = {**os.environ, "PLUMBLINE_STATE_DIR": str(tmp_path / "state")}
    up = subprocess.Popen(
        [
            *PLUMBLINE,
            "up",
            str(app),
            "--replicas",
            "2",
            "--workers",
            "1",
            "--port",
            str(free_port()),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = up.communicate(timeout=150)
    finally:
        up.kill()
    assert up.returncode == 1, out
    assert "the app did not start" in out
    assert "cannot reach the database at db.internal" in out  # R's own message
    assert out.count(" starting (revision") == 2  # no crash loop: the first failure ends it
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if any(str(tmp_path) in part for part in (p.info["cmdline"] or []))
    ]
    assert not leftovers
