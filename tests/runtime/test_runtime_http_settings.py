"""`plumbline serve` settings: precedence flag > env > file > default, strict values, docs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from plumbline.cli import build_parser
from plumbline.runtime import settings
from support import EXAMPLE, REPO


def resolve(argv: list[str], env: dict[str, str] | None = None) -> settings.ServeConfig:
    args = build_parser().parse_args(["serve", str(EXAMPLE), *argv])
    return settings.resolve(args, env or {})


def test_defaults_without_flags_env_or_file():
    values = resolve([])
    assert values.host == "127.0.0.1"
    assert values.port == 8000
    assert values.max_body == 10 * 1024 * 1024
    assert values.drain_delay == 5.0
    assert values.graceful_timeout == 30.0
    assert values.inline_futures is True and values.docs is True
    assert values.workers >= 1


def test_flag_beats_env_beats_file_beats_default(tmp_path):
    config = tmp_path / "plumbline.toml"
    config.write_text('[serve]\nport = 7001\nworkers = 3\nmax-queue = 7\nmax_body = "1KiB"\n')
    env = {"PLUMBLINE_PORT": "7002", "PLUMBLINE_WORKERS": "5"}
    values = resolve(["--config", str(config), "--port", "7003"], env)
    assert values.port == 7003  # flag
    assert values.workers == 5  # env over file
    assert values.max_queue == 7  # file
    assert values.max_body == 1024  # file, underscore spelling, size suffix
    assert values.timeout == 60.0  # default


def test_config_file_from_env(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[serve]\naccess-log = false\nattach = ['jsonlite', 'stats']\n")
    values = resolve([], {"PLUMBLINE_CONFIG": str(config)})
    assert values.access_log is False
    assert values.attach == ("jsonlite", "stats")


@pytest.mark.parametrize(
    "argv, env, fragment",
    [
        (["--port", "http"], {}, "'port' (from flag --port)"),
        (["--workers", "0"], {}, "'workers' (from flag --workers): must be >= 1"),
        ([], {"PLUMBLINE_TIMEOUT": "soon"}, "'timeout' (from env PLUMBLINE_TIMEOUT)"),
        ([], {"PLUMBLINE_DOCS": "maybe"}, "'docs' (from env PLUMBLINE_DOCS)"),
        (["--max-body", "10 parsecs"], {}, "'max-body'"),
        (["--attach", "dplyr;system('rm')"], {}, "'attach'"),
        (["--log-level", "loud"], {}, "'log-level'"),
    ],
)
def test_bad_values_name_the_setting_and_source(argv, env, fragment):
    with pytest.raises(settings.SettingError) as caught:
        resolve(argv, env)
    assert fragment in str(caught.value)


def test_bad_config_files_fail_loudly(tmp_path):
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[serve]\nwokers = 2\n")
    with pytest.raises(settings.SettingError, match="unknown setting 'wokers'"):
        resolve(["--config", str(unknown)])
    typed = tmp_path / "typed.toml"
    typed.write_text("[serve]\nport = true\n")
    with pytest.raises(settings.SettingError, match="'port'"):
        resolve(["--config", str(typed)])
    with pytest.raises(settings.SettingError, match="cannot read config file"):
        resolve(["--config", str(tmp_path / "missing.toml")])


def test_serve_command_exits_2_on_a_bad_value():
    out = subprocess.run(
        [sys.executable, "-m", "plumbline", "serve", str(EXAMPLE), "--port", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "invalid value for setting 'port'" in out.stderr


def test_help_states_every_default_and_env_var():
    out = subprocess.run(
        [sys.executable, "-m", "plumbline", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join(out.stdout.split())
    for s in settings.SETTINGS:
        assert s.flag in text
        assert f"env {s.env}; default: {s.shown_default}" in text


def test_entrypoint_packages_are_read_not_run(tmp_path):
    assert settings.entrypoint_packages(EXAMPLE) == ("plumber", "promises", "future")
    app = tmp_path / "plumber.R"
    app.write_text("")
    (tmp_path / "entrypoint.R").write_text(
        "# library(commented)\nrequire('jsonlite'); library(package = stats)\nsystem('x')\n"
    )
    assert settings.entrypoint_packages(app) == ("jsonlite", "stats")
    assert settings.entrypoint_packages(tmp_path / "elsewhere" / "plumber.R") == ()


def test_configuration_doc_is_current():
    doc = REPO / "docs" / "configuration.md"
    assert doc.read_text(encoding="utf-8") == settings.render_markdown(), (
        "docs/configuration.md is stale: run "
        "`python -m plumbline.runtime.settings docs/configuration.md`"
    )


def test_default_workers_respect_a_cgroup_cpu_limit(tmp_path):
    assert settings._cgroup_cpu_limit(tmp_path) is None  # no cgroup files: no limit
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # a pod limited to 1.5 CPUs
    assert settings._cgroup_cpu_limit(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert settings._cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert settings._cgroup_cpu_limit(v1) == 1
    assert 1 <= settings.available_cpus() <= (os.cpu_count() or 1)
