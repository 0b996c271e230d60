"""@filter ordering and @preempt (tests/compat/apps/filters/plumber.R): filters run in file
order after plumber's defaults, a preempting endpoint runs just before its filter, a filter
answers itself (also for paths no endpoint declares, with its own @serializer). R sees every
request such a file gets, and plumbline must still label and route as plumber does."""
from __future__ import annotations

import pytest

from compat_harness import APPS

pytestmark = pytest.mark.slow
APP = APPS / "filters"  # served by the `pair` fixture (conftest.py), 2 workers
HEADERS = ("x-first",)


@pytest.mark.parametrize("path", [
    "/trail", "/pre-second", "/pre-first", "/pre-very-first", "/pre-query?x=1&y=2",
    "/blocked", "/filter-only", "/nope", "/trail?deny",
])
def test_filters_in_order_and_preempt(pair, path):
    pair.compare("GET", path, same_headers=HEADERS)


def test_a_filter_can_refuse_before_the_endpoint(pair):
    ex = pair.compare("GET", "/trail", headers={"x-deny": "1"}, same_headers=HEADERS)
    assert ex.plumbline.status_code == 401
    pair.compare("GET", "/pre-second", headers={"x-deny": "1"}, same_headers=HEADERS)


@pytest.mark.parametrize("body", [b'{"a": 1}', b'{"broken'])
def test_bodies_are_parsed_after_the_filters(pair, body):
    pair.compare("POST", "/post-trail", content=body,
                 headers={"content-type": "application/json"}, same_headers=HEADERS)
    pair.compare("POST", "/post-trail", content=body,
                 headers={"content-type": "application/json", "x-deny": "1"},
                 same_headers=HEADERS)


def test_wrong_verb_goes_through_the_filters(pair):
    pair.compare("POST", "/trail", same_headers=HEADERS)
    pair.compare("GET", "/post-trail", same_headers=HEADERS)
