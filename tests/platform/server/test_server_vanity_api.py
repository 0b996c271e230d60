"""Vanity paths through the API (Connect's `PUT/GET/DELETE /__api__/v1/content/{guid}/vanity`),
over real HTTP, on SQLite and PostgreSQL. The backend records the specs the server deploys;
the end-to-end tests (test_server_vanity_e2e.py, test_server_vanity_kubernetes.py) route them
for real.
"""

from __future__ import annotations

import threading

import pytest
from bundle_maker import good_bundle
from test_server_api import new_app, publish

from plumbline.platform.server.app import Server, create_app
from plumbline.platform.server.vanity import VanityError, normalise
from plumbline.platform.server.vanity_api import ROUTES
from plumbline.platform.spec.ingress import ingress_paths

pytestmark = pytest.mark.slow  # real servers and R's parser


@pytest.fixture
def srv(make_server):
    return make_server(apps_url="http://apps.example.com")


def vanity(app: dict) -> str:
    return f"/__api__/v1/content/{app['guid']}/vanity"


def deployed(srv, app: dict):
    return srv.backend.running[app["slug"]].spec


def test_set_get_and_clear_a_vanity_path(srv):
    alice = srv.client(srv.user("alice", "publisher"))
    app = new_app(alice)
    assert alice.get(vanity(app)).status_code == 404  # none yet
    assert publish(srv, alice, app["id"], good_bundle(1))["code"] == 0

    reply = alice.put(vanity(app), json={"path": "parity"})  # Connect adds the slashes
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["content_guid"], body["path"]) == (app["guid"], "/parity/")
    assert body["url"] == "http://apps.example.com/parity/" and body["created_time"]
    assert srv.wait_task(alice, body["task_id"])["code"] == 0
    spec = deployed(srv, app)
    assert spec.ingress.path_aliases == ("/parity",)
    assert ingress_paths(spec) == [
        {"path": "/content/parity-api", "pathType": "Prefix"},
        {"path": "/parity", "pathType": "Prefix"},
    ]
    # the local ingress strips it: the runtime needs no alias (Kubernetes: see its test)
    assert spec.env["PLUMBLINE_ROOT_PATH_ALIASES"] == ""

    for path in (vanity(app), f"/__api__/v1/apps/{app['name']}/vanity"):
        assert alice.get(path).json()["path"] == "/parity/"
    shown = alice.get(f"/__api__/v1/apps/{app['id']}").json()
    assert shown["vanity_path"] == "/parity/" and shown["vanity_url"] is True
    assert shown["vanity_full_url"] == "http://apps.example.com/parity/"
    assert shown["url"] == "http://apps.example.com/content/parity-api/"  # still its own
    connect = alice.get(f"/__api__/applications/{app['id']}").json()
    assert connect["vanity_url"] is True  # what rsconnect's syncAppMetadata() keeps

    deploys = len(srv.backend.deploys)
    again = alice.put(vanity(app), json={"path": "/parity/"})
    assert again.status_code == 200 and "task_id" not in again.json()  # nothing changed
    assert len(srv.backend.deploys) == deploys

    cleared = alice.delete(vanity(app))  # as Connect answers: 204, no body
    assert cleared.status_code == 204 and cleared.content == b""
    assert srv.wait_task(alice, cleared.headers["x-plumbline-task-id"])["code"] == 0
    assert deployed(srv, app).ingress.path_aliases == ()
    assert alice.get(vanity(app)).status_code == 404
    assert alice.delete(vanity(app)).status_code == 404


def test_an_app_not_deployed_yet_keeps_it_for_its_first_deploy(srv):
    alice = srv.client(srv.user("alice", "publisher"))
    app = new_app(alice)
    reply = alice.put(vanity(app), json={"path": "/teams/parity/"})
    assert reply.status_code == 200 and "task_id" not in reply.json()
    assert srv.backend.deploys == []
    assert publish(srv, alice, app["id"], good_bundle(1))["code"] == 0
    assert deployed(srv, app).ingress.path_aliases == ("/teams/parity",)


BAD_PATHS = [
    (None, "non-empty string"),
    (7, "non-empty string"),
    ("", "non-empty string"),
    ("/", "root path"),
    ("//parity/", "'//'"),
    ("/a//b/", "'//'"),
    ("/../parity/", "'..'"),
    ("/a/./b/", "'.'"),
    ("/Parity/", "did you mean '/parity/'"),
    ("/a b/", "lower-case letters"),
    ("/a%2fb/", "lower-case letters"),
    ("/a?b=1/", "lower-case letters"),
    ("/-parity/", "starting and ending"),
    ("/p/" + "x" * 200 + "/", "at most 200"),
    ("/__api__/", "/__"),
    ("/__docs__/parity/", "/__"),
    ("/__mine/", "/__"),
    ("/content/", "/content belongs to the server"),
    ("/content/parity-api/", "/content belongs"),
    ("/static/x/", "/static"),
    ("/favicon.ico/", "/favicon.ico"),
    ("/metrics/", "/metrics"),
]


def test_malformed_and_reserved_paths_get_400_and_change_nothing(srv):
    alice = srv.client(srv.user("alice", "publisher"))
    app = new_app(alice)
    assert publish(srv, alice, app["id"], good_bundle(1))["code"] == 0
    assert alice.put(vanity(app), json={"path": "/parity/"}).status_code == 200
    srv.server.tasks.wait_idle()
    deploys, tasks = len(srv.backend.deploys), alice.get(f"/__api__/v1/apps/{app['id']}/tasks")
    for path, message in BAD_PATHS:
        reply = alice.put(vanity(app), json={"path": path})
        assert reply.status_code == 400, (path, reply.text)
        assert message in reply.json()["error"], (path, reply.json())
    for body, message in (
        ({"path": "/ok/", "vanity": 1}, "unknown fields vanity"),
        ({"path": "/ok/", "force": "yes"}, "force must be true or false"),
    ):
        reply = alice.put(vanity(app), json=body)
        assert reply.status_code == 400 and message in reply.json()["error"]
    assert alice.put(vanity(app), content=b"not json").status_code == 400
    assert alice.get(vanity(app)).json()["path"] == "/parity/"
    assert len(srv.backend.deploys) == deploys
    assert alice.get(f"/__api__/v1/apps/{app['id']}/tasks").json() == tasks.json()


def test_taken_and_overlapping_paths_get_409(srv):
    alice = srv.client(srv.user("alice", "publisher"))
    bob = srv.client(srv.user("bob", "publisher"))
    admin = srv.client(srv.user("root", "admin"))
    mine, theirs = new_app(alice, "mine"), new_app(bob, "theirs")
    assert bob.put(vanity(theirs), json={"path": "/team/a/"}).status_code == 200
    for path in ("/team/a/", "/team/", "/team/a/b/"):
        reply = alice.put(vanity(mine), json={"path": path})
        assert reply.status_code == 409, (path, reply.text)
        assert "another app" in reply.json()["error"]  # alice may not see bob's app
    forced = alice.put(vanity(mine), json={"path": "/team/a/", "force": True})
    assert forced.status_code == 409 and "may not change" in forced.json()["error"]
    assert alice.get(vanity(mine)).status_code == 404
    assert bob.get(vanity(theirs)).json()["path"] == "/team/a/"
    # an admin sees whose it is, and may move it with force
    reply = admin.put(vanity(mine), json={"path": "/team/a/"})
    assert reply.status_code == 409 and "'theirs'" in reply.json()["error"]
    moved = admin.put(vanity(mine), json={"path": "/team/a/", "force": True})
    assert moved.status_code == 200 and moved.json()["moved_from_app_id"] == theirs["id"]
    assert bob.get(vanity(theirs)).status_code == 404
    # beside it is fine: /team/b/ neither contains nor is inside /team/a/
    assert bob.put(vanity(theirs), json={"path": "/team/b/"}).status_code == 200
    assert bob.put(vanity(theirs), json={"path": "/team-a/"}).status_code == 200
    listed = admin.get("/__api__/v1/vanities").json()
    assert [(v["path"], v["app_id"]) for v in listed] == [
        ("/team-a/", theirs["id"]),
        ("/team/a/", mine["id"]),
    ]
    assert alice.get("/__api__/v1/vanities").status_code == 403  # admins list them all


def test_two_apps_asking_for_one_path_at_once_get_it_once(srv):
    alice_key = srv.user("alice", "publisher")
    apps = [new_app(srv.client(alice_key), f"app-{i}") for i in range(4)]
    statuses, start = [], threading.Barrier(len(apps))

    def claim(app):
        client = srv.client(alice_key)
        start.wait()
        statuses.append(client.put(vanity(app), json={"path": "/contested/"}).status_code)

    threads = [threading.Thread(target=claim, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200, 409, 409, 409]


def test_only_who_may_change_the_app_sets_it(srv):
    alice = srv.client(srv.user("alice", "publisher"))
    app = new_app(alice)
    viewer_key, other_key = srv.user("vera", "viewer"), srv.user("olga", "publisher")
    collaborator_key = srv.user("carl", "publisher")
    for key, role in ((viewer_key, "viewer"), (collaborator_key, "collaborator")):
        user_id = srv.client(key).get("/__api__/v1/user").json()["id"]
        alice.put(f"/__api__/v1/apps/{app['id']}/permissions/{user_id}", json={"role": role})
    assert alice.put(vanity(app), json={"path": "/parity/"}).status_code == 200
    vera, olga = srv.client(viewer_key), srv.client(other_key)
    assert vera.get(vanity(app)).json()["path"] == "/parity/"  # who sees the app sees it
    for client, status in ((vera, 403), (olga, 404)):  # olga does not even see the app
        assert client.put(vanity(app), json={"path": "/mine/"}).status_code == status
        assert client.delete(vanity(app)).status_code == status
    assert alice.get(vanity(app)).json()["path"] == "/parity/"
    carl = srv.client(collaborator_key)
    assert carl.put(vanity(app), json={"path": "/carls/"}).json()["path"] == "/carls/"


def test_the_vanity_path_survives_a_restart(srv):
    alice_key = srv.user("alice", "publisher")
    app = new_app(srv.client(alice_key))
    assert srv.client(alice_key).put(vanity(app), json={"path": "/kept/"}).status_code == 200
    srv.restart()
    alice = srv.client(alice_key)
    assert alice.get(vanity(app)).json()["path"] == "/kept/"
    assert alice.get(f"/__api__/v1/apps/{app['id']}").json()["vanity_path"] == "/kept/"
    other = new_app(alice, "other")
    assert alice.put(vanity(other), json={"path": "/kept/"}).status_code == 409


def test_every_vanity_route_needs_a_key(srv):
    anonymous, wrong = srv.client(None), srv.client("plk_not-a-key")
    for route in ROUTES:
        path = route.path.replace("{app}", "1")
        for method in route.methods - {"HEAD"}:
            for client in (anonymous, wrong):
                assert client.request(method, path).status_code == 401, (method, path)
        srv.forget_failed_authentications()


def test_the_servers_own_paths_are_reserved(srv):
    """Every path the server answers (API, dashboard, downloads) is out of a vanity's reach,
    and so are the apps' /content/ paths."""
    app = create_app(srv.server)
    assert isinstance(srv.server, Server)
    firsts = {route.path.split("/")[1] for route in app.routes if route.path != "/"}
    assert firsts >= {"__api__", "static", "favicon.ico"}
    for first in firsts | {"content"}:
        with pytest.raises(VanityError, match="is reserved"):
            normalise(first)


def test_plumbline_publish_sets_the_vanity_path_first(srv, tmp_path):
    from bundle_maker import app_folder

    from plumbline.platform.server.publish import Client, PublishError, publish

    client, said = Client(srv.url, srv.user("alice", "publisher")), []
    folder = app_folder(tmp_path / "parity-api")
    with pytest.raises(PublishError, match="reserved"):  # refused: nothing uploaded
        publish(client, folder, vanity="/__api__/mine/", say=said.append)
    app = client.call("GET", "/__api__/v1/apps/parity-api")
    assert client.call("GET", f"/__api__/v1/apps/{app['id']}/versions")["versions"] == []
    assert publish(client, folder, vanity="parity", say=said.append)
    assert "Vanity path: /parity/ (http://apps.example.com/parity/)" in said
    assert srv.backend.running["parity-api"].spec.ingress.path_aliases == ("/parity",)
    said.clear()
    assert publish(client, folder, vanity="/parity/", say=said.append)  # unchanged: no call
    assert not any(line.startswith("Vanity path") for line in said)
