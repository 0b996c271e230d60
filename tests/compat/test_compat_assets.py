"""@assets with and without a mount path (tests/compat/apps/assets/plumber.R), served by
plumbline from Python: the folder a path reaches, the file, its Content-Type, and what
plumber answers for paths around the mounts."""
from __future__ import annotations

import pytest

from compat_harness import APPS, deliberate

pytestmark = pytest.mark.slow
APP = APPS / "assets"  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.mark.parametrize("path", [
    "/public/a.txt", "/public/index.html", "/public/", "/public/sub/b.txt",
    "/public/missing.txt", "/public/endpoint", "/public", "/publicity",
    "/files/data.csv", "/files/k.json", "/files/upload", "/files", "/files/",
    "/more/m.txt", "/more", "/more/missing", "/public/a%2etxt", "/public/%61.txt",
    "/nope",
])
def test_get(pair, path):
    pair.compare("GET", path)


def test_endpoint_under_a_mount_takes_its_verb(pair):
    pair.compare("POST", "/files/upload")


@pytest.mark.parametrize("path", ["/public/sub/", "/public/sub"])
def test_a_folder_inside_the_folder(pair, path):
    ex = pair.send("GET", path)
    # plumber reads the directory as if it were a file and fails
    assert ex.plumber.status_code == 500, ex.describe()
    deliberate("a folder inside an @assets folder serves its index.html")
    assert ex.plumbline.status_code == 200, ex.describe()
    assert ex.plumbline.content == b"<p>sub index</p>\n"
    assert ex.plumbline.headers["content-type"] == "text/html; charset=UTF-8"
