"""The HAProxy configuration the local cluster writes: accepted by haproxy itself, and
routing the spec's ingress paths with the retry and health-check policy we promise."""

from __future__ import annotations

import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from plumbline.platform.local.haproxy import (
    AppRoutes,
    HAProxy,
    Server,
    ingress_routes,
    render_config,
)
from plumbline.platform.spec.appspec import build_spec
from support import EXAMPLE, free_port


TYPED_APP = """
#* @get /users/<id:int>
function(id) id

#* @post /items
function() "ok"

#* @get /users/<id:int>/posts
function(id) id
"""


def render(spec, tmp_path: Path, servers=()) -> str:
    app = AppRoutes(f"app-{spec.name}", tuple(ingress_routes(spec)), tuple(servers))
    return render_config(
        apps=[app],
        bind_host="127.0.0.1",
        port=18080,
        admin_socket=tmp_path / "admin.sock",
        server_timeout=120,
    )


def haproxy_accepts(config: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    return subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)


@pytest.mark.slow  # real HAProxy
def test_example_config_is_valid_and_routes_each_endpoint(tmp_path):
    spec = build_spec(EXAMPLE, {"name": "demo"})
    config = render(spec, tmp_path, [Server("r1", 40001, 2), Server("r2", 40002, 2)])
    check = haproxy_accepts(config, tmp_path)
    assert check.returncode == 0, check.stderr
    for path in ("/parity", "/wait", "/fail", "/quit", "/health"):
        assert f"acl app-demo_path path {path}\n" in config
    assert "acl app-demo_path path_beg /__docs__/" in config
    assert "use_backend app-demo if app-demo_path" in config
    acls = [line for line in config.splitlines() if "acl app-demo_path" in line]
    assert not [line for line in acls if any(p in line for p in ("/metrics", "/readyz", "/livez"))]
    assert "server r1 127.0.0.1:40001 check inter 500ms" in config
    assert "maxconn 2" in config


def typed_spec(tmp_path: Path):
    app = tmp_path / "typed" / "plumber.R"
    app.parent.mkdir()
    app.write_text(TYPED_APP)
    return build_spec(app, {"name": "typed"})


def test_typed_path_params_become_prefixes(tmp_path):
    routes = ingress_routes(typed_spec(tmp_path))
    assert [(r.kind, r.path) for r in routes][:2] == [("prefix", "/users"), ("exact", "/items")]
    assert len([r for r in routes if r.path == "/users"]) == 1  # deduplicated


class _EchoPath(BaseHTTPRequestHandler):
    """A stand-in replica: ready, and answers every request with its path."""

    def do_GET(self):
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.slow  # real HAProxy
def test_haproxy_matches_paths_as_a_kubernetes_ingress_does(tmp_path):
    replica = ThreadingHTTPServer(("127.0.0.1", 0), _EchoPath)
    threading.Thread(target=replica.serve_forever, daemon=True).start()
    proxy = HAProxy(tmp_path, on_log=lambda line: None)
    port = free_port()
    try:
        app = AppRoutes(
            "app-typed",
            tuple(ingress_routes(typed_spec(tmp_path))),
            (Server("r1", replica.server_port, 4),),
        )
        proxy.start(
            render_config(
                apps=[app],
                bind_host="127.0.0.1",
                port=port,
                admin_socket=proxy.admin_socket,
                server_timeout=10,
            )
        )
        deadline = time.monotonic() + 10
        while not proxy.api.servers("app-typed")["r1"].in_rotation and time.monotonic() < deadline:
            time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for path in ("/users", "/users/7", "/users/7/posts", "/items", "/__docs__/"):
                response = client.get(path)
                assert (response.status_code, response.text) == (200, path)
            # Prefix rules match whole path elements; Exact rules only the path itself;
            # the replica's /metrics is not routed.
            for path in ("/usersX", "/items/1", "/metrics"):
                response = client.get(path)
                assert response.status_code == 404, path
                assert response.json() == {"error": "no route", "path": path}
    finally:
        proxy.stop()
        replica.shutdown()


@pytest.mark.slow  # real HAProxy
def test_one_haproxy_routes_several_apps_each_to_its_own_replicas(tmp_path):
    """The local ingress is ready for several apps side by side (one backend each)."""
    first = typed_spec(tmp_path)
    other = tmp_path / "other" / "plumber.R"
    other.parent.mkdir()
    other.write_text("#* @get /orders\nfunction() 1\n")
    second = build_spec(other, {"name": "orders"})
    config = render_config(
        apps=[
            AppRoutes("app-typed", tuple(ingress_routes(first)), (Server("r1", 40001, 1),)),
            AppRoutes("app-orders", tuple(ingress_routes(second)), (Server("r1", 40002, 1),)),
        ],
        bind_host="127.0.0.1",
        port=18080,
        admin_socket=tmp_path / "admin.sock",
        server_timeout=60,
    )
    check = haproxy_accepts(config, tmp_path)
    assert check.returncode == 0, check.stderr
    assert "use_backend app-typed if app-typed_path" in config
    assert "use_backend app-orders if app-orders_path" in config
    assert "acl app-orders_path path /orders" in config
    orders = config.split("\nbackend app-orders\n")[1]
    assert "server r1 127.0.0.1:40002" in orders and "40001" not in orders


@pytest.mark.slow  # real HAProxy
def test_apps_by_host_and_by_stripped_prefix(tmp_path):
    from plumbline.platform.local.haproxy import Route

    apps = [
        AppRoutes(
            "app-a", (Route("prefix", "/content/a.b"),), strip=("/content/a.b",), server_timeout=90
        ),
        AppRoutes("app-b", (Route("prefix", "/"),), host="b.example.com"),
    ]
    config = render_config(
        apps=apps,
        bind_host="127.0.0.1",
        port=18080,
        admin_socket=tmp_path / "admin.sock",
        server_timeout=120,
    )
    check = haproxy_accepts(config, tmp_path)
    assert check.returncode == 0, check.stderr
    assert r"http-request replace-path ^/content/a\.b/?(.*)$ /\1" in config
    assert "timeout server 90s" in config
    assert "acl app-b_host req.hdr(host),field(1,:) -i b.example.com" in config
    # the host's rule comes first: its app wins over a host-less app on the same path
    assert config.index("use_backend app-b if app-b_host app-b_path") < config.index(
        "use_backend app-a if app-a_path"
    )


@pytest.mark.slow  # real HAProxy
def test_a_vanity_path_is_routed_and_stripped_as_the_prefix_is(tmp_path):
    from plumbline.platform.local.haproxy import Route

    apps = [
        AppRoutes(
            "app-a",
            (Route("prefix", "/content/a"), Route("prefix", "/teams/a")),
            strip=("/content/a", "/teams/a"),
        )
    ]
    config = render_config(
        apps=apps,
        bind_host="127.0.0.1",
        port=18080,
        admin_socket=tmp_path / "admin.sock",
        server_timeout=120,
    )
    check = haproxy_accepts(config, tmp_path)
    assert check.returncode == 0, check.stderr
    assert "acl app-a_path path_beg /teams/a/" in config
    # one rule: /content/a/teams/a/x is stripped once, to /teams/a/x
    assert r"http-request replace-path ^(/content/a|/teams/a)/?(.*)$ /\2" in config
