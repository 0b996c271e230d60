"""R's JIT compiler: off while R loads plumber and the app (it would compile closures run
once), on at R's level in every worker that serves, whether forked or started on its own."""

from __future__ import annotations

import pytest

from pool_harness import running_pool

pytestmark = pytest.mark.slow

REPORT = (
    "#* @serializer text\n#* @get /jit\n"
    'function() paste(compiler::enableJIT(-1L), Sys.getenv("R_ENABLE_JIT", "unset"))\n'
)


@pytest.fixture(params=[True, False], ids=["preload", "no-preload"])
def preload(request):
    return request.param


def jit_seen(tmp_path, preload: bool, top: str = "") -> set[bytes]:
    app = tmp_path / "plumber.R"
    app.write_text(top + REPORT)
    with running_pool(app, workers=2, timeout=20, preload=preload) as harness:
        assert harness.pool.preloaded == preload
        return {harness.get("/jit").body for _ in range(6)}


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
