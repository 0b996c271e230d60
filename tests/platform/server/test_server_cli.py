"""`plumbline server bootstrap` and `plumbline publish`, run as a user runs them."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from bundle_maker import app_folder
from support import PLUMBLINE

pytestmark = pytest.mark.slow


def run(*args, env=None, timeout=300):
    return subprocess.run(
        [*PLUMBLINE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_bootstrap_prints_the_first_admin_key_once(make_server, tmp_path, database_url):
    data = tmp_path / "data"
    first = run("server", "bootstrap", "--data-dir", str(data), "--database-url", database_url)
    assert first.returncode == 0, first.stderr
    key = re.search(r"^\s+(plk_\S+)$", first.stdout, re.M).group(1)
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    again = run("server", "bootstrap", "--data-dir", str(data), "--database-url", database_url)
    assert again.returncode == 1 and "an admin exists already" in again.stderr
    assert key not in again.stdout + again.stderr
    srv = make_server()  # the same data folder and database
    me = srv.client(key).get("/__api__/users/current").json()
    assert me["username"] == "admin" and me["user_role"] == "admin"
    if database_url.startswith("sqlite"):
        assert key.encode() not in (tmp_path / "server.db").read_bytes()


def test_publish_from_the_shell(make_server, tmp_path):
    srv = make_server()
    key = srv.user("alice", "publisher")
    folder = app_folder(tmp_path / "my_api", 1, {"model/weights.bin": os.urandom(4096)})
    (folder / "rsconnect").mkdir()
    (folder / "rsconnect" / "old.dcf").write_text("name: x\n")
    env = {"PLUMBLINE_API_KEY": key}
    done = run("publish", str(folder), "--server", srv.url, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Created my_api" in done.stdout and "Published: " in done.stdout
    assert "/content/my-api/" in done.stdout and "  Extracting the bundle" in done.stdout
    record = srv.backend.deploys[-1]
    assert record.files["model/weights.bin"] == (folder / "model/weights.bin").read_bytes()
    assert not any(name.startswith("rsconnect") for name in record.files)

    app_folder(folder, 2)
    again = run("publish", str(folder), "--server", srv.url + "/__api__", env=env)
    assert again.returncode == 0 and "Updating my_api" in again.stdout
    assert b"hello v2" in srv.backend.deploys[-1].files["plumber.R"]

    (folder / "plumber.R").write_text("#* @get /x\nfunction( {\n")
    broken = run("publish", str(folder), "--server", srv.url, env=env)
    assert broken.returncode == 1 and "R syntax error" in broken.stdout
    assert b"hello v2" in srv.backend.deploys[-1].files["plumber.R"]

    nokey = run("publish", str(folder), "--server", srv.url, env={"PLUMBLINE_API_KEY": ""})
    assert nokey.returncode == 2 and "API key" in nokey.stderr
    badkey = run("publish", str(folder), "--server", srv.url, env={"PLUMBLINE_API_KEY": "plk_x"})
    assert badkey.returncode == 1 and "HTTP 401" in badkey.stderr
