"""The HAProxy configuration the local cluster writes: accepted by haproxy itself, and
routing the spec's ingress paths with the retry and health-check policy we promise."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from plumbline.platform.haproxy import Server, ingress_routes, render_config
from plumbline.platform.spec import build_spec

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plumber-on-k8s" / "plumber.R"

TYPED_APP = '''
#* @get /users/<id:int>
function(id) id

#* @post /items
function() "ok"

#* @get /users/<id:int>/posts
function(id) id
'''


def render(spec, tmp_path: Path, servers=()) -> str:
    return render_config(routes=ingress_routes(spec), bind_host="127.0.0.1", port=18080,
                         admin_socket=tmp_path / "admin.sock", servers=servers,
                         server_timeout=120)


def haproxy_accepts(config: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    return subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_example_config_is_valid_and_routes_each_endpoint(tmp_path):
    spec = build_spec(EXAMPLE, {"name": "demo"})
    config = render(spec, tmp_path, [Server("r1", 40001, 2), Server("r2", 40002, 2)])
    check = haproxy_accepts(config, tmp_path)
    assert check.returncode == 0, check.stderr
    for path in ("/parity", "/wait", "/fail", "/quit", "/health"):
        assert f"acl app_path path {path}\n" in config
    assert "acl app_path path_beg /__docs__/" in config
    acls = [line for line in config.splitlines() if "acl app_path" in line]
    assert not [line for line in acls if any(p in line for p in ("/metrics", "/readyz", "/livez"))]
    assert "server r1 127.0.0.1:40001 check inter 500ms" in config
    assert "maxconn 2" in config


def test_typed_path_params_become_prefixes(tmp_path):
    app = tmp_path / "typed" / "plumber.R"
    app.parent.mkdir()
    app.write_text(TYPED_APP)
    routes = ingress_routes(build_spec(app, {"name": "typed"}))
    assert [(r.kind, r.path) for r in routes][:2] == [("prefix", "/users/"), ("exact", "/items")]
    assert len([r for r in routes if r.path == "/users/"]) == 1  # deduplicated


def test_retries_never_replay_a_request_that_reached_a_replica(tmp_path):
    config = render(build_spec(EXAMPLE, {"name": "demo"}), tmp_path)
    backend = config.split("\nbackend app\n")[1]
    assert "retry-on conn-failure empty-response\n" in backend
    assert "http-request disable-l7-retry unless idempotent" in backend
    assert "acl idempotent method GET HEAD OPTIONS" in backend
    assert backend.count("retry-on") == 1  # no retry on 5xx or response timeouts
    assert "option httpchk" in backend and "uri /readyz" in backend
