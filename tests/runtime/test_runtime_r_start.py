"""How R starts to load plumber and the app, in the zygote or in a worker started on its own:
its JIT compiler off while loading (it would compile closures run once), then on at R's
level; its first collection trigger where a loaded app's heap settles (R_NSIZE), so it does
not collect again and again while loading. The app sees the variables it was given."""

from __future__ import annotations

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


# The trigger right after the app's first line ran a full collection: R keeps its start value
# as a floor (R's default start, 350,000 cells, gives ~1,050,000 here).
HEAP_REPORT = (
    'trigger_at_load <- gc()["Ncells", "gc trigger"]\n\n'
    "#* @serializer text\n#* @get /report\n"
    'function() paste(sprintf("%.0f", trigger_at_load), Sys.getenv("R_NSIZE", "unset"))\n'
)


def trigger_seen(tmp_path, preload: bool) -> tuple[int, str]:
    (answer,) = seen(tmp_path, preload, HEAP_REPORT)
    trigger, variable = answer.decode().split()
    return int(trigger), variable


def test_r_loads_with_the_trigger_a_loaded_app_needs_and_no_variable_of_ours(tmp_path, preload):
    trigger, variable = trigger_seen(tmp_path, preload)
    assert trigger >= 1_200_000
    assert variable == "unset"


def test_the_users_own_r_nsize_is_the_one_r_starts_with(tmp_path, preload, monkeypatch):
    monkeypatch.setenv("R_NSIZE", "3000000")
    trigger, variable = trigger_seen(tmp_path, preload)
    assert trigger >= 3_000_000
    assert variable == "3000000"
