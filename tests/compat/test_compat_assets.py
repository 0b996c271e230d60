"""@assets with and without a mount path (tests/compat/apps/assets/plumber.R), served by
plumbline from Python: the folder a path reaches, the file, its Content-Type, and what
plumber answers for paths around the mounts."""

from __future__ import annotations

import pytest

from compat_harness import APPS, deliberate

pytestmark = pytest.mark.slow
APP = APPS / "assets"  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.mark.parametrize(
    "path, status",
    [
        ("/public/a.txt", 200),
        ("/public/index.html", 200),
        ("/public/", 200),
        ("/public/sub/b.txt", 200),
        ("/public/missing.txt", 404),
        ("/public/endpoint", 200),
        ("/public", 404),
        ("/publicity", 404),
        ("/files/data.csv", 200),
        ("/files/k.json", 200),
        ("/files/upload", 404),
        ("/files", 200),
        ("/files/", 404),
        ("/more/m.txt", 200),
        ("/more", 404),
        ("/more/missing", 404),
        ("/public/a%2etxt", 200),
        ("/public/%61.txt", 200),
        ("/nope", 404),
    ],
)
def test_get(pair, path, status):
    pair.compare("GET", path, status=status)


def test_endpoint_under_a_mount_takes_its_verb(pair):
    pair.compare("POST", "/files/upload", status=200)


@pytest.mark.parametrize("path", ["/public/sub/", "/public/sub"])
def test_a_folder_inside_the_folder(pair, path):
    ex = pair.send("GET", path)
    # plumber reads the directory as if it were a file and fails
    assert ex.plumber.status_code == 500, ex.describe()
    deliberate("a folder inside an @assets folder serves its index.html")
    assert ex.plumbline.status_code == 200, ex.describe()
    assert ex.plumbline.content == b"<p>sub index</p>\n"
    assert ex.plumbline.headers["content-type"] == "text/html; charset=UTF-8"
