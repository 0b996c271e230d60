"""rsconnect 0.8.29, unchanged, against plumbline server's Connect API (both databases).

The backend records what it is asked (the end-to-end test in test_server_local_e2e.py runs
the real local backend); this checks the protocol: rsconnect's calls, its task polling with
first_status, the messages an R user sees, a second deploy reusing the app, errors.
"""

from __future__ import annotations

import pytest
from bundle_maker import app_folder
from rsconnect_harness import deploy_api

pytestmark = pytest.mark.slow  # real R and rsconnect (scripts/install.sh installs it)


def test_rsconnect_deploys_and_redeploys(make_server, tmp_path):
    srv = make_server()
    key = srv.user("alice", "publisher")
    folder = app_folder(tmp_path / "parity", 1, {"data/lookup.csv": b"a,b\n1,2\n"})
    home = tmp_path / "home"

    first = deploy_api(home, srv.url, key, "alice", folder, "parity-api")
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    assert "[Connect] Extracting the bundle" in out
    assert "successfully deployed to" in out and "/content/parity-api/" in out
    record = srv.backend.deploys[-1]
    assert record.spec.name == "parity-api"
    assert b"hello v1" in record.files["plumber.R"]
    assert record.files["data/lookup.csv"] == b"a,b\n1,2\n"
    assert "manifest.json" in record.files  # rsconnect's own, with the packages
    assert (folder / "rsconnect").is_dir()  # rsconnect saved its deployment record

    app_folder(folder, 2)
    second = deploy_api(home, srv.url, key, "alice", folder, "parity-api")
    assert second.returncode == 0, second.stdout + second.stderr
    assert b"hello v2" in srv.backend.deploys[-1].files["plumber.R"]
    assert "rsconnect" not in srv.backend.deploys[-1].files  # not part of the bundle
    admin = srv.client(srv.user("root", "admin"))
    apps = admin.get("/__api__/v1/apps").json()["apps"]
    assert len(apps) == 1  # the same app, a new version
    versions = admin.get(f"/__api__/v1/apps/{apps[0]['id']}/versions").json()["versions"]
    assert [v["active"] for v in versions] == [True, False]
    assert "plumber" in versions[0]["packages"]  # from rsconnect's manifest.json


def test_rsconnect_shows_why_a_deploy_failed(make_server, tmp_path):
    srv = make_server()
    key = srv.user("alice", "publisher")
    folder = app_folder(tmp_path / "broken", 1, {"helpers.R": b"f <- function( {\n"})
    failed = deploy_api(tmp_path / "home", srv.url, key, "alice", folder, "broken-api")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 3, out
    assert "R syntax error: helpers.R:1:" in out and "deployment failed" in out
    assert srv.backend.deploys == []


def test_rsconnect_with_a_viewer_key_is_refused(make_server, tmp_path):
    srv = make_server()
    key = srv.user("vera", "viewer")
    folder = app_folder(tmp_path / "app", 1)
    refused = deploy_api(tmp_path / "home", srv.url, key, "vera", folder, "viewer-api")
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "HTTP 403" in out and "publisher role" in out


def test_connect_api_user_with_a_bad_key_fails(make_server, tmp_path):
    srv = make_server()
    folder = app_folder(tmp_path / "app", 1)
    refused = deploy_api(tmp_path / "home", srv.url, "plk_wrong", "alice", folder, "x-api")
    assert refused.returncode != 0 and "HTTP 401" in refused.stdout + refused.stderr
