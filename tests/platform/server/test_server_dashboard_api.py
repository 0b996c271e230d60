"""The API behind the dashboard, through real HTTP: signing in with a key or a password (the
session cookie and its CSRF token), app health for the list, traffic charts from the
replicas' metrics, grants by user name, and the dashboard's own files.

The backend records what the server asks of it (the browser tests use the real one). Each
test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
import time

import httpx
import pytest
from bundle_maker import good_bundle
from sqlalchemy import select
from support import free_port
from test_server_traffic_store import exposition

from plumbline.platform.backend import ReplicaMetrics
from plumbline.platform.server.app import API_ROUTES
from plumbline.platform.server.dashboard import FILES
from plumbline.platform.server.db import LoginSession, User

pytestmark = pytest.mark.slow  # real servers and databases

PASSWORD = "correct horse battery staple"


@pytest.fixture
def srv(make_server):
    return make_server(metrics_interval=0.2)


def publish(srv, client, app_id: int, version: int = 1) -> dict:
    bundle = client.post(f"/__api__/v1/apps/{app_id}/bundles", content=good_bundle(version))
    assert bundle.status_code == 200, bundle.text
    task = client.post(f"/__api__/v1/apps/{app_id}/deploy", json={"bundle_id": bundle.json()["id"]})
    return srv.wait_task(client, task.json()["task_id"])


def browser(srv) -> httpx.Client:
    """A client that keeps cookies and sends no key: as the dashboard's page."""
    return httpx.Client(base_url=srv.url, timeout=60)


def sign_in(srv, **body) -> tuple[httpx.Client, dict]:
    page = browser(srv)
    answer = page.post("/__api__/v1/session", json=body)
    assert answer.status_code == 200, answer.text
    return page, answer.json()


def test_every_api_route_needs_a_credential(srv):
    anonymous = browser(srv)
    stale = httpx.Client(base_url=srv.url, cookies={"plumbline_session": "not-a-session"})
    for route in API_ROUTES:
        path = re.sub(r"\{(\w+)\}", "1", route.path)
        for method in route.methods - {"HEAD"}:
            for client in (anonymous, stale):
                response = client.request(method, path)
                assert response.status_code == 401, (method, path, response.text)
        srv.forget_failed_authentications()


def test_sign_in_with_a_key_gives_a_protected_cookie_and_csrf_token(srv):
    key = srv.user("alice", "publisher")
    page, session = sign_in(srv, key=key)
    answer = browser(srv).post("/__api__/v1/session", json={"key": key})  # its headers
    set_cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/" in set_cookie
    assert "Secure" not in set_cookie  # plain http on loopback
    assert answer.headers["cache-control"] == "no-store"
    assert session["user"]["username"] == "alice" and session["via"] == "session"
    assert len(session["csrf_token"]) >= 40
    # the database holds the token's sha256 only
    token = page.cookies["plumbline_session"]
    with srv.server.db.session() as s:
        ids = set(s.scalars(select(LoginSession.id)))
    assert hashlib.sha256(token.encode()).hexdigest() in ids and token not in ids

    # Reads need only the cookie; a change needs the CSRF token too.
    assert page.get("/__api__/v1/user").json()["username"] == "alice"
    refused = page.post("/__api__/v1/apps", json={"name": "no-csrf"})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["error"]
    wrong = page.post(
        "/__api__/v1/apps", json={"name": "bad-csrf"}, headers={"X-CSRF-Token": "x" * 43}
    )
    assert wrong.status_code == 403
    made = page.post(
        "/__api__/v1/apps",
        json={"name": "with-csrf"},
        headers={"X-CSRF-Token": session["csrf_token"]},
    )
    assert made.status_code == 200, made.text
    again = page.get("/__api__/v1/session").json()
    assert again["csrf_token"] == session["csrf_token"]  # a reloaded page gets it back

    # Signing out ends the session for good (the cookie alone no longer works).
    out = page.delete("/__api__/v1/session", headers={"X-CSRF-Token": session["csrf_token"]})
    assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
    replay = httpx.Client(base_url=srv.url, cookies={"plumbline_session": token})
    assert replay.get("/__api__/v1/user").status_code == 401


def test_sign_in_takes_json_only(srv):
    key = srv.user("hal", "viewer")
    form = browser(srv).post("/__api__/v1/session", data={"key": key})  # what a form can send
    assert form.status_code == 415 and "set-cookie" not in form.headers


def test_cookie_is_secure_behind_https(make_server):
    srv = make_server(public_url="https://plumbline.example.com")
    answer = browser(srv).post("/__api__/v1/session", json={"key": srv.user("bob", "viewer")})
    assert answer.status_code == 200
    assert "Secure" in answer.headers["set-cookie"]


def test_passwords_are_scrypt_hashes_and_sign_in_with_them(srv):
    admin = srv.client(srv.user("root", "admin"))
    user = admin.post("/__api__/v1/users", json={"username": "carol", "role": "viewer"}).json()
    short = admin.put(f"/__api__/v1/users/{user['id']}/password", json={"password": "short"})
    assert short.status_code == 400 and "10 characters" in short.json()["error"]
    assert (
        admin.put(
            f"/__api__/v1/users/{user['id']}/password", json={"password": PASSWORD}
        ).status_code
        == 200
    )
    with srv.server.db.session() as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "carol"))
    assert stored.startswith("scrypt$") and PASSWORD not in stored

    page, session = sign_in(srv, username="carol", password=PASSWORD)
    assert session["user"]["user_role"] == "viewer" and session["has_password"]
    wrong = browser(srv).post(
        "/__api__/v1/session", json={"username": "carol", "password": "nope" * 3}
    )
    nobody = browser(srv).post(
        "/__api__/v1/session", json={"username": "nobody", "password": PASSWORD}
    )
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["error"] == nobody.json()["error"] == "wrong username or password"

    # Changing one's password needs the current one, and signs out the other sessions.
    other, _ = sign_in(srv, username="carol", password=PASSWORD)
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    bad = page.put("/__api__/v1/user/password", json={"password": "x" * 12}, headers=csrf)
    assert bad.status_code == 403
    changed = page.put(
        "/__api__/v1/user/password",
        json={"current_password": PASSWORD, "password": "a much newer passphrase"},
        headers=csrf,
    )
    assert changed.status_code == 200, changed.text
    assert page.get("/__api__/v1/user").status_code == 200
    assert other.get("/__api__/v1/user").status_code == 401

    # Locking the user ends their session too.
    admin.patch(f"/__api__/v1/users/{user['id']}", json={"locked": True})
    assert page.get("/__api__/v1/user").status_code == 401
    locked = browser(srv).post(
        "/__api__/v1/session", json={"username": "carol", "password": "a much newer passphrase"}
    )
    assert locked.status_code == 401


def test_failed_sign_ins_are_limited(make_server):
    srv = make_server(auth_failures=3, auth_window=60)
    page = browser(srv)
    for _ in range(3):
        assert page.post("/__api__/v1/session", json={"key": "plk_guess"}).status_code == 401
    limited = page.post("/__api__/v1/session", json={"key": srv.user("dave", "viewer")})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_revoking_the_key_a_session_signed_in_with_ends_it(srv):
    key = srv.user("erin", "publisher")
    page, session = sign_in(srv, key=key)
    keys = page.get("/__api__/v1/keys").json()["keys"]
    revoked = page.delete(
        f"/__api__/v1/keys/{keys[0]['id']}", headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert revoked.status_code == 200
    assert page.get("/__api__/v1/user").status_code == 401
    assert srv.client(key).get("/__api__/v1/user").status_code == 401


def test_an_expired_session_is_refused_without_counting_as_an_attack(make_server):
    srv = make_server(session_lifetime=1, auth_failures=2)
    page, _ = sign_in(srv, key=srv.user("frank", "viewer"))
    # the browser's clock may keep the cookie a little longer than the server the session
    stale = httpx.Client(
        base_url=srv.url, cookies={"plumbline_session": page.cookies["plumbline_session"]}
    )
    time.sleep(1.5)
    for _ in range(4):  # a dashboard left open keeps polling: it must not get 429
        assert stale.get("/__api__/v1/apps").status_code == 401
    for _ in range(4):  # nor does a page asking whether it is signed in, before it is
        assert browser(srv).get("/__api__/v1/session").status_code == 401
    assert (
        browser(srv)
        .post("/__api__/v1/session", json={"key": srv.user("gina", "viewer")})
        .status_code
        == 200
    )


def test_viewers_read_but_every_change_is_refused(srv):
    admin = srv.client(srv.user("root", "admin"))
    app = admin.post("/__api__/v1/apps", json={"name": "parity-api"}).json()
    assert publish(srv, admin, app["id"])["code"] == 0
    viewer_key = srv.user("vera", "viewer")
    vera = admin.get("/__api__/v1/users").json()["users"][-1]
    admin.put(f"/__api__/v1/apps/{app['id']}/permissions/{vera['id']}", json={"role": "viewer"})
    page, session = sign_in(srv, key=viewer_key)
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    shown = page.get(f"/__api__/v1/apps/{app['id']}").json()
    assert shown["can_change"] is False
    for path in ("versions", "status", "metrics", "permissions"):
        assert page.get(f"/__api__/v1/apps/{app['id']}/{path}").status_code == 200, path
    changes = [
        ("POST", "restart", None),
        ("POST", "scale", {"replicas": 2}),
        ("POST", "rollback", {}),
        ("POST", "deploy", {"bundle_id": 1}),
        ("PATCH", "", {"access_type": "all"}),
        ("POST", "permissions", {"username": "vera", "role": "collaborator"}),
        ("DELETE", "", None),
    ]
    for method, path, body in changes:
        url = f"/__api__/v1/apps/{app['id']}/{path}".rstrip("/")
        answer = page.request(method, url, json=body, headers=csrf)
        assert answer.status_code == 403, (method, url, answer.text)
    assert page.get(f"/__api__/v1/apps/{app['id']}/logs").status_code == 403


def test_app_list_health_versions_by_whom_and_grants_by_name(srv):
    alice_key = srv.user("alice", "publisher")
    srv.user("bob", "publisher")
    alice = srv.client(alice_key)
    deployed = alice.post("/__api__/v1/apps", json={"name": "parity-api"}).json()
    alice.post("/__api__/v1/apps", json={"name": "empty-api"})
    assert publish(srv, alice, deployed["id"])["code"] == 0
    listed = {a["name"]: a for a in alice.get("/__api__/v1/apps?include=status").json()["apps"]}
    assert listed["parity-api"]["status"] == {
        "health": "healthy",
        "ready": 1,
        "desired": 1,
        "state": "done",
        "message": "",
    }
    assert listed["empty-api"]["status"]["health"] == "not deployed"
    assert "status" not in alice.get("/__api__/v1/apps").json()["apps"][0]  # only when asked

    srv.backend.running.pop("parity-api")  # the backend lost it
    srv.server.statuses.forget()
    listed = alice.get("/__api__/v1/apps?include=status").json()["apps"]
    assert next(a for a in listed if a["name"] == "parity-api")["status"]["health"] == "down"

    versions = alice.get(f"/__api__/v1/apps/{deployed['id']}/versions").json()["versions"]
    assert versions[0]["created_by_username"] == "alice"

    granted = alice.post(
        f"/__api__/v1/apps/{deployed['id']}/permissions",
        json={"username": "bob", "role": "collaborator"},
    )
    assert granted.status_code == 200 and granted.json()["role"] == "collaborator"
    missing = alice.post(
        f"/__api__/v1/apps/{deployed['id']}/permissions", json={"username": "zed", "role": "viewer"}
    )
    assert missing.status_code == 404
    bob = srv.client(srv.user("bob2", "publisher"))
    assert (
        bob.post(
            f"/__api__/v1/apps/{deployed['id']}/permissions",
            json={"username": "bob2", "role": "collaborator"},
        ).status_code
        == 404  # bob2 cannot even see alice's key-only app
    )


def test_traffic_charts_from_the_replicas_scraped_with_the_scrape_key(srv):
    admin = srv.client(srv.user("root", "admin"))
    app = admin.post("/__api__/v1/apps", json={"name": "parity-api"}).json()
    assert publish(srv, admin, app["id"])["code"] == 0
    key = admin.get("/__api__/v1/metrics/scrape-key").json()["key"]
    spec = srv.backend.running["parity-api"].spec
    assert spec.env["PLUMBLINE_METRICS_KEYS"] == hashlib.sha256(key.encode()).hexdigest()
    viewer = srv.client(srv.user("vic", "viewer"))
    assert viewer.get("/__api__/v1/metrics/scrape-key").status_code == 403

    served: list = []
    for _ in range(40):  # the replicas serve traffic while the server scrapes them
        served += [("GET", "/hello", 200, 0.003)] * 5 + [("GET", "/hello", 500, 0.4)]
        srv.backend.exposition["parity-api"] = [
            ReplicaMetrics("r1", exposition(served)),
            ReplicaMetrics("r2", None, "HTTP 503"),
        ]
        charts = admin.get(f"/__api__/v1/apps/{app['id']}/metrics?minutes=5").json()
        if any(charts["series"].get("/hello", {}).get("rps") or []):
            break
        time.sleep(0.2)
    assert charts["source"] == "scraped" and charts["routes"] == ["/hello"]
    assert charts["scrape"]["replicas"] == {"r1": "", "r2": "HTTP 503"}
    hello = charts["series"]["/hello"]
    assert any(v for v in hello["rps"])
    assert {round(v, 6) for v in hello["error_rate"] if v is not None} == {round(1 / 6, 6)}
    assert all(0.0025 <= v <= 0.005 for v in hello["p50"] if v is not None)
    assert {h["X-Plumbline-Metrics-Key"] for h in srv.backend.metrics_headers} == {key}
    assert len(charts["times"]) == len(hello["rps"]) == 5 * 60 // charts["step_seconds"]


def test_the_dashboard_is_served_with_a_strict_policy_and_loads_nothing_else(srv):
    page = browser(srv)
    index = page.get("/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    policy = index.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and index.headers["x-frame-options"] == "DENY"
    for name, file in FILES.items():
        answer = page.get(f"/static/{name}")
        assert answer.status_code == 200 and answer.content == file.body
        cached = page.get(f"/static/{name}", headers={"If-None-Match": answer.headers["etag"]})
        assert cached.status_code == 304
        text = file.body.decode()
        # Nothing from anywhere else: the only URL is SVG's namespace, which is not fetched.
        assert set(re.findall(r"https?://[^\s\"')]+", text)) <= {"http://www.w3.org/2000/svg"}, name
    referenced = set(re.findall(r"/static/([\w.]+)", index.text))
    for name, file in FILES.items():
        if name.endswith(".js"):
            referenced |= set(re.findall(r'from "\./([\w.]+)"', file.body.decode()))
    assert referenced <= set(FILES) and {"app.js", "style.css"} <= referenced
    assert page.get("/static/..%2Fapi.py").status_code == 404
    assert page.get("/static/__init__.py").status_code == 404


def test_an_unreachable_prometheus_is_a_clear_502(make_server):
    srv = make_server(prometheus_url=f"http://127.0.0.1:{free_port()}")
    admin = srv.client(srv.user("root", "admin"))
    app = admin.post("/__api__/v1/apps", json={"name": "parity-api"}).json()
    answer = admin.get(f"/__api__/v1/apps/{app['id']}/metrics")
    assert answer.status_code == 502
    assert answer.json()["error"].startswith("cannot read Prometheus at http://127.0.0.1:")


def test_uploads_from_the_dashboard_need_the_csrf_token_too(srv):
    page, session = sign_in(srv, key=srv.user("uma", "publisher"))
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    app = page.post("/__api__/v1/apps", json={"name": "upload-api"}, headers=csrf).json()
    path = f"/__api__/v1/apps/{app['id']}/bundles"
    refused = page.post(path, content=good_bundle(1))
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["error"]
    stored = page.post(path, content=good_bundle(1), headers=csrf)
    assert stored.status_code == 200 and stored.json()["size"] > 0
