"""`plumbline serve` starts the zygote before it imports the server, and the zygote starts R
as soon as R's environment is known (runtime/pool/head_start.py). That zygote must be the one
the pool uses, with every variable set before serve settles R's environment (a package
library on R_LIBS); R must never run in an environment other than the one the pool gives it;
and the zygote must not outlive a serve that stops before its pool starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import psutil
import pytest
from pool_harness import running_pool

from plumbline.exits import ExitCode
from plumbline.runtime.pool.head_start import HeadStart

pytestmark = pytest.mark.slow  # R

APP = """\
#* @serializer text
#* @get /mark
function() Sys.getenv("PLUMBLINE_TEST_MARK", "unset")
"""


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.delenv("PLUMBLINE_TEST_MARK", raising=False)
    plumber_file = tmp_path / "plumber.R"
    plumber_file.write_text(APP)
    return plumber_file


def test_the_pool_forks_its_workers_from_the_zygote_started_ahead(app, monkeypatch):
    head_start = HeadStart(preload=True)
    assert head_start.zygote is not None
    ahead = head_start.zygote.process.pid
    # Set after R's environment probe has answered (it takes ~0.1 s) but before `plumbline
    # serve` says R's environment is settled, as an app's package library is put first on
    # R_LIBS: R starts with it, and the zygote started ahead serves.
    time.sleep(1)
    monkeypatch.setenv("PLUMBLINE_TEST_MARK", "set before R started")
    head_start.environment_settled()
    try:
        with running_pool(app, workers=2, head_start=head_start) as harness:
            assert harness.pool._zygote.pid == ahead
            rows = harness.wait_until_idle()
            assert {psutil.Process(row["pid"]).ppid() for row in rows} == {ahead}
            assert harness.get("/mark").body == b"set before R started"
    finally:
        head_start.close()


def test_an_environment_larger_than_a_packet_reaches_r(app, monkeypatch):
    # Over the ~208 KiB a socket sends in one packet; each variable under exec's 128 KiB.
    mark = "m" * 100_000
    head_start = HeadStart(preload=True)
    ahead = head_start.zygote
    assert ahead is not None
    time.sleep(1)  # after the probe, as in the test above: exec is not asked to carry these
    monkeypatch.setenv("PLUMBLINE_TEST_MARK", mark)
    for pad in range(4):
        monkeypatch.setenv(f"PLUMBLINE_TEST_PAD_{pad}", "p" * 100_000)
    head_start.environment_settled()
    try:
        with running_pool(app, workers=1, head_start=head_start) as harness:
            assert harness.pool._zygote.pid == ahead.process.pid
            assert harness.get("/mark").body == mark.encode()
    finally:
        head_start.close()


def test_an_environment_changed_after_r_started_ahead_is_the_one_r_serves_in(
    app, monkeypatch, caplog
):
    caplog.set_level("INFO", logger="plumbline.pool")
    head_start = HeadStart(preload=True)
    ahead = head_start.zygote
    assert ahead is not None
    head_start.child_environment()  # the zygote has been told to start R
    assert ahead.r_environment is not None
    # As `plumbline serve` puts an app's package library first on R_LIBS after the head start.
    monkeypatch.setenv("PLUMBLINE_TEST_MARK", "changed after R started")
    try:
        with running_pool(app, workers=1, head_start=head_start) as harness:
            assert harness.get("/mark").body == b"changed after R started"
            assert harness.pool._zygote.pid != ahead.process.pid
        assert "zygote_environment_changed" in [
            getattr(record, "fields", {}).get("event") for record in caplog.records
        ]
        assert ahead.process.poll() is not None  # stopped, not left behind
    finally:
        head_start.close()


def test_a_serve_that_stops_before_its_pool_starts_leaves_no_zygote(tmp_path):
    mark = uuid.uuid4().hex
    done = subprocess.run(
        [sys.executable, "-m", "plumbline", "serve", str(tmp_path / "missing.R")],
        env={**os.environ, "PLUMBLINE_TEST_MARK": mark},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "cannot read" in done.stderr
    left = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("PLUMBLINE_TEST_MARK") == mark:
                left.append(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    assert left == []
