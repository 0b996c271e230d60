"""Routes added in R code (tests/compat/apps/in-code/plumber.R): pr_get(), pr_post(),
pr_handle(), routers mounted with pr_mount() (nested, and one read from another annotated
file), pr_static() and a hook, all in a `#* @plumber` block. plumber serves them; plumbline
must too, with the same answers for the paths around the mounts."""

from __future__ import annotations

import json

import pytest

from compat_harness import APPS

pytestmark = pytest.mark.slow
APP = APPS / "in-code"  # served by the `pair` fixture (conftest.py), 2 workers
HOOKED = ("x-hooked",)
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "path, status",
    [
        ("/annotated", 200),
        ("/after-the-block", 200),
        ("/added", 200),
        ("/added?n=5", 200),
        ("/typed/2.5", 200),
        ("/typed/x", 404),
        ("/items/7", 200),
        ("/items/x", 404),
        ("/items/search?q=plumber", 200),
        ("/items/deeper/leaf/green", 200),
        ("/items/deeper/leaf/", 404),
        ("/items/nope", 404),
        ("/items", 404),
        ("/items/", 404),
        ("/other/hello/you", 200),
        ("/other/nope", 404),
        ("/static/s.txt", 200),
        ("/static/missing", 404),
        ("/static", 404),
        ("/nope", 404),
        ("/alias?n=2", 200),
    ],
)
def test_get(pair, path, status):
    pair.compare("GET", path, status=status, present=HOOKED)


# R answers all of these (the router has a hook): plumber's 405 with its empty Allow, and
# its 400 for a POST to a static folder.
@pytest.mark.parametrize(
    "method, path, status",
    [
        ("POST", "/added", 200),
        ("POST", "/items/", 200),
        ("POST", "/other/echo", 200),
        ("PUT", "/handled", 200),
        ("DELETE", "/handled", 200),
        ("GET", "/handled", 405),
        ("DELETE", "/items/7", 404),
        ("POST", "/annotated", 405),
        ("POST", "/static/s.txt", 400),
    ],
)
def test_other_verbs(pair, method, path, status):
    pair.compare(
        method,
        path,
        status=status,
        content=json.dumps({"a": 1}).encode(),
        headers=JSON,
        present=HOOKED,
    )
