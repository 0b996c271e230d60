"""The HTTP layer's own answers, through a real uvicorn server in this process.

Everything here is answered by Python before any R worker is involved (the pool is real but
never started): 404/405, 413, 400 for malformed JSON, assets and their traversal guards,
OpenAPI, Swagger UI, request ids. Raw paths go over http.client so nothing normalises them.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from plumbline.annotations import parse_file
from plumbline.runtime.front.app import AppOptions, create_app
from plumbline.runtime.pool.pool import PoolConfig, WorkerPool

pytestmark = pytest.mark.slow  # starts uvicorn servers (in this process; no R)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plumber-on-k8s" / "plumber.R"

APP_R = """\
#* @apiTitle Shop
#* @apiDescription Things to buy.
#* @apiVersion 0.3.1

#* List items
#* @tag items
#* @param limit:int How many
#* @param ids:[int] Which ones
#* @response 200 The items
#* @get /items
function(limit = 10, ids = NULL) list()

#* Add an item
#* @param name:str* Its name
#* @post /items
function(name) list()

#* One user
#* @get /users/<id:int>
#* @delete /users/<id:int>
function(id) id

#* @assets ./static /files
list()
"""


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    (root / "plumber.R").write_text(APP_R)
    static = root / "static"
    (static / "css").mkdir(parents=True)
    (static / "hello.txt").write_text("hello from a file\n")
    (static / "css" / "site.css").write_text("body { color: red }\n")
    (static / "index.html").write_text("<h1>index</h1>\n")
    (root / "secret.txt").write_text("top secret\n")
    os.symlink(root / "secret.txt", static / "leak.txt")
    os.symlink(static / "hello.txt", static / "alias.txt")  # inside: allowed
    return root


@contextmanager
def running(app):
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def make_app(plumber_file: Path, **options):
    spec = parse_file(plumber_file)
    pool = WorkerPool(PoolConfig(plumber_file=plumber_file, workers=1))  # never started
    return create_app(spec, pool, AppOptions(**{"access_log": False, **options}))


@pytest.fixture(scope="module")
def shop(app_dir):
    with running(make_app(app_dir / "plumber.R", max_body=1024)) as port:
        yield port


def request(port, method, path, body=None, headers=None, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_unknown_path_is_plumbers_404(shop):
    status, headers, body = request(shop, "GET", "/nowhere")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "404 - Resource Not Found"}


def test_wrong_verb_is_405_listing_the_allowed_ones(shop):
    status, headers, body = request(shop, "PUT", "/items")
    assert status == 405
    assert headers["allow"] == "GET, POST"
    assert json.loads(body) == {"error": "405 - Method Not Allowed"}
    status, headers, _ = request(shop, "POST", "/users/12")
    assert status == 405 and headers["allow"] == "GET, DELETE"
    status, headers, body = request(shop, "HEAD", "/items")  # plumber has no implicit HEAD
    assert status == 405 and body == b""


def test_body_over_max_body_is_413_by_length_and_when_streamed(shop):
    status, _, body = request(
        shop, "POST", "/items", body=b"x" * 2000, headers={"Content-Type": "text/plain"}
    )
    assert status == 413
    assert json.loads(body) == {"error": "request body too large", "max_body": 1024}
    chunks = iter([b"y" * 600, b"y" * 600, b"y" * 600])
    status, _, body = request(
        shop, "POST", "/items", body=chunks, chunked=True, headers={"Content-Type": "text/plain"}
    )
    assert status == 413
    assert json.loads(body)["error"] == "request body too large"


def test_malformed_json_is_400_naming_the_problem(shop):
    status, headers, body = request(
        shop,
        "POST",
        "/items",
        body=b'{"name": "x",}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert status == 400
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["error"] == "request body is not valid JSON"
    assert "line 1 column 14" in payload["detail"]
    status, _, body = request(
        shop, "POST", "/items", body=b"[NaN]", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "NaN" in json.loads(body)["detail"]


def test_assets_serve_files_with_content_types(shop):
    status, headers, body = request(shop, "GET", "/files/hello.txt")
    assert (status, body) == (200, b"hello from a file\n")
    assert headers["content-type"] == "text/plain"  # plumber's table, no charset added
    status, headers, body = request(shop, "GET", "/files/css/site.css")
    assert status == 200 and headers["content-type"] == "text/css"
    status, headers, body = request(shop, "GET", "/files/")
    assert status == 200 and body == b"<h1>index</h1>\n"
    assert headers["content-type"] == "text/html; charset=UTF-8"
    status, _, body = request(shop, "GET", "/files/alias.txt")
    assert (status, body) == (200, b"hello from a file\n")
    status, _, body = request(shop, "GET", "/files/missing.txt")
    assert status == 404 and json.loads(body)["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/files/../plumber.R",
        "/files/../secret.txt",
        "/files/css/../../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/%2E%2E/%2e%2e/secret.txt",
        "/files/..%2fsecret.txt",
        "/files/%2e%2e%2fsecret.txt",
        "/files/..%5csecret.txt",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd",
        "/files/leak.txt",
    ],
)
def test_assets_refuse_anything_outside_the_folder(shop, path):
    status, headers, body = request(shop, "GET", path)
    assert status in (403, 404), path
    assert headers["content-type"] == "application/json"
    assert b"secret" not in body and b"root:" not in body and b"function" not in body


def test_request_id_is_echoed_or_generated(shop):
    _, headers, _ = request(shop, "GET", "/livez", headers={"X-Request-Id": "abc-123"})
    assert headers["x-request-id"] == "abc-123"
    _, first, _ = request(shop, "GET", "/livez")
    _, second, _ = request(shop, "GET", "/nowhere")
    assert len(first["x-request-id"]) == 32 and first["x-request-id"] != second["x-request-id"]
    _, headers, _ = request(shop, "GET", "/livez", headers={"X-Request-Id": "bad id\t"})
    assert headers["x-request-id"] != "bad id\t" and len(headers["x-request-id"]) == 32


def test_readyz_is_503_with_worker_states_while_no_worker_is_loaded(shop):
    status, headers, body = request(shop, "GET", "/readyz")
    assert status == 503
    payload = json.loads(body)
    assert payload["error"] == "not ready" and isinstance(payload["workers"], list)
    assert request(shop, "GET", "/livez")[0] == 200
    assert request(shop, "POST", "/livez")[0] == 405


def test_openapi_describes_the_app(shop):
    from openapi_spec_validator import validate

    status, headers, body = request(shop, "GET", "/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    validate(doc)
    assert doc["openapi"] == "3.0.3"
    assert doc["info"] == {"title": "Shop", "description": "Things to buy.", "version": "0.3.1"}
    listing = doc["paths"]["/items"]["get"]
    assert listing["summary"] == "List items" and listing["tags"] == ["items"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert params["limit"]["in"] == "query"
    assert params["limit"]["schema"] == {"type": "integer", "format": "int64", "default": 10}
    assert params["ids"]["schema"]["type"] == "array"
    assert listing["responses"]["200"]["description"] == "The items"
    adding = doc["paths"]["/items"]["post"]
    body_schema = adding["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["properties"]["name"]["type"] == "string"
    assert body_schema["required"] == ["name"]
    user = doc["paths"]["/users/{id}"]
    assert set(user) == {"get", "delete"}
    assert user["get"]["parameters"][0] == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "format": "int64"},
    }


def test_swagger_ui_is_served_locally(shop):
    status, headers, body = request(shop, "GET", "/__docs__/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    html = body.decode()
    assert "swagger-ui-bundle.js" in html
    assert "//" not in html  # no http://, https:// or protocol-relative URL
    status, headers, js = request(shop, "GET", "/__docs__/swagger-initializer.js")
    assert status == 200 and b"../openapi.json" in js and b"https://" not in js
    status, headers, bundle = request(shop, "GET", "/__docs__/swagger-ui-bundle.js")
    assert status == 200 and headers["content-type"].startswith("application/javascript")
    assert len(bundle) > 100_000
    assert request(shop, "GET", "/__docs__")[0] == 307
    assert request(shop, "GET", "/__docs__/../../etc/passwd")[0] == 404


def test_docs_off_hides_swagger_and_openapi(app_dir):
    with running(make_app(app_dir / "plumber.R", docs=False)) as port:
        assert request(port, "GET", "/__docs__/")[0] == 404
        assert request(port, "GET", "/openapi.json")[0] == 404
        assert request(port, "GET", "/livez")[0] == 200
