"""`plumbline render` and `plumbline rbac` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from platform_manifest_checks import by_kind, cross_check, validate_all, write_app
from plumbline.platform.kube.manifests import render
from plumbline.platform.spec.appspec import build_spec
from support import EXAMPLE_DIR as EXAMPLE
from support import REPO


def plumbline(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PLUMBLINE_") or k == "PLUMBLINE_ROUTE_TABLE"
    }
    return subprocess.run(
        [sys.executable, "-m", "plumbline", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **(env or {})},
    )


def test_platform_render_cli_prints_the_manifests():
    done = plumbline(
        "render",
        EXAMPLE / "plumber.R",
        "--name",
        "parity",
        "--replicas",
        "3",
        "--workers",
        "4",
        "--cpu",
        "2",
        "--memory",
        "2Gi",
        "--ingress-host",
        "api.example.com",
        "--ingress-class",
        "nginx",
        "--tls-secret",
        "api-tls",
        "--env",
        "LOG_LEVEL=debug",
        "--secret-env",
        "DB_PASSWORD=db:password",
        "--hpa-min",
        "3",
        "--hpa-max",
        "8",
        "--hpa-cpu",
        "60",
    )
    assert done.returncode == 0, done.stderr
    objects = list(yaml.safe_load_all(done.stdout))
    validate_all(objects)
    cross_check(objects)
    objs = by_kind(objects)
    container = objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
    } in container["env"]
    assert objs["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 8
    assert objs["Ingress"]["spec"]["ingressClassName"] == "nginx"
    # Exactly what the Python API renders for the same settings.
    spec = build_spec(
        EXAMPLE / "plumber.R",
        {
            "name": "parity",
            "replicas": 3,
            "workers": 4,
            "resources.cpu_limit": "2",
            "resources.memory_limit": "2Gi",
            "ingress.host": "api.example.com",
            "ingress.class_name": "nginx",
            "ingress.tls_secret": "api-tls",
            "env": {"LOG_LEVEL": "debug"},
            "secret_env": {"DB_PASSWORD": "db:password"},
            "autoscaling.enabled": True,
            "autoscaling.min_replicas": 3,
            "autoscaling.max_replicas": 8,
            "autoscaling.cpu_utilization": 60,
        },
    )
    assert objects == render(spec)


def test_platform_render_cli_path_prefix_env_and_output_file(tmp_path):
    out = tmp_path / "app.yaml"
    done = plumbline(
        "render",
        EXAMPLE / "plumber.R",
        "--path-prefix",
        "/",
        "--output",
        out,
        env={"PLUMBLINE_NAMESPACE": "team-a"},
    )
    assert done.returncode == 0 and done.stdout == "", done.stderr
    objs = by_kind(list(yaml.safe_load_all(out.read_text())))
    assert {o["metadata"]["namespace"] for o in objs.values()} == {"team-a"}
    paths = objs["Ingress"]["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/", "Prefix")]


def test_platform_render_cli_refuses_with_a_clear_message(tmp_path):
    broken = write_app(tmp_path / "app", "#* @get\nfunction() 1\n")
    done = plumbline("render", broken)
    assert done.returncode == 2 and done.stdout == ""
    assert "plumber.R:1: No path specified" in done.stderr
    assert "Traceback" not in done.stderr
    done = plumbline("render", EXAMPLE / "plumber.R", "--replicas", "-1")
    assert done.returncode == 2 and "replicas -1: must be 0 or more" in done.stderr


def test_platform_render_cli_applies_profiles(tmp_path):
    profiles = tmp_path / "profiles.conf"
    profiles.write_text("[*]\nmax-cpus=1\ndefault-mem-mb=512\n[@power]\nmax-cpus=8\n")
    done = plumbline(
        "render",
        EXAMPLE / "plumber.R",
        "--cpu",
        "4",
        "--profiles",
        profiles,
        "--user",
        "alice",
        "--group",
        "staff",
    )
    assert done.returncode == 2
    assert "cpu limit 4 is more than allowed: max-cpus=1 from profile section [*]" in done.stderr
    done = plumbline(
        "render",
        EXAMPLE / "plumber.R",
        "--cpu",
        "4",
        "--user",
        "alice",
        "--group",
        "power",
        env={"PLUMBLINE_PROFILES": str(profiles)},
    )
    assert done.returncode == 0, done.stderr
    container = by_kind(list(yaml.safe_load_all(done.stdout)))["Deployment"]["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "512Mi"}


def test_platform_render_cli_helm_values_and_rbac():
    done = plumbline("render", EXAMPLE / "plumber.R", "--name", "parity", "--helm-values")
    assert done.returncode == 0, done.stderr
    values = yaml.safe_load(done.stdout)
    assert values["name"] == "parity" and "plumber.R" in values["app"]["files"]
    done = plumbline("rbac", "--namespace", "team-a")
    assert done.returncode == 0, done.stderr
    assert [o["kind"] for o in yaml.safe_load_all(done.stdout)] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
    ]
    done = plumbline("rbac")
    assert done.returncode == 2 and "--namespace is required" in done.stderr


ROUTER_BLOCK_APP = """#* @get /hello
function() "hello"

#* @plumber
function(pr) {
  pr |> plumber::pr_get("/added", function() "added in R")
}
"""


def test_platform_render_cli_warns_that_the_ingress_misses_routes_added_in_r(tmp_path):
    app = tmp_path / "plumber.R"
    app.write_text(ROUTER_BLOCK_APP)
    done = plumbline("render", app, "--name", "hello")
    assert done.returncode == 0, done.stderr
    assert f"warning: {app}:4: a `#* @plumber` block may add routes" in done.stderr
    assert "--path-prefix /" in done.stderr
    paths = by_kind(list(yaml.safe_load_all(done.stdout)))["Ingress"]["spec"]["rules"][0]
    assert [p["path"] for p in paths["http"]["paths"]] == ["/hello", "/__docs__", "/openapi.json"]
    # Routing every path answers the warning.
    done = plumbline("render", app, "--name", "hello", "--path-prefix", "/")
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    done = plumbline("render", EXAMPLE / "plumber.R")
    assert done.returncode == 0 and done.stderr == "", done.stderr


def ingress_paths(stdout: str) -> list[tuple[str, str]]:
    rules = by_kind(list(yaml.safe_load_all(stdout)))["Ingress"]["spec"]["rules"][0]
    return [(p["path"], p["pathType"]) for p in rules["http"]["paths"]]


@pytest.mark.slow
def test_platform_render_cli_routes_what_r_code_adds(tmp_path):
    """With R installed, render reads plumber's own router (one Rscript loads the file):
    routes a `#* @plumber` block adds get Ingress rules, and nothing is left to warn about."""
    app = tmp_path / "plumber.R"
    app.write_text(ROUTER_BLOCK_APP)
    done = plumbline("render", app, "--name", "hello")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert ingress_paths(done.stdout) == [
        ("/hello", "Exact"),
        ("/added", "Exact"),
        ("/__docs__", "Prefix"),
        ("/openapi.json", "Exact"),
    ]
    in_code = REPO / "tests" / "compat" / "apps" / "in-code" / "plumber.R"
    done = plumbline("render", in_code, "--name", "in-code")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    paths = ingress_paths(done.stdout)
    assert {
        ("/added", "Exact"),
        ("/handled", "Exact"),
        ("/typed", "Prefix"),
        ("/items", "Prefix"),
        ("/other", "Prefix"),
        ("/static", "Prefix"),
    } <= set(paths)
    assert ("/items/search", "Exact") not in paths  # the mounted router's prefix covers it


@pytest.mark.slow
def test_platform_render_cli_when_r_cannot_load_the_file(tmp_path):
    app = tmp_path / "plumber.R"
    app.write_text("library(onlyInTheImage)\n" + ROUTER_BLOCK_APP)
    done = plumbline("render", app, "--name", "hello")  # the annotations, with a warning
    assert done.returncode == 0, done.stderr
    assert "R could not load it here" in done.stderr and "onlyInTheImage" in done.stderr
    assert ingress_paths(done.stdout)[0] == ("/hello", "Exact")
    done = plumbline("render", app, "--name", "hello", env={"PLUMBLINE_ROUTE_TABLE": "r"})
    assert done.returncode == 2 and "onlyInTheImage" in done.stderr, done.stderr
    done = plumbline("render", app, env={"PLUMBLINE_ROUTE_TABLE": "sometimes"})
    assert done.returncode == 2 and "PLUMBLINE_ROUTE_TABLE" in done.stderr, done.stderr


@pytest.mark.slow
def test_platform_render_cli_refuses_an_r_syntax_error(tmp_path):
    app = tmp_path / "plumber.R"
    app.write_text("#* @get /a\nfunction() {\n  1 +\n}\n")
    done = plumbline("render", app)
    assert done.returncode == 2 and done.stdout == ""
    assert f"{app}:4:1: R syntax error: unexpected '}}'" in done.stderr, done.stderr
