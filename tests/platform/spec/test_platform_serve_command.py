"""One `plumbline serve` command line per app: the Deployment, the Helm chart and a local
replica run what serve_arguments() returns, and it resolves to the settings the spec and
plumbline.toml ask for."""

from __future__ import annotations

import shutil
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from platform_manifest_checks import by_kind, write_app
from support import REPO
from plumbline.cli import build_parser
from plumbline.platform.kube.helm_values import helm_values
from plumbline.platform.local.cluster import replica_command
from plumbline.platform.kube.manifests import render
from plumbline.platform.spec.serve import PLATFORM_OWNED, pod_placement, serve_arguments
from plumbline.platform.spec.appspec import SpecError, build_spec
from plumbline.runtime import settings

API = "#* @get /a\nfunction() 1\n"
SERVE_TABLE = """
    request_timeout = 45
    [serve]
    max-body = "1KiB"
    docs = false
    attach = ["stats"]
    max-requests = 500
"""
CASES = {
    "defaults": ({}, None),
    "serve-table": ({"workers": 3, "max_queue": 7}, SERVE_TABLE),
    "no-drain": (
        {
            "rollout.drain_delay_seconds": 0,
            "rollout.graceful_timeout_seconds": 9,
            "request_timeout": 0,
        },
        None,
    ),
}


def _spec(tmp_path: Path, case: str):
    flags, toml = CASES[case]
    return build_spec(write_app(tmp_path / "shop", API, toml=toml), {"name": "shop", **flags})


def _container(objects: list[dict]) -> dict:
    return by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def _resolve(argv: list[str], environ: dict[str, str]) -> settings.ServeConfig:
    """What `plumbline serve` makes of a command line: the real parser and resolver."""
    args = build_parser().parse_args(argv)
    return settings.resolve(args, environ)


@pytest.mark.parametrize("case", sorted(CASES))
def test_deployment_and_helm_chart_run_the_one_serve_command_line(tmp_path, case):

    spec = _spec(tmp_path, case)
    expected = [
        "plumbline",
        *serve_arguments(spec, pod_placement("/app", "plumber.R", 8000, "/var/cache/plumbline")),
    ]
    assert _container(render(spec))["command"] == expected
    chart = REPO / "charts" / "plumbline-app"
    with helm.Chart.load(chart) as loaded:
        rendered = loaded.render(values=helm_values(spec), name=spec.name, namespace="default")
    objects = [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    assert _container(objects)["command"] == expected


def test_a_pod_resolves_the_spec_and_its_serve_table(tmp_path):
    spec = _spec(tmp_path, "serve-table")
    # The pod sees the app's folder at /app; here the same files sit in a folder of ours.
    app = tmp_path / "app"
    shutil.copytree(spec.app_dir, app)
    argv = serve_arguments(
        spec, pod_placement(str(app), "plumber.R", 8000, str(tmp_path / "cache"))
    )
    config = _resolve(argv, {})
    assert (config.host, config.port, config.workers) == ("0.0.0.0", 8000, 3)
    assert (config.timeout, config.max_queue) == (45.0, 7)
    assert (config.drain_delay, config.graceful_timeout) == (5.0, 30.0)
    # the [serve] table reaches the runtime: nothing the platform passes overrides it
    assert (config.max_body, config.docs, config.attach, config.max_requests) == (
        1024,
        False,
        ("stats",),
        500,
    )


def test_a_local_replica_runs_the_same_command_line_and_ignores_the_shells_settings(
    tmp_path, monkeypatch
):
    spec = _spec(tmp_path, "serve-table")
    # left over in the shell that runs `plumbline up`: a pod would not see these
    monkeypatch.setenv("PLUMBLINE_TIMEOUT", "1")
    monkeypatch.setenv("PLUMBLINE_DOCS", "on")
    monkeypatch.setenv("PLUMBLINE_CONFIG", "/elsewhere.toml")
    cmd, env = replica_command(spec, 4321, access_log=False)
    assert cmd[1:4] == ["-m", "plumbline", "serve"]
    assert "PLUMBLINE_TIMEOUT" not in env and "PLUMBLINE_CONFIG" not in env
    config = _resolve(cmd[3:], env)
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 4321, 3)
    assert (config.timeout, config.max_queue, config.drain_delay) == (45.0, 7, 0.0)
    assert (config.max_body, config.docs, config.attach, config.max_requests) == (
        1024,
        False,
        ("stats",),
        500,
    )
    assert config.access_log is False  # the console of `up` shows no access lines by default
    assert _resolve(cmd[3:], replica_command(spec, 4321, access_log=True)[1]).access_log


def test_the_apps_own_access_log_choice_wins_locally(tmp_path):
    plumber = write_app(tmp_path / "shop", API, toml="[serve]\naccess-log = true\n")
    cmd, env = replica_command(build_spec(plumber, {}), 4321, access_log=False)
    assert _resolve(cmd[3:], env).access_log is True


@pytest.mark.parametrize("name", sorted(PLATFORM_OWNED))
def test_serve_keys_the_platform_sets_are_refused_naming_the_spec_field(tmp_path, name):
    setting = settings.BY_NAME[name]
    value = {
        "host": '"0.0.0.0"',
        "packages": '"cached"',
        "repos": '"https://cran.example.org"',
    }.get(name, "3")
    plumber = write_app(tmp_path / "shop", API, toml=f"[serve]\n{setting.file_key} = {value}\n")
    with pytest.raises(SpecError) as refused:
        build_spec(plumber, {})
    message = str(refused.value)
    assert f"[serve] {setting.file_key} is set by plumbline" in message
    assert "plumbline.toml" in message
    assert PLATFORM_OWNED[name] in message


def test_the_serve_table_is_checked_by_the_runtimes_declarations(tmp_path):
    bad = write_app(tmp_path / "shop", API, toml='[serve]\nmax-body = "10 parsecs"\n')
    with pytest.raises(SpecError, match="invalid value for setting 'max-body'"):
        build_spec(bad, {})
    # either spelling, as `plumbline serve --config` accepts it
    fine = write_app(tmp_path / "ok", API, toml='[serve]\nmax_body = "2KiB"\nlog-level = "debug"\n')
    assert build_spec(fine, {}).serve_config == fine.parent / "plumbline.toml"
