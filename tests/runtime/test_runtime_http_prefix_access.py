"""`plumbline serve --root-path` and `--access keys`, with real R and real requests.

Behind the server's ingress an app is reached as /content/<name>/...: the unchanged
plumber.R must answer there (prefix removed, whether the proxy stripped it or not), its
OpenAPI document must name the prefix, and Swagger UI's redirect must stay under it. A
key-only app refuses requests without an allowed key before anything reaches R, and
follows its keys file as the server rewrites it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from urllib.parse import urljoin

import pytest
from test_runtime_http_serve import serve

pytestmark = pytest.mark.slow

PREFIX = "/content/parity-api"
KEY = "plk_" + "k" * 40
OTHER = "plk_" + "o" * 40


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_root_path_prefix_is_removed_and_documented(tmp_path):
    with serve(tmp_path, "--workers", "1", "--root-path", PREFIX + "/") as app:
        for path in (f"{PREFIX}/parity?int=7", "/parity?int=7"):  # carried, or stripped
            status, headers, body = app.get(path)
            assert (status, body) == (200, b"odd"), path
        status, _, body = app.get(f"{PREFIX}/openapi.json")
        document = json.loads(body)
        assert status == 200 and "/parity" in document["paths"]
        # Swagger UI resolves the server URL against the document's, and so calls through
        # the prefix the page came by; the redirect stays under it
        assert urljoin(f"{PREFIX}/openapi.json", document["servers"][0]["url"]) == PREFIX + "/"
        status, headers, _ = app.get(f"{PREFIX}/__docs__")
        assert status == 307
        assert urljoin(f"{PREFIX}/__docs__", headers["location"]) == f"{PREFIX}/__docs__/"
        status, headers, body = app.get(f"{PREFIX}/__docs__/")
        assert status == 200 and b"swagger-ui" in body
        # a path that merely starts with the prefix's letters is not under it
        assert app.get(f"{PREFIX}x/parity?int=7")[0] == 404


def test_root_path_aliases_are_removed_too(tmp_path):
    """A vanity path: the Kubernetes Ingress passes /parity-vanity/parity on unchanged."""
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--root-path",
        PREFIX,
        "--root-path-aliases",
        "/parity-vanity/,/teams/a",
    ) as app:
        for path in (
            f"{PREFIX}/parity?int=7",
            "/parity-vanity/parity?int=7",
            "/teams/a/parity?int=7",
            "/parity?int=7",
        ):
            assert app.get(path)[::2] == (200, b"odd"), path
        for prefix in ("/parity-vanity", "/teams/a", PREFIX):
            status, _, body = app.get(f"{prefix}/openapi.json")
            server_url = json.loads(body)["servers"][0]["url"]
            assert status == 200 and urljoin(f"{prefix}/openapi.json", server_url) == prefix + "/"
            status, headers, _ = app.get(f"{prefix}/__docs__")
            assert status == 307
            assert urljoin(f"{prefix}/__docs__", headers["location"]) == f"{prefix}/__docs__/"
        assert app.get("/parity-vanityx/parity?int=7")[0] == 404
        assert app.get("/teams/parity?int=7")[0] == 404


def test_bad_root_path_is_refused_before_serving(tmp_path):
    import subprocess
    import sys

    from test_runtime_http_serve import EXAMPLE

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "plumbline",
            "serve",
            str(EXAMPLE),
            "--root-path",
            "content/no-slash",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "root-path" in proc.stderr


def wait_until_refused(app, key: str) -> None:
    """The runtime looks at its keys file at most once a second: wait for it to see a change."""
    deadline = time.monotonic() + 10
    while app.get("/parity?int=2", headers={"Authorization": f"Key {key}"})[0] != 403:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)


def test_key_only_app_checks_keys_from_env_and_file(tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(digest(KEY) + "\n")
    with serve(
        tmp_path, "--workers", "1", "--access", "keys", "--access-keys-file", str(keys_file)
    ) as app:
        status, headers, body = app.get("/parity?int=2")
        assert status == 401 and headers["www-authenticate"] == "Key"
        assert "Authorization: Key" in json.loads(body)["error"]
        assert app.get("/parity?int=2", headers={"Authorization": f"Key {OTHER}"})[0] == 403
        status, _, body = app.get("/parity?int=2", headers={"Authorization": f"Key {KEY}"})
        assert (status, body) == (200, b"even")
        assert app.get("/readyz")[0] == 200  # probes need no key
        assert app.get("/openapi.json")[0] == 401

        # The server revokes KEY and grants OTHER by rewriting the file: no restart.
        keys_file.write_text(digest(OTHER) + "\n")
        os.utime(keys_file, (time.time() + 5, time.time() + 5))
        wait_until_refused(app, KEY)
        assert app.get("/parity?int=2", headers={"Authorization": f"Key {OTHER}"})[0] == 200


def test_key_only_app_follows_a_kubernetes_secret_volume(tmp_path):
    """On Kubernetes the digests are a Secret's file. The kubelet updates a Secret volume as
    its atomic writer does: the new files go into a fresh hidden folder, then the `..data`
    link is swapped to it by a rename; the file the runtime reads is a link through `..data`.
    Nothing is rewritten in place and the two versions may have the same size."""
    volume = tmp_path / "access"
    volume.mkdir()

    def kubelet_writes(digests: str, version: int) -> None:
        folder = volume / f"..2026_12_01_00_00_0{version}.{version}"
        folder.mkdir()
        (folder / "access-keys").write_text(digests)
        (volume / "..data_tmp").symlink_to(folder.name)
        os.replace(volume / "..data_tmp", volume / "..data")
        if not (volume / "access-keys").is_symlink():
            (volume / "access-keys").symlink_to("..data/access-keys")

    kubelet_writes(digest(KEY) + "\n", 1)
    keys_file = str(volume / "access-keys")
    with serve(
        tmp_path, "--workers", "1", "--access", "keys", "--access-keys-file", keys_file
    ) as app:
        assert app.get("/parity?int=2", headers={"Authorization": f"Key {KEY}"})[0] == 200
        assert app.get("/parity?int=2", headers={"Authorization": f"Key {OTHER}"})[0] == 403
        first = os.stat(volume / "access-keys")
        kubelet_writes(digest(OTHER) + "\n", 2)
        # Same size and, here, the same mtime: the new inode is what tells them apart.
        os.utime(volume / "access-keys", ns=(first.st_atime_ns, first.st_mtime_ns))
        wait_until_refused(app, KEY)
        assert app.get("/parity?int=2", headers={"Authorization": f"Key {OTHER}"})[0] == 200


def test_key_never_reaches_r(tmp_path):
    app_dir = tmp_path / "echo"
    app_dir.mkdir()
    (app_dir / "plumber.R").write_text(
        "#* @serializer text\n#* @get /auth\nfunction(req) {\n"
        '  if (is.null(req$HTTP_AUTHORIZATION)) "none" else req$HTTP_AUTHORIZATION\n}\n'
    )
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--access",
        "keys",
        "--access-keys",
        digest(KEY),
        plumber_file=app_dir / "plumber.R",
    ) as app:
        status, _, body = app.get("/auth", headers={"Authorization": f"Key {KEY}"})
        assert (status, body) == (200, b"none")


def test_metrics_key_reads_metrics_and_nothing_else(tmp_path):
    scraper = "plk_" + "s" * 40
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--access",
        "keys",
        "--access-keys",
        digest(KEY),
        "--metrics-keys",
        digest(scraper),
        "--root-path",
        PREFIX,
    ) as app:
        assert app.get("/metrics")[0] == 401
        for header in ({"X-Plumbline-Metrics-Key": scraper}, {"Authorization": f"Key {scraper}"}):
            status, _, body = app.get("/metrics", headers=header)
            assert status == 200 and b"plumbline_requests_total" in body, header
        # the scraper's key opens nothing but /metrics
        assert app.get("/parity?int=2", headers={"Authorization": f"Key {scraper}"})[0] == 403
        assert app.get("/parity?int=2", headers={"X-Plumbline-Metrics-Key": scraper})[0] == 401
        assert app.get("/metrics", headers={"X-Plumbline-Metrics-Key": OTHER})[0] == 401
        assert app.get("/metrics", headers={"Authorization": f"Key {KEY}"})[0] == 200

        # Requests through the prefix and with a key are counted under their route
        for path in ("/parity?int=2", f"{PREFIX}/parity?int=3"):
            assert app.get(path, headers={"Authorization": f"Key {KEY}"})[0] == 200
        body = app.get("/metrics", headers={"X-Plumbline-Metrics-Key": scraper})[2].decode()
        assert 'route="/parity",status="200"} 2.0' in body, body


def test_public_app_with_metrics_keys_hides_only_metrics(tmp_path):
    scraper = "plk_" + "s" * 40
    with serve(tmp_path, "--workers", "1", "--metrics-keys", digest(scraper)) as app:
        # the app itself and its probes stay public
        assert app.get("/parity?int=2")[0] == 200
        assert app.get("/readyz")[0] == 200
        status, headers, body = app.get("/metrics")
        assert status == 401 and headers.get("www-authenticate") == "Key", (status, body)
        assert b"plumbline_requests_total" not in body
        for header in (
            {"X-Plumbline-Metrics-Key": OTHER},
            {"Authorization": f"Key {OTHER}"},
        ):
            assert app.get("/metrics", headers=header)[0] == 401
            assert app.get("/metrics", method="HEAD", headers=header)[0] == 401
        for header in ({"X-Plumbline-Metrics-Key": scraper}, {"Authorization": f"Key {scraper}"}):
            status, _, body = app.get("/metrics", headers=header)
            assert status == 200 and b'route="/parity",status="200"} 1.0' in body, header
