"""The malformed-JSON check: 400 only for bodies jsonlite (plumber's parser) refuses too."""

from __future__ import annotations

import pytest

from plumbline.runtime.front.proxy import _json_problem


@pytest.mark.parametrize(
    "body",
    [
        b'{"v": 1}',
        b"[1, 2.5e3, null, true]",
        b'"text"',
        b'{"v": "a//b /* not a comment */"}',
        b'{"v": 1 /* a comment */}',
        b'{"v": 1} // a comment',
        b'\xef\xbb\xbf{"v": 1}',
        b'{"q": "\\" // quoted"} // real',
    ],
)
def test_what_jsonlite_parses_passes(body):
    assert _json_problem(body) is None


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b'{"v": 1,}', "line 1 column 9"),
        (b"[NaN]", "NaN"),
        (b"[Infinity]", "Infinity"),
        (b'{"v": 1} trailing', "Extra data"),
        (b"   ", "Expecting value"),
        (b'{"v": "a\x01b"}', "control character"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"v": 1 /* unclosed', "delimiter"),
    ],
)
def test_what_jsonlite_refuses_is_named(body, fragment):
    problem = _json_problem(body)
    assert problem and fragment in problem
