"""@filter ordering and @preempt (tests/compat/apps/filters/plumber.R): filters run in file
order after plumber's defaults, a preempting endpoint runs just before its filter, a filter
answers itself (also for paths no endpoint declares, with its own @serializer). R sees every
request such a file gets, and plumbline must still label and route as plumber does."""

from __future__ import annotations

import pytest

from compat_harness import APPS

pytestmark = pytest.mark.slow
APP = APPS / "filters"  # served by the `pair` fixture (conftest.py), 2 workers
HEADERS = ("x-first",)  # the first filter sets it: present unless preempted before it


@pytest.mark.parametrize(
    "path, status, present",
    [
        ("/trail", 200, HEADERS),
        ("/pre-second", 200, HEADERS),
        ("/pre-first", 200, ()),
        ("/pre-very-first", 200, ()),
        ("/pre-query?x=1&y=2", 200, ()),
        ("/blocked", 403, HEADERS),
        ("/filter-only", 403, HEADERS),
        ("/nope", 404, HEADERS),
        ("/trail?deny", 200, HEADERS),
    ],
)
def test_filters_in_order_and_preempt(pair, path, status, present):
    ex = pair.compare("GET", path, status=status, present=present)
    if not present:
        assert "x-first" not in ex.plumbline.headers  # the first filter never ran


def test_a_filter_can_refuse_before_the_endpoint(pair):
    pair.compare("GET", "/trail", status=401, headers={"x-deny": "1"}, present=HEADERS)
    pair.compare("GET", "/pre-second", status=200, headers={"x-deny": "1"}, present=HEADERS)


# The body is parsed at the endpoint, after the filters: a malformed one is plumber's 500
# there, and never reached when a filter refuses first.
@pytest.mark.parametrize("body, status", [(b'{"a": 1}', 200), (b'{"broken', 500)])
def test_bodies_are_parsed_after_the_filters(pair, body, status):
    pair.compare(
        "POST",
        "/post-trail",
        status=status,
        content=body,
        headers={"content-type": "application/json"},
        present=HEADERS,
    )
    pair.compare(
        "POST",
        "/post-trail",
        status=401,
        content=body,
        headers={"content-type": "application/json", "x-deny": "1"},
        present=HEADERS,
    )


def test_wrong_verb_goes_through_the_filters(pair):
    pair.compare("POST", "/trail", status=405, present=(*HEADERS, "allow"))
    pair.compare("GET", "/post-trail", status=405, present=(*HEADERS, "allow"))
