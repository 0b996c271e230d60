"""The done-when flow, for real: `plumbline server` with the local backend (replicas behind
one HAProxy), real R, real rsconnect, a 50 MB data file in the bundle.

An R user publishes with rsconnect and calls the API through the ingress with a key;
publishes changed code while requests keep coming (none may fail); rolls back; a broken
version fails its task while the running one keeps serving; a second app runs beside the
first under its own /content/<name>/ path; the server restarts and everything is still
there. One server serves the module; the tests run in file order.
"""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest
from rsconnect_harness import deploy_api
from server_process import ServerProcess
from support import EXAMPLE_DIR


pytestmark = [
    pytest.mark.slow,  # real R, rsconnect and HAProxy (scripts/install.sh)
    pytest.mark.xdist_group("server_local_e2e"),  # one server, tests in file order
]

BIG = 50 * 1024 * 1024
APP_R = """\
big <- file.size("data/big.bin")

#* @serializer text
#* @get /info
function() paste("v{version}", big)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("server"))
    srv.start()
    srv.alice_key = srv.add_publisher("alice")
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def big_app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big-api") / "big-api"
    (folder / "data").mkdir(parents=True)
    with open(folder / "data" / "big.bin", "wb") as f:  # incompressible: a 50 MB bundle
        for _ in range(BIG // 2**20):
            f.write(os.urandom(2**20))
    (folder / "plumber.R").write_text(APP_R.format(version=1))
    return folder


def answer(server, key=None, path="/content/big-api/info"):
    return server.client(key, server.apps).get(path)


def test_rsconnect_publishes_an_api_with_a_50mb_file(server, big_app, tmp_path):
    done = deploy_api(tmp_path / "home", server.url, server.alice_key, "alice", big_app, "big-api")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "successfully deployed to" in out and f"{server.apps}/content/big-api/" in out
    reply = answer(server, server.alice_key)
    assert (reply.status_code, reply.text) == (200, f"v1 {BIG}")
    assert answer(server).status_code == 401  # key-only by default
    viewer = server.client(server.admin_key).post(
        "/__api__/v1/users", json={"username": "vera", "role": "viewer"}
    )
    vera_key = (
        server.client(server.admin_key)
        .post(f"/__api__/v1/users/{viewer.json()['id']}/keys", json={"name": "k"})
        .json()["key"]
    )
    assert answer(server, vera_key).status_code == 403  # no grant on this app
    server.vera_key = vera_key
    server.rsconnect_home = tmp_path / "home"


def test_a_second_deploy_rolls_out_with_no_failed_request(server, big_app):
    (big_app / "plumber.R").write_text(APP_R.format(version=2))
    failures, answers, stop = [], [], threading.Event()

    def load():
        client = server.client(server.alice_key, server.apps)
        deadline = time.monotonic() + 600
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                reply = client.get("/content/big-api/info")
                (answers if reply.status_code == 200 else failures).append(
                    (reply.status_code, reply.text)
                )
            except httpx.TransportError as exc:
                failures.append(("transport", str(exc)))
            time.sleep(0.01)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        done = deploy_api(
            server.rsconnect_home, server.url, server.alice_key, "alice", big_app, "big-api"
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert failures == []
    texts = {text for _, text in answers}
    assert f"v1 {BIG}" in texts and f"v2 {BIG}" in texts, texts
    assert answer(server, server.alice_key).text == f"v2 {BIG}"


def test_rollback_to_the_first_version(server):
    alice = server.client(server.alice_key)
    task = alice.post("/__api__/v1/apps/big-api/rollback", json={})
    assert task.status_code == 202, task.text
    done = server.wait_task(server.alice_key, task.json()["task_id"])
    assert done["code"] == 0, done["output"]
    assert answer(server, server.alice_key).text == f"v1 {BIG}"
    versions = alice.get("/__api__/v1/apps/big-api/versions").json()["versions"]
    assert [v["active"] for v in versions] == [False, True]
    assert all(v["size"] > BIG for v in versions)


def test_a_broken_version_fails_and_the_running_one_keeps_serving(server, tmp_path):
    broken = tmp_path / "big-api"
    broken.mkdir()
    (broken / "plumber.R").write_text('#* @get /info\nfunction() {\n  stop("never"\n}\n')
    done = server.publish(broken)
    assert done.returncode == 1 and "R syntax error: plumber.R:" in done.stdout
    # an app that parses but fails in R at load time: the backend refuses the rollout
    (broken / "plumber.R").write_text('stop("model missing")\n#* @get /info\nfunction() 1\n')
    done = server.publish(broken)
    assert done.returncode == 1 and "model missing" in done.stdout, done.stdout
    assert answer(server, server.alice_key).text == f"v1 {BIG}"


def test_a_second_app_beside_the_first(server, tmp_path):
    folder = tmp_path / "parity-api"
    folder.mkdir()
    (folder / "plumber.R").write_bytes((EXAMPLE_DIR / "plumber.R").read_bytes())
    done = server.publish(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    alice = server.client(server.alice_key)
    patched = alice.patch("/__api__/v1/apps/parity-api", json={"access_type": "all"}).json()
    assert server.wait_task(server.alice_key, patched["task_id"])["code"] == 0
    reply = answer(server, path="/content/parity-api/parity?int=7")
    assert (reply.status_code, reply.text) == (200, "odd")
    spec = answer(server, path="/content/parity-api/openapi.json").json()
    assert spec["servers"] == [{"url": "."}]  # Swagger UI: /content/parity-api + /parity
    # Public, but its traffic figures are the server's to read (with its scrape key) only
    assert answer(server, path="/content/parity-api/metrics").status_code == 401
    assert answer(server, server.alice_key, "/content/parity-api/metrics").status_code == 401
    scrape_key = server.client(server.admin_key).get("/__api__/v1/metrics/scrape-key")
    metrics = server.client(None, server.apps).get(
        "/content/parity-api/metrics", headers={"X-Plumbline-Metrics-Key": scrape_key.json()["key"]}
    )
    assert metrics.status_code == 200 and 'route="/parity"' in metrics.text, metrics.text[:300]
    assert answer(server, path="/content/parity-api/readyz").status_code == 200
    assert answer(server, server.alice_key).text == f"v1 {BIG}"
    assert answer(server, path="/content/nothing-here/").status_code == 404
    status = alice.get("/__api__/v1/apps/parity-api/status").json()
    assert status["ready"] == status["desired"] >= 1


def test_state_and_apps_survive_a_server_restart(server):
    server.stop()
    assert server.process.returncode == 0, server.log.read_text()[-3000:]
    server.start()
    alice = server.client(server.alice_key)
    names = {a["name"] for a in alice.get("/__api__/v1/apps").json()["apps"]}
    assert names == {"big-api", "parity-api"}
    # The server redeploys each app's active version after its restart, one after another.
    deadline = time.monotonic() + 300
    for key, path in (
        (server.alice_key, "/content/big-api/info"),
        (None, "/content/parity-api/parity?int=2"),
    ):
        while answer(server, key, path).status_code != 200:
            assert time.monotonic() < deadline, f"{path} did not come back"
            time.sleep(0.5)
    assert answer(server, server.alice_key).text == f"v1 {BIG}"
    assert answer(server, path="/content/parity-api/parity?int=2").text == "even"
