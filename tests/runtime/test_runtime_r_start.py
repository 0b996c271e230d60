"""How R starts to load plumber and the app, in the zygote or in a worker started on its own:
its JIT compiler off while loading (it would compile closures run once), then on at R's
level; its first collection trigger above R's default (R_NSIZE), so that plumber and a small
app load without collecting the whole growing heap. The app sees the variables it was given."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pool_harness import running_pool

pytestmark = pytest.mark.slow

JIT_REPORT = (
    "#* @serializer text\n#* @get /report\n"
    'function() paste(compiler::enableJIT(-1L), Sys.getenv("R_ENABLE_JIT", "unset"))\n'
)


@pytest.fixture(params=[True, False], ids=["preload", "no-preload"])
def preload(request):
    return request.param


def seen(tmp_path, preload: bool, app_text: str) -> set[bytes]:
    app = tmp_path / "plumber.R"
    app.write_text(app_text)
    with running_pool(app, workers=2, timeout=20, preload=preload) as harness:
        assert harness.pool.preloaded == preload
        return {harness.get("/report").body for _ in range(6)}


def jit_seen(tmp_path, preload: bool, top: str = "") -> set[bytes]:
    return seen(tmp_path, preload, top + JIT_REPORT)


def test_workers_serve_with_rs_default_jit_level_and_no_variable_of_ours(tmp_path, preload):
    assert jit_seen(tmp_path, preload) == {b"3 unset"}


def test_workers_serve_with_the_level_the_user_gave_r(tmp_path, preload, monkeypatch):
    monkeypatch.setenv("R_ENABLE_JIT", "1")
    assert jit_seen(tmp_path, preload) == {b"1 1"}
    monkeypatch.setenv("R_ENABLE_JIT", "0")
    assert jit_seen(tmp_path, preload) == {b"0 0"}


def test_a_level_r_would_not_read_as_a_number_is_off_as_in_r(tmp_path, preload, monkeypatch):
    monkeypatch.setenv("R_ENABLE_JIT", "yes")  # R reads it with C's atoi(): 0
    assert jit_seen(tmp_path, preload) == {b"0 yes"}


def test_an_app_that_sets_its_own_level_at_load_keeps_it(tmp_path, preload):
    assert jit_seen(tmp_path, preload, "invisible(compiler::enableJIT(2))\n\n") == {b"2 unset"}


HEAP_REPORT = (
    'trigger_at_load <- gc()["Ncells", "gc trigger"]\n\n'
    "#* @serializer text\n#* @get /report\n"
    'function() paste(sprintf("%.0f", trigger_at_load), Sys.getenv("R_NSIZE", "unset"))\n'
)


def trigger_seen(tmp_path, preload: bool) -> tuple[int, str]:
    """R's collection trigger after a full collection at the app's first line, and the
    R_NSIZE the app sees."""
    (answer,) = seen(tmp_path, preload, HEAP_REPORT)
    trigger, variable = answer.decode().split()
    return int(trigger), variable


# R started as the zygote and workers start it, nothing loaded yet: its trigger after one
# full collection (R keeps the start value as a floor and grows from it).
FRESH_TRIGGER = (
    "from plumbline.runtime.r import worker\n"
    "worker.start_r_to_load()\n"
    "import rpy2.rinterface as ri\n"
    'print(ri.evalr(\'sprintf("%.0f", gc()["Ncells", "gc trigger"])\')[0])\n'
)


def fresh_trigger(**environment: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "R_NSIZE"}
    done = subprocess.run(
        [sys.executable, "-c", FRESH_TRIGGER],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_r_starts_with_a_larger_first_trigger_than_rs_default():
    # Loading plumber from R's default trigger ran collections of the whole growing heap.
    assert fresh_trigger() > fresh_trigger(R_NSIZE="350000")  # R's own default


def test_the_app_sees_no_r_nsize_of_ours(tmp_path, preload):
    assert trigger_seen(tmp_path, preload)[1] == "unset"


def test_the_users_own_r_nsize_is_the_one_r_starts_with(tmp_path, preload, monkeypatch):
    monkeypatch.setenv("R_NSIZE", "3000000")
    trigger, variable = trigger_seen(tmp_path, preload)
    assert trigger >= 3_000_000
    assert variable == "3000000"
