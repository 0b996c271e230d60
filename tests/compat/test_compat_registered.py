"""Serializers and parsers a plumber.R registers itself (register_serializer() and
register_parser() in top-level code, in a `#* @plumber` block and in a sourced file) and
names in `@serializer` / `@parser`: plumber serves the file, so must plumbline (its own
annotation reader cannot know these names; plumber's router, reported by the workers, does)."""

from __future__ import annotations

import pytest

from compat_harness import APPS

pytestmark = pytest.mark.slow
APP = APPS / "registered"  # served by the `pair` fixture (conftest.py), 2 workers


@pytest.mark.parametrize(
    "path, status",
    [
        ("/shout", 200),
        ("/shout?word=quiet", 200),
        ("/shout-typed", 200),
        ("/wrapped", 200),
        ("/plain", 200),
        ("/exclaim", 200),
        ("/nope", 404),
    ],
)
def test_registered_serializers(pair, path, status):
    pair.compare("GET", path, status=status)


@pytest.mark.parametrize("content_type", ["text/x-upper", "application/json", "text/plain"])
def test_registered_parser(pair, content_type):
    pair.compare(
        "POST", "/upper", status=200, content=b'"abc"', headers={"content-type": content_type}
    )


def test_wrong_verb(pair):
    pair.compare("POST", "/shout", status=405, present=("allow",))
