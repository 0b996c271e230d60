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


@pytest.mark.parametrize("path", [
    "/annotated", "/after-the-block", "/added", "/added?n=5", "/typed/2.5", "/typed/x",
    "/items/7", "/items/x", "/items/search?q=plumber", "/items/deeper/leaf/green",
    "/items/deeper/leaf/", "/items/nope", "/items", "/items/", "/other/hello/you",
    "/other/nope", "/static/s.txt", "/static/missing", "/static", "/nope", "/alias?n=2",
])
def test_get(pair, path):
    pair.compare("GET", path, same_headers=HOOKED)


@pytest.mark.parametrize("method, path", [
    ("POST", "/added"), ("POST", "/items/"), ("POST", "/other/echo"), ("PUT", "/handled"),
    ("DELETE", "/handled"), ("GET", "/handled"), ("DELETE", "/items/7"), ("POST", "/annotated"),
    ("POST", "/static/s.txt"),
])
def test_other_verbs(pair, method, path):
    pair.compare(method, path, content=json.dumps({"a": 1}).encode(), headers=JSON,
                 same_headers=HOOKED)
