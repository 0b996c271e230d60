"""R's environment, asked of R once per `plumbline serve` instead of twice per R process.

R's front-end script sets R_HOME, R_SHARE_DIR, LD_LIBRARY_PATH and more before R starts;
rpy2 learns them by running Rscript (twice) in every process that embeds R. The pool asks
once and starts its R processes with them: each must see exactly the environment rpy2 would
have given it, and no R process may run Rscript again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from serve_harness import serve

from plumbline.runtime.pool.r_environment import REnvironmentProbe
from plumbline.runtime.protocol import R_LD_LIBRARY_PATH_ENV

pytestmark = pytest.mark.slow  # R

NAMES = (
    "R_HOME",
    "R_SHARE_DIR",
    "R_INCLUDE_DIR",
    "R_DOC_DIR",
    "R_LIBS_SITE",
    "R_LIBS_USER",
    "R_PLATFORM",
    "LD_LIBRARY_PATH",
    R_LD_LIBRARY_PATH_ENV,
)
# What R itself reports about its environment: the same in a worker and in rpy2 on its own.
REPORT = (
    "jsonlite::toJSON(list(env = as.list(Sys.getenv(c({names}), unset = NA)), "
    "libs = .libPaths(), home = R.home(), tmp = dir.exists(tempdir())), auto_unbox = TRUE)"
).format(names=", ".join(f'"{n}"' for n in NAMES))
# Every R start (Rscript's and embedded ones) writes its command line to START_LOG.
PROFILE = 'cat(paste(commandArgs(), collapse = " "), "\\n", file = Sys.getenv("START_LOG"), append = TRUE)\n'


def test_the_probe_finds_what_r_s_front_end_sets():
    found = REnvironmentProbe().variables()
    assert found is not None
    home = subprocess.run(["R", "RHOME"], capture_output=True, text=True, check=True)
    assert found["R_HOME"] == home.stdout.strip()
    assert found["R_SHARE_DIR"] and found["LD_LIBRARY_PATH"].startswith(found["R_HOME"])
    assert "R_SESSION_TMPDIR" not in found  # the probe's own session folder, gone by now
    child = REnvironmentProbe().child_environment()
    assert child is not None and child[R_LD_LIBRARY_PATH_ENV] == found["LD_LIBRARY_PATH"]
    # Not for the process itself: the loader would resolve Python's libraries by it.
    assert child.get("LD_LIBRARY_PATH") == os.environ.get("LD_LIBRARY_PATH")


def test_values_come_through_exactly_and_the_probe_s_own_settings_stay_its_own(
    tmp_path, monkeypatch
):
    # A site's Renviron can set anything; the reading must not depend on what a value holds.
    value = 'a "quoted" 12:3: value, héllo'
    renviron = tmp_path / "Renviron"
    renviron.write_text(f"PLUMBLINE_TEST_ODD='{value}'\nPLUMBLINE_TEST_EMPTY=''\n")
    monkeypatch.setenv("R_ENVIRON_USER", str(renviron))
    # The user's own default packages (the probe starts R with none) stay the user's.
    monkeypatch.setenv("R_DEFAULT_PACKAGES", "stats")
    found = REnvironmentProbe().variables()
    assert found is not None
    assert found["PLUMBLINE_TEST_ODD"] == value and found["PLUMBLINE_TEST_EMPTY"] == ""
    assert "R_DEFAULT_PACKAGES" not in found
    child = REnvironmentProbe().child_environment()
    assert child is not None and child["R_DEFAULT_PACKAGES"] == "stats"


def test_without_r_s_answer_the_r_processes_ask_r_themselves(tmp_path):
    probe = REnvironmentProbe(rscript="no-such-rscript")
    assert probe.variables() is None and probe.child_environment() is None
    chatty = tmp_path / "Rscript"  # an R whose profile prints: not R's table of variables
    chatty.write_text("#!/bin/sh\necho 'Welcome back!'\n")
    chatty.chmod(0o755)
    probe = REnvironmentProbe(rscript=str(chatty))
    assert probe.variables() is None and probe.child_environment() is None
    cut = tmp_path / "cut" / "Rscript"  # the marker, then a table cut short
    cut.parent.mkdir()
    cut.write_text("#!/bin/sh\nprintf 'Welcome back!\\nplumbline-r-environment\\n6:R_HOME9:/usr'\n")
    cut.chmod(0o755)
    assert REnvironmentProbe(rscript=str(cut)).variables() is None


def _reference(env: dict) -> dict:
    """The report from R embedded by rpy2 left to ask R itself."""
    code = (
        f"import rpy2.rinterface as ri; ri.initr(interactive=False); print(ri.evalr({REPORT!r})[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("preload", ["off", "on"])
def test_r_processes_see_r_s_environment_without_running_rscript(tmp_path, preload):
    app = tmp_path / "app"
    app.mkdir()
    (app / "plumber.R").write_text(f"#* @serializer text\n#* @get /env\nfunction() {REPORT}\n")
    (tmp_path / "profile.R").write_text(PROFILE)
    log = tmp_path / "starts.log"
    env = {**os.environ, "R_PROFILE_USER": str(tmp_path / "profile.R"), "START_LOG": str(log)}
    with serve(
        tmp_path, "--workers", "2", "--preload", preload, plumber_file=app / "plumber.R", env=env
    ) as served:
        status, _, body = served.get("/env")
    assert status == 200
    starts = log.read_text().splitlines()
    probes = [line for line in starts if "Sys.getenv" in line]
    embedded = [line for line in starts if line.startswith("rpy2")]
    assert len(probes) == 1, starts  # the pool's one question; rpy2 asked none
    assert len(embedded) == (1 if preload == "on" else 2), starts  # the zygote, or each worker
    log.unlink()
    assert json.loads(body) == _reference(env)  # what rpy2 finds when it asks R itself
    assert len([line for line in log.read_text().splitlines() if "Sys.getenv" in line]) == 2
