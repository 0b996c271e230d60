"""A vanity path for real: `plumbline server` with the local backend (replicas behind the real
HAProxy), real R. The published parity API answers under /parity/ as under
/content/parity-api/ (HAProxy removes either prefix, so plumber.R sees /parity); setting and
clearing it reloads HAProxy while requests keep coming, none failing, no replica restarted;
bad paths and a viewer change nothing; a restarted server routes it again. One server serves
the module; the tests run in file order.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from urllib.parse import urljoin

import httpx
import pytest
from server_process import ServerProcess
from support import EXAMPLE_DIR

pytestmark = [
    pytest.mark.slow,  # real R and HAProxy (scripts/install.sh)
    pytest.mark.xdist_group("server_vanity_e2e"),  # one server, tests in file order
]

VANITY = "/__api__/v1/apps/parity-api/vanity"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("server"))
    srv.start()
    srv.alice_key = srv.add_publisher("alice")
    folder = tmp_path_factory.mktemp("apps") / "parity-api"
    folder.mkdir()
    (folder / "plumber.R").write_bytes((EXAMPLE_DIR / "plumber.R").read_bytes())
    done = srv.publish(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]


def get(server, path: str, key: str | None = None) -> httpx.Response:
    return server.client(key, server.apps).get(path)


@contextmanager
def steady_load(server, path: str):
    """Requests to `path` from 4 threads while the block runs; yields the failures list."""
    failures, answered, stop = [], [], threading.Event()

    def load():
        client = server.client(server.alice_key, server.apps)
        while not stop.is_set():
            try:
                reply = client.get(path)
                (answered if reply.status_code == 200 else failures).append(
                    (reply.status_code, reply.text)
                )
            except httpx.TransportError as exc:
                failures.append(("transport", str(exc)))
            time.sleep(0.005)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        yield failures
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert len(answered) > 20, "the load did not run"


def replica_names(server) -> set[str]:
    """The replicas, by name: a rollout would start new ones."""
    status = server.client(server.alice_key).get("/__api__/v1/apps/parity-api/status").json()
    return {r["name"] for r in status["replicas"]}


def test_setting_a_vanity_path_routes_it_with_no_failed_request(server):
    alice = server.client(server.alice_key)
    assert get(server, "/parity/parity?int=7", server.alice_key).status_code == 404
    before = replica_names(server)
    with steady_load(server, "/content/parity-api/parity?int=7") as failures:
        reply = alice.put(VANITY, json={"path": "parity"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["url"] == f"{server.apps}/parity/"
        done = server.wait_task(server.alice_key, reply.json()["task_id"])
        time.sleep(0.5)  # requests after the reload too
    assert done["code"] == 0, done["output"]
    assert any("no replica restarted" in line for line in done["output"]), done["output"]
    assert failures == []
    assert replica_names(server) == before
    reply = get(server, "/parity/parity?int=7", server.alice_key)
    assert (reply.status_code, reply.text) == (200, "odd"), reply.text
    assert get(server, "/parity/parity?int=7").status_code == 401  # still key-only
    assert get(server, "/parity", server.alice_key).status_code == 404  # plumber's own 404
    # the document read through the vanity path sends Swagger UI's calls through it too,
    # though HAProxy stripped the path and the replicas were never told of it
    spec = get(server, "/parity/openapi.json", server.alice_key).json()
    server_url = urljoin(f"{server.apps}/parity/openapi.json", spec["servers"][0]["url"])
    assert server_url == f"{server.apps}/parity/"
    docs = get(server, "/parity/__docs__", server.alice_key)
    assert docs.status_code == 307
    assert urljoin(f"{server.apps}/parity/__docs__", docs.headers["location"]) == (
        f"{server.apps}/parity/__docs__/"
    )
    assert get(server, "/parityx/parity?int=7", server.alice_key).json()["error"] == "no route"
    content = get(server, "/content/parity-api/parity?int=2", server.alice_key)
    assert (content.status_code, content.text) == (200, "even")


def test_bad_paths_and_a_viewer_change_nothing(server):
    alice, admin = server.client(server.alice_key), server.client(server.admin_key)
    vera = admin.post("/__api__/v1/users", json={"username": "vera", "role": "viewer"}).json()
    vera_key = admin.post(f"/__api__/v1/users/{vera['id']}/keys", json={"name": "k"}).json()
    alice.put(f"/__api__/v1/apps/parity-api/permissions/{vera['id']}", json={"role": "viewer"})
    refused = server.client(vera_key["key"]).put(VANITY, json={"path": "/vera/"})
    assert refused.status_code == 403
    for path, status in (("/__api__/", 400), ("/content/x/", 400), ("/Parity/", 400)):
        assert alice.put(VANITY, json={"path": path}).status_code == status
    other = alice.post("/__api__/v1/apps", json={"name": "other-api"}).json()
    taken = alice.put(f"/__api__/v1/apps/{other['id']}/vanity", json={"path": "/parity/"})
    assert taken.status_code == 409
    assert alice.get(VANITY).json()["path"] == "/parity/"
    reply = get(server, "/parity/parity?int=7", server.alice_key)
    assert (reply.status_code, reply.text) == (200, "odd")
    assert get(server, "/vera/parity?int=7", server.alice_key).status_code == 404


def test_the_vanity_path_survives_a_server_restart(server):
    server.stop()
    assert server.process.returncode == 0, server.log.read_text()[-3000:]
    server.start()
    deadline = time.monotonic() + 300
    while get(server, "/parity/parity?int=2", server.alice_key).status_code != 200:
        assert time.monotonic() < deadline, "the vanity path did not come back"
        time.sleep(0.5)
    assert get(server, "/parity/parity?int=2", server.alice_key).text == "even"


def test_clearing_it_unroutes_it_with_no_failed_request(server):
    alice = server.client(server.alice_key)
    before = replica_names(server)
    with steady_load(server, "/content/parity-api/parity?int=7") as failures:
        reply = alice.delete(VANITY)
        assert reply.status_code == 200, reply.text
        done = server.wait_task(server.alice_key, reply.json()["task_id"])
        time.sleep(0.5)
    assert done["code"] == 0 and failures == [], (done["output"], failures[:5])
    assert replica_names(server) == before
    assert get(server, "/parity/parity?int=7", server.alice_key).json()["error"] == "no route"
    assert get(server, "/content/parity-api/parity?int=7", server.alice_key).status_code == 200
