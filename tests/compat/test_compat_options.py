"""plumber options a plumber.R sets for itself (`options(plumber.trailingSlash = TRUE,
plumber.methodNotAllowed = FALSE, plumber.maxRequestSize = 100)`): plumber then redirects
`/items` to `/items/`, answers a wrong verb with 404 and refuses bodies over 100 bytes.
plumbline loads the file in each worker, so the options must hold there too."""

from __future__ import annotations

import pytest

from compat_harness import APPS

pytestmark = pytest.mark.slow
APP = APPS / "options"  # served by the `pair` fixture (conftest.py), 2 workers


def test_trailing_slash_redirect(pair):
    pair.compare("GET", "/items?x=1", status=307, present=("location",))


def test_route_with_the_slash(pair):
    pair.compare("GET", "/items/", status=200)


def test_wrong_verb_is_404_when_method_not_allowed_is_off(pair):
    pair.compare("GET", "/only-post", status=404)


def test_max_request_size(pair):
    pair.compare("POST", "/only-post", status=200, content=b"x" * 50)
    pair.compare("POST", "/only-post", status=413, content=b"x" * 200)
