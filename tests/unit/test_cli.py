"""The `plumbline` command line: lazy command modules, one environment rule, one meaning
per flag, one error format, exit codes declared once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from plumbline.cli import COMMANDS, build_parser, main
from plumbline.exits import ExitCode
from support import EXAMPLE, PLUMBLINE


def test_serve_in_a_pod_imports_no_kubernetes_client():
    # -X importtime lists every module imported; the bad port stops serve after parsing.
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "plumbline",
            "serve",
            str(EXAMPLE),
            "--port",
            "-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.USAGE
    assert "plumbline serve: invalid value for setting 'port'" in done.stderr
    imported = {
        line.split("|")[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "plumbline.runtime.settings" in imported
    heavy = {
        m
        for m in imported
        if m.split(".")[0] in ("kubernetes", "urllib3", "yaml")
        or m.startswith("plumbline.platform")
    }
    assert not heavy


def test_each_command_loads_only_its_own_module():
    code = (
        "import sys; from plumbline.cli import build_parser; build_parser(['status', 'x']);"
        "print(sorted(m for m in sys.modules if m.startswith('plumbline.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = eval(done.stdout)  # a list of module names we printed
    assert "plumbline.platform.cli.apps" in loaded
    assert not [
        m
        for m in loaded
        if m.startswith(
            ("plumbline.platform.kube", "plumbline.platform.local", "plumbline.runtime.server")
        )
    ]


def test_every_option_can_come_from_its_environment_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLUMBLINE_ROUTE_TABLE", "annotations")  # the routes without R: fast
    monkeypatch.setenv("PLUMBLINE_REPLICAS", "5")
    monkeypatch.setenv("PLUMBLINE_NO_PDB", "on")
    out = tmp_path / "out.yaml"
    assert main(["render", str(EXAMPLE), "-o", str(out)]) == 0
    kinds = {o["kind"]: o for o in yaml.safe_load_all(out.read_text())}
    assert kinds["Deployment"]["spec"]["replicas"] == 5 and "PodDisruptionBudget" not in kinds
    assert main(["render", str(EXAMPLE), "-o", str(out), "--replicas", "4"]) == 0  # flag wins
    assert (
        next(o for o in yaml.safe_load_all(out.read_text()) if o["kind"] == "Deployment")["spec"][
            "replicas"
        ]
        == 4
    )
    monkeypatch.setenv("PLUMBLINE_REPLICAS", "many")
    capsys.readouterr()
    assert main(["render", str(EXAMPLE)]) == ExitCode.USAGE
    assert capsys.readouterr().err.startswith("plumbline render: PLUMBLINE_REPLICAS='many':")


def test_help_names_the_environment_variable_of_each_option():
    done = subprocess.run(
        [*PLUMBLINE, "deploy", "--help"], capture_output=True, text=True, timeout=60
    )
    text = " ".join(done.stdout.split())
    for flag in ("--replicas", "--image", "--rollout-timeout", "--kubeconfig", "--local"):
        assert f"[env PLUMBLINE_{flag[2:].replace('-', '_').upper()}]" in text


def _options() -> dict[str, dict[str, str]]:
    """flag -> {command: help} over every command."""
    parser = build_parser()
    found: dict[str, dict[str, str]] = {}
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command_parser in sub.choices.items():
        for action in command_parser._actions:
            for flag in action.option_strings:
                found.setdefault(flag, {})[name] = action.help or ""
    return found


def test_one_meaning_per_flag_name():
    options = _options()
    assert set(options["--timeout"]) == {"serve"}  # a request's limit in R
    assert set(options["--rollout-timeout"]) == {"deploy", "restart", "scale", "rollback"}
    assert set(options["--host"]) == {"serve", "server"}  # an address to listen on
    assert "--ingress-host" in options and "up" in options["--ingress-host"]


def test_every_command_is_declared_once_and_exit_codes_are_distinct():
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    for code in ExitCode:
        assert code.meaning


@pytest.mark.parametrize("argv", [["scale", "3"], ["status"]])
def test_errors_have_one_format(argv, capsys):
    assert main(argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"plumbline {argv[0]}: the app's name is required")


def test_a_reader_that_stops_early_gets_no_traceback():
    """`plumbline rbac -n shop | head -1`: once the reader has gone, the command stops quietly,
    as other command-line tools do (the pipe's read end is closed before it starts)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*PLUMBLINE, "rbac", "-n", "shop"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == ExitCode.FAILED
    assert done.stderr == "", done.stderr
