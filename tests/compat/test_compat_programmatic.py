"""A plumber.R that changes its router in R code (`#* @plumber` block: pr_get, pr_filter,
pr_hook, pr_set_404, pr_set_error). plumber's own loader applies the block in every worker,
so the routes, filters, hooks and handlers it adds must behave as under plumber even though
plumbline's Python side only reads annotations."""

from __future__ import annotations

import pytest

from compat_harness import APPS

pytestmark = pytest.mark.slow
APP = APPS / "programmatic"  # served by the `pair` fixture (conftest.py), 2 workers
ADDED_HEADERS = ("x-filtered", "x-hooked")


def test_annotated_route_runs_filter_and_hook(pair):
    pair.compare("GET", "/annotated", status=200, present=ADDED_HEADERS)


def test_route_added_in_r(pair):
    pair.compare("GET", "/added", status=200, present=ADDED_HEADERS)


def test_custom_404_handler(pair):
    pair.compare("GET", "/nope", status=404, present=ADDED_HEADERS)


def test_custom_error_handler(pair):
    pair.compare("GET", "/boom", status=500, present=ADDED_HEADERS)


@pytest.mark.parametrize("path", ["/annotated", "/added"])
def test_wrong_method_goes_through_the_filter(pair, path):
    # R answers: plumber's 405, with its empty Allow header
    ex = pair.compare("POST", path, status=405, present=(*ADDED_HEADERS, "allow"))
    assert ex.plumbline.headers["allow"] == ""
