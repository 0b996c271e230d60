"""Several apps on one local host behind the one HAProxy (what `plumbline server` runs):
each under its own path prefix (removed before the app sees the request) or its own host
name, added and removed one at a time without disturbing the others."""

from __future__ import annotations

import threading
import time
from urllib.parse import urljoin

import httpx
import pytest

from plumbline.platform.backend import AppRef, NoSuchApp
from plumbline.platform.local.backend import LocalBackend
from plumbline.platform.local.cluster import Settings
from plumbline.platform.local.host import LocalHost
from plumbline.platform.spec.appspec import build_spec
from support import EXAMPLE, free_port

pytestmark = pytest.mark.slow  # real R and HAProxy

HELLO = '#* @serializer text\n#* @get /hello\nfunction() "hello from {name}"\n'


def app_spec(tmp_path, name: str, **flags):
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "plumber.R").write_text(HELLO.format(name=name))
    return build_spec(folder / "plumber.R", {"name": name, "replicas": 1, "workers": 1, **flags})


@pytest.fixture
def host(tmp_path, state_dir):
    port = free_port()
    lines: list[str] = []
    local = LocalHost(
        None, Settings(port=port), say=lines.append, name="apps", open_to_new_apps=True
    )
    thread = threading.Thread(target=local.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not local.record.path.exists():
        assert thread.is_alive() and time.monotonic() < deadline, lines
        time.sleep(0.05)
    yield local
    local.request_stop("test over")
    thread.join(120)
    assert not thread.is_alive()


def test_apps_side_by_side_by_path_and_by_host(host, tmp_path):
    backend = LocalBackend(host="apps")
    url = host.url
    prefixed = app_spec(
        tmp_path,
        "one",
        **{"ingress.path_prefix": "/content/one", "env": {"PLUMBLINE_ROOT_PATH": "/content/one"}},
    )
    result = backend.deploy(prefixed, emit=lambda line: None, timeout=120)
    assert result.ok, result.verdict
    by_host = app_spec(tmp_path, "two", **{"ingress.host": "two.example.com"})
    assert backend.deploy(by_host, emit=lambda line: None, timeout=120).ok

    reply = httpx.get(f"{url}/content/one/hello")
    assert (reply.status_code, reply.text) == (200, "hello from one")
    document = f"{url}/content/one/openapi.json"
    # the server URL, resolved as Swagger UI does (against where the document came from)
    server_url = urljoin(document, httpx.get(document).json()["servers"][0]["url"])
    assert httpx.get(server_url.rstrip("/") + "/hello").text == "hello from one"
    reply = httpx.get(f"{url}/hello", headers={"Host": "two.example.com:8080"})
    assert (reply.status_code, reply.text) == (200, "hello from two")
    assert httpx.get(f"{url}/hello").status_code == 404  # no app for this host
    assert httpx.get(f"{url}/content/onex/hello").status_code == 404

    assert {s.name for s in backend.list_apps()} == {"one", "two"}
    assert backend.status(AppRef("one")).ready == 1

    # A new version of one app: the other keeps its replicas.
    before = {r.name for r in backend.status(AppRef("two")).replicas}
    (tmp_path / "one" / "plumber.R").write_text(HELLO.format(name="one v2"))
    assert backend.deploy(prefixed, emit=lambda line: None, timeout=120).ok
    assert httpx.get(f"{url}/content/one/hello").text == "hello from one v2"
    assert {r.name for r in backend.status(AppRef("two")).replicas} == before

    deleted = backend.delete(AppRef("one"), emit=lambda line: None)
    assert deleted.ok, deleted.verdict
    assert httpx.get(f"{url}/content/one/hello").status_code == 404
    assert httpx.get(f"{url}/hello", headers={"Host": "two.example.com"}).text == "hello from two"
    with pytest.raises(NoSuchApp):
        backend.status(AppRef("one"))


def test_an_app_that_does_not_start_is_not_added(host, tmp_path):
    backend = LocalBackend(host="apps")
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "plumber.R").write_text('stop("no model file")\n#* @get /x\nfunction() 1\n')
    spec = build_spec(folder / "plumber.R", {"name": "broken", "replicas": 1, "workers": 1})
    result = backend.deploy(spec, emit=lambda line: None, timeout=120)
    assert not result.ok and "no model file" in result.verdict
    deadline = time.monotonic() + 30
    while "broken" in {s.name for s in backend.list_apps()}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ok = backend.deploy(
        build_spec(EXAMPLE, {"name": "example", "replicas": 1, "workers": 1}),
        emit=lambda line: None,
        timeout=120,
    )
    assert ok.ok, ok.verdict
    assert httpx.get(f"{host.url}/parity", params={"int": 3}).text == "odd"
