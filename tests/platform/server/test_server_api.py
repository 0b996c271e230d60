"""plumbline server's API through real HTTP (uvicorn on loopback), on SQLite and PostgreSQL.

The backend here records what the server asks of it (the end-to-end tests use the real
backends); everything else is real: database, migrations, bundle store, extraction, R's
syntax check, tasks. Each test runs once per database.
"""

from __future__ import annotations

import hashlib
import threading
import time

import httpx
import pytest
from bundle_maker import file_member, good_bundle, link_member, tar_gz
from sqlalchemy import func, select

from plumbline.platform.server.app import API_ROUTES as ROUTES
from plumbline.platform.server.db import ApiKey, AuthFailure, Bundle

pytestmark = pytest.mark.slow  # real servers and R's parser


def upload(client, app_id: int, data: bytes):
    return client.post(
        f"/__api__/applications/{app_id}/upload",
        content=data,
        headers={"Content-Type": "application/x-gzip"},
    )


def new_app(client, name: str = "parity-api", **body) -> dict:
    response = client.post("/__api__/applications", json={"name": name, **body})
    assert response.status_code == 200, response.text
    return response.json()


def publish(srv, client, app_id: int, data: bytes) -> dict:
    bundle = upload(client, app_id, data)
    assert bundle.status_code == 200, bundle.text
    task = client.post(
        f"/__api__/applications/{app_id}/deploy", json={"bundle": bundle.json()["id"]}
    )
    assert task.status_code == 200, task.text
    return {**srv.wait_task(client, task.json()["task_id"]), "bundle_id": bundle.json()["id"]}


@pytest.fixture
def srv(make_server):
    return make_server(retention=2)


@pytest.fixture
def admin(srv):
    return srv.client(srv.user("root", "admin"))


def test_every_route_needs_a_key(srv):
    anonymous, wrong = srv.client(None), srv.client("plk_not-a-key")
    for route in ROUTES:
        path = (
            route.path.replace("{app}", "1")
            .replace("{task}", "x")
            .replace("{user}", "1")
            .replace("{key}", "1")
        )
        for method in route.methods - {"HEAD"}:
            for client in (anonymous, wrong):
                response = client.request(method, path)
                assert response.status_code == 401, (method, path, response.text)
                assert "error" in response.json()
        srv.forget_failed_authentications()  # not what this test is about


def test_connect_flow_deploys_and_streams_the_task(srv, admin):
    me = admin.get("/__api__/users/current").json()
    assert me["username"] == "root" and me["user_role"] == "admin"
    app = new_app(admin, "Parity_API", title="Parity")
    assert app["slug"] == "parity-api" and app["url"].endswith("/content/parity-api/")
    listed = admin.get(
        "/__api__/applications",
        params=[
            ("filter", f"account_id:{me['id']}"),
            ("filter", "name:Parity_API"),
            ("count", "100"),
            ("offset", "0"),
        ],
    ).json()
    assert listed["total"] == 1 and listed["applications"][0]["id"] == app["id"]
    assert admin.get("/__api__/applications", params={"filter": "name:other"}).json()["total"] == 0

    done = publish(srv, admin, app["id"], good_bundle(1, {"data/model.csv": b"x,y\n1,2\n"}))
    assert done["code"] == 0 and done["error"] == "", done["output"]
    assert any("Extracting" in line for line in done["output"])
    assert any("succeeded" in line for line in done["output"])
    # rsconnect's incremental reading: from last_status on, nothing is repeated
    again = admin.get(
        f"/__api__/tasks/{done['id']}", params={"first_status": done["last_status"]}
    ).json()
    assert again["status"] == [] and again["finished"]
    middle = admin.get(f"/__api__/tasks/{done['id']}", params={"first_status": 2}).json()
    assert middle["status"] == done["output"][2:]

    deployed = srv.backend.deploys[-1]
    spec = deployed.spec
    assert spec.name == "parity-api" and spec.ingress.path_prefix == "/content/parity-api"
    assert spec.env["PLUMBLINE_ROOT_PATH"] == "/content/parity-api"
    assert deployed.files["data/model.csv"] == b"x,y\n1,2\n"
    assert admin.get(f"/__api__/applications/{app['id']}").json()["bundle_id"] == done["bundle_id"]
    config = admin.get(f"/__api__/applications/{app['id']}/config").json()
    assert config["config_url"] == app["url"]


def test_output_is_readable_while_the_task_runs(srv, admin):
    app = new_app(admin)
    srv.backend.gate = threading.Event()
    bundle = upload(admin, app["id"], good_bundle()).json()
    task_id = admin.post(
        f"/__api__/applications/{app['id']}/deploy", json={"bundle": bundle["id"]}
    ).json()["task_id"]
    deadline = time.monotonic() + 60
    while True:  # the lines before the rollout are there while the backend still works
        task = admin.get(f"/__api__/tasks/{task_id}", params={"first_status": 0}).json()
        if any("Rolling out" in line for line in task["status"]):
            break
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
    assert not task["finished"]
    srv.backend.gate.set()
    assert srv.wait_task(admin, task_id)["code"] == 0


def test_roles_and_ownership(srv, admin):
    viewer = srv.client(srv.user("vera", "viewer"))
    alice = srv.client(srv.user("alice", "publisher"))
    bob = srv.client(srv.user("bob", "publisher"))
    bob_id = bob.get("/__api__/v1/user").json()["id"]
    vera_id = viewer.get("/__api__/v1/user").json()["id"]

    assert viewer.post("/__api__/applications", json={"name": "mine"}).status_code == 403
    app = new_app(alice, "alices-api")
    assert app["owner_username"] == "alice"
    # an acl app is invisible to those without a grant
    assert bob.get(f"/__api__/applications/{app['id']}").status_code == 404
    assert viewer.get("/__api__/v1/apps").json()["apps"] == []
    assert upload(bob, app["id"], good_bundle()).status_code == 404

    # a viewer grant: bob sees it, cannot change it
    assert (
        alice.put(
            f"/__api__/v1/apps/{app['id']}/permissions/{bob_id}", json={"role": "viewer"}
        ).status_code
        == 200
    )
    assert bob.get(f"/__api__/applications/{app['id']}").status_code == 200
    assert upload(bob, app["id"], good_bundle()).status_code == 403
    assert bob.post(f"/__api__/v1/apps/{app['id']}/restart").status_code == 403
    assert (
        bob.put(
            f"/__api__/v1/apps/{app['id']}/permissions/{vera_id}", json={"role": "viewer"}
        ).status_code
        == 403
    )
    # a collaborator may publish, not delete or grant
    alice.put(f"/__api__/v1/apps/{app['id']}/permissions/{bob_id}", json={"role": "collaborator"})
    assert publish(srv, bob, app["id"], good_bundle())["code"] == 0
    assert bob.delete(f"/__api__/v1/apps/{app['id']}").status_code == 403
    # a viewer with a grant still may not change anything: the role caps the grant
    alice.put(f"/__api__/v1/apps/{app['id']}/permissions/{vera_id}", json={"role": "collaborator"})
    assert upload(viewer, app["id"], good_bundle()).status_code == 403
    # users are the admin's
    assert alice.get("/__api__/v1/users").status_code == 403
    assert (
        alice.post("/__api__/v1/users", json={"username": "eve", "role": "admin"}).status_code
        == 403
    )
    assert (
        admin.post("/__api__/v1/users", json={"username": "eve", "role": "publisher"}).status_code
        == 200
    )
    assert admin.post(f"/__api__/applications/{app['id']}/deploy", json={}).status_code == 200
    assert new_app(admin, "alices-api-2")["owner_username"] == "root"
    assert admin.post("/__api__/applications", json={"name": "alices-api"}).status_code == 409


def test_keys_are_shown_once_and_stored_hashed(srv, admin):
    created = admin.post("/__api__/v1/keys", json={"name": "laptop"})
    assert created.status_code == 200
    key = created.json()["key"]
    assert key.startswith("plk_") and len(key) > 40
    listed = admin.get("/__api__/v1/keys").json()["keys"]
    assert all("key" not in k for k in listed) and key not in str(listed)
    with srv.server.db.session() as s:
        row = s.get(ApiKey, created.json()["id"])
        assert row.hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in str([(k.hash, k.hint, k.name) for k in s.scalars(select(ApiKey))])
    laptop = srv.client(key)
    assert laptop.get("/__api__/users/current").status_code == 200
    assert admin.delete(f"/__api__/v1/keys/{created.json()['id']}").status_code == 200
    assert laptop.get("/__api__/users/current").status_code == 401
    # locked users' keys stop working
    eve_key = srv.user("eve", "publisher")
    eve = srv.client(eve_key)
    eve_id = eve.get("/__api__/v1/user").json()["id"]
    admin.patch(f"/__api__/v1/users/{eve_id}", json={"locked": True})
    assert eve.get("/__api__/v1/user").status_code == 401


def test_failed_authentications_are_rate_limited_and_logged(make_server, caplog):
    srv = make_server(auth_failures=3, auth_window=2.0)
    good = srv.client(srv.user("root", "admin"))
    bad = srv.client("plk_guess")
    with caplog.at_level("WARNING", logger="plumbline.server.auth"):
        for _ in range(3):
            assert bad.get("/__api__/users/current").status_code == 401
    failures = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "auth_failed"]
    assert len(failures) == 3 and failures[-1].fields["failures_in_window"] == 3
    limited = bad.get("/__api__/users/current")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # the address is blocked, whatever key it sends now, bundle downloads too (pods'
    # tokens are guessed at the same door), with the same answer
    assert good.get("/__api__/users/current").status_code == 429
    download = httpx.get(f"{srv.url}/__api__/v1/bundles/1/download")
    assert download.status_code == 429 and 1 <= int(download.headers["retry-after"]) <= 2
    assert download.json()["error"].startswith(limited.json()["error"].rsplit(" ", 1)[0])
    time.sleep(2.1)
    assert good.get("/__api__/users/current").status_code == 200


def test_versions_retention_and_rollback(srv, admin):
    app = new_app(admin)
    ids = []
    for version in (1, 2, 3):
        done = publish(srv, admin, app["id"], good_bundle(version))
        assert done["code"] == 0, done["output"]
        ids.append(done["bundle_id"])
    versions = admin.get(f"/__api__/v1/apps/{app['id']}/versions").json()
    kept = [v["id"] for v in versions["versions"]]
    assert kept == [ids[2], ids[1]]  # retention 2: the first one is gone
    assert [v["active"] for v in versions["versions"]] == [True, False]
    assert not (srv.config.apps_dir / str(app["id"]) / str(ids[0])).exists()

    rollback = admin.post(f"/__api__/v1/apps/{app['id']}/rollback", json={})
    assert rollback.status_code == 202
    done = srv.wait_task(admin, rollback.json()["task_id"])
    assert done["code"] == 0 and any("Rolling back" in line for line in done["output"])
    assert srv.backend.deploys[-1].files["plumber.R"].decode().count("hello v2") == 1
    assert admin.get(f"/__api__/v1/apps/{app['id']}").json()["active_bundle_id"] == ids[1]
    # any kept version can be activated; a removed one cannot
    forward = admin.post(f"/__api__/v1/apps/{app['id']}/deploy", json={"bundle_id": ids[2]})
    assert srv.wait_task(admin, forward.json()["task_id"])["code"] == 0
    assert b"hello v3" in srv.backend.deploys[-1].files["plumber.R"]
    gone = admin.post(f"/__api__/v1/apps/{app['id']}/rollback", json={"bundle_id": ids[0]})
    assert gone.status_code == 404


BAD_BUNDLES = {
    "not a gzip tar": (b"PK\x03\x04 this is a zip", "not a gzip-compressed tar"),
    "gzip of garbage": (
        __import__("gzip").compress(b"not a tar at all" * 100),
        "not a valid .tar.gz",
    ),
    "dot-dot member": (
        tar_gz([file_member("plumber.R", b"1"), file_member("../../evil.R", b"x")]),
        "escapes the app folder",
    ),
    "absolute member": (
        tar_gz([file_member("plumber.R", b"1"), file_member("/tmp/evil.R", b"x")]),
        "absolute path",
    ),
    "symlink outside": (
        tar_gz([file_member("plumber.R", b"1"), link_member("data", "../../../etc")]),
        "pointing outside",
    ),
    "absolute symlink": (
        tar_gz([file_member("plumber.R", b"1"), link_member("passwd", "/etc/passwd")]),
        "pointing outside",
    ),
    "hard link outside": (
        tar_gz([file_member("plumber.R", b"1"), link_member("h", "../x", hard=True)]),
        "pointing outside",
    ),
    "no plumber.R": (tar_gz([file_member("app.R", b"1")]), "no plumber.R"),
    "R syntax error": (
        good_bundle(extra={"helpers.R": b"f <- function( {\n"}),
        "R syntax error: helpers.R:1:",
    ),
    "bad annotation": (
        tar_gz([file_member("plumber.R", b"#* @get\nfunction() 1\n")]),
        "nothing was changed",
    ),
    "toml takes the ingress": (
        good_bundle(extra={"plumbline.toml": b'name = "other"\n'}),
        "server decides",
    ),
    "toml sets access": (
        good_bundle(extra={"plumbline.toml": b'[serve]\naccess = "public"\n'}),
        "serve.access",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_bad_bundles_fail_their_task_and_change_nothing(srv, admin, case):
    data, message = BAD_BUNDLES[case]
    app = new_app(admin)
    first = publish(srv, admin, app["id"], good_bundle(1))
    assert first["code"] == 0
    deploys = len(srv.backend.deploys)
    done = publish(srv, admin, app["id"], data)
    assert done["code"] != 0 and done["finished"]
    assert message in done["error"], done["error"]
    assert "nothing was changed" in done["error"] or "keeps serving" in done["error"]
    assert any(line.startswith("error: ") for line in done["output"])
    assert len(srv.backend.deploys) == deploys  # the backend was never asked
    assert (
        admin.get(f"/__api__/v1/apps/{app['id']}").json()["active_bundle_id"] == first["bundle_id"]
    )
    leftovers = [
        p.name
        for p in (srv.config.apps_dir / str(app["id"])).iterdir()
        if p.name.startswith(".extract")
    ]
    assert leftovers == []
    assert not (srv.config.data_dir / "evil.R").exists()


def test_size_limits(make_server):
    srv = make_server(max_bundle_size=20_000, max_expanded_size=100_000, max_bundle_files=5)
    admin = srv.client(srv.user("root", "admin"))
    app = new_app(admin)
    too_big = upload(admin, app["id"], b"\x1f\x8b" + bytes(30_000))
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
    assert list((srv.config.bundle_dir / "incoming").iterdir()) == []
    bomb = good_bundle(extra={"zeros.bin": bytes(200_000)})  # compresses to a few hundred bytes
    assert len(bomb) < 20_000
    done = publish(srv, admin, app["id"], bomb)
    assert done["code"] != 0 and "expands to more than 100000 bytes" in done["error"]
    many = good_bundle(extra={f"f{i}.txt": b"x" for i in range(6)})
    done = publish(srv, admin, app["id"], many)
    assert done["code"] != 0 and "more than 5 files" in done["error"]


def test_a_failed_rollout_keeps_the_active_version(srv, admin):
    app = new_app(admin)
    first = publish(srv, admin, app["id"], good_bundle(1))
    srv.backend.fail_next = "deploy of parity-api failed: replica not ready"
    done = publish(srv, admin, app["id"], good_bundle(2))
    assert done["code"] == 1 and "replica not ready" in done["error"]
    assert "previous version keeps serving" in done["error"]
    srv.backend.raise_next = "the cluster refused it"
    done = publish(srv, admin, app["id"], good_bundle(3))
    assert done["code"] == 1 and "the cluster refused it" in done["error"]
    assert (
        admin.get(f"/__api__/v1/apps/{app['id']}").json()["active_bundle_id"] == first["bundle_id"]
    )
    versions = admin.get(f"/__api__/v1/apps/{app['id']}/versions").json()["versions"]
    assert [v["kept_version"] for v in versions] == [False, False, True]


def test_state_survives_a_restart(srv, admin):
    publisher_key = srv.user("alice", "publisher")
    alice = srv.client(publisher_key)
    app = new_app(alice)
    done = publish(srv, alice, app["id"], good_bundle(1))
    srv.backend.gate = threading.Event()  # the next deploy is stuck in the backend...
    bundle = upload(alice, app["id"], good_bundle(2)).json()
    stuck = alice.post(
        f"/__api__/applications/{app['id']}/deploy", json={"bundle": bundle["id"]}
    ).json()["task_id"]
    threading.Timer(1.0, srv.backend.gate.set).start()
    srv.restart()  # ...when the server stops
    srv.backend.gate = None
    alice = srv.client(publisher_key)
    assert alice.get("/__api__/users/current").json()["username"] == "alice"
    got = alice.get(f"/__api__/applications/{app['id']}").json()
    assert got["name"] == "parity-api" and got["owner_username"] == "alice"
    versions = alice.get(f"/__api__/v1/apps/{app['id']}/versions").json()["versions"]
    assert done["bundle_id"] in [v["id"] for v in versions]
    old = alice.get(f"/__api__/tasks/{done['id']}").json()
    assert old["finished"] and old["code"] == 0 and old["status"] == done["output"]
    task = alice.get(f"/__api__/tasks/{stuck}").json()
    assert task["finished"]
    # a deploy still works after the restart, from the stored bundle
    again = alice.post(f"/__api__/v1/apps/{app['id']}/deploy", json={"bundle_id": bundle["id"]})
    assert srv.wait_task(alice, again.json()["task_id"])["code"] == 0


def test_key_only_apps_get_the_digests_of_allowed_keys(srv, admin):
    alice_key = srv.user("alice", "publisher")
    bob_key = srv.user("bob", "viewer")
    alice = srv.client(alice_key)
    bob_id = srv.client(bob_key).get("/__api__/v1/user").json()["id"]
    app = new_app(alice, "secret-api")
    assert publish(srv, alice, app["id"], good_bundle())["code"] == 0
    env = srv.backend.deploys[-1].spec.env
    assert env["PLUMBLINE_ACCESS"] == "keys"
    keys_file = env["PLUMBLINE_ACCESS_KEYS_FILE"]

    def allowed() -> set[str]:
        return set(open(keys_file).read().split())

    digest = lambda key: hashlib.sha256(key.encode()).hexdigest()  # noqa: E731
    assert digest(alice_key) in allowed() and digest(bob_key) not in allowed()
    alice.put(f"/__api__/v1/apps/{app['id']}/permissions/{bob_id}", json={"role": "viewer"})
    assert digest(bob_key) in allowed()
    bob_key_id = srv.client(bob_key).get("/__api__/v1/keys").json()["keys"][0]["id"]
    srv.client(bob_key).delete(f"/__api__/v1/keys/{bob_key_id}")
    assert digest(bob_key) not in allowed()
    # made public: redeployed without keys
    patched = alice.patch(f"/__api__/v1/apps/{app['id']}", json={"access_type": "all"}).json()
    assert srv.wait_task(alice, patched["task_id"])["code"] == 0
    env = srv.backend.deploys[-1].spec.env
    assert env["PLUMBLINE_ACCESS"] == "public"
    assert env["PLUMBLINE_ACCESS_KEYS_FILE"] == env["PLUMBLINE_ACCESS_KEYS"] == ""
    # its /metrics still answers the server's scraper only
    scrape_key = admin.get("/__api__/v1/metrics/scrape-key").json()["key"]
    assert env["PLUMBLINE_METRICS_KEYS"] == digest(scrape_key)


def test_scale_restart_status_logs_delete(srv, admin):
    app = new_app(admin)
    publish(srv, admin, app["id"], good_bundle())
    scaled = admin.post(f"/__api__/v1/apps/{app['id']}/scale", json={"replicas": 3})
    assert srv.wait_task(admin, scaled.json()["task_id"])["code"] == 0
    assert ("scale", "parity-api", 3) in srv.backend.calls
    assert admin.get(f"/__api__/v1/apps/{app['id']}").json()["replicas"] == 3
    restarted = admin.post(f"/__api__/v1/apps/{app['id']}/restart")
    assert srv.wait_task(admin, restarted.json()["task_id"])["code"] == 0
    status = admin.get(f"/__api__/v1/apps/{app['id']}/status").json()
    assert status["state"] == "done" and status["url"].endswith("/content/parity-api/")
    assert admin.get(f"/__api__/v1/apps/{app['id']}/logs").json()["lines"] == [
        "[parity-api-1] hello from R"
    ]
    tasks = admin.get(f"/__api__/v1/apps/{app['id']}/tasks").json()["tasks"]
    assert [t["kind"] for t in tasks][:3] == ["restart", "scale", "deploy"]
    deleted = admin.delete(f"/__api__/v1/apps/{app['id']}")
    assert srv.wait_task(admin, deleted.json()["task_id"])["code"] == 0
    assert admin.get(f"/__api__/v1/apps/{app['id']}").status_code == 404
    with srv.server.db.session() as s:
        assert list(s.scalars(select(Bundle))) == []
    assert not (srv.config.apps_dir / str(app["id"])).exists()
    assert [p for p in srv.config.bundle_dir.rglob("*.tar.gz")] == []


def test_server_replicas_count_failed_authentications_together(make_server):
    """Two server processes on one database (PostgreSQL: several replicas): an address gets
    `auth_failures` guesses in all, not that many per replica."""
    first = make_server(auth_failures=3, auth_window=60)
    second = make_server(auth_failures=3, auth_window=60)
    good_key = first.user("root", "admin")
    for srv, times in ((first, 2), (second, 1)):
        for _ in range(times):
            assert srv.client("plk_guess").get("/__api__/users/current").status_code == 401
    for srv in (first, second):
        limited = srv.client(good_key).get("/__api__/users/current")
        assert limited.status_code == 429 and 55 <= int(limited.headers["retry-after"]) <= 60
    # failures past the window are forgotten, in the table too
    with first.server.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuthFailure)) == 3
    first.server.limiter.clock = second.server.limiter.clock = lambda: time.time() + 61
    assert first.client(good_key).get("/__api__/users/current").status_code == 200
    assert second.client("plk_guess").get("/__api__/users/current").status_code == 401
    with first.server.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuthFailure)) == 1
