"""The access log's line, built directly for speed (runtime/logs.py access_line()), is the
line every other log line's encoder would write for the same fields, whatever a client put
in its path or request id."""

from __future__ import annotations

import json

import pytest

from plumbline.runtime import logs

FIELDS = [
    ("abc", "GET", "/parity", "/parity", 200, 0.001234, "127.0.0.1"),
    ('a"b\\c', "POST", '/we"ird\\path', "/items/<id:int>", 500, 12.5, "::1"),
    ("id", "GET", "/caf\u00e9/\U0001f600/\x00\x1f\x7f\u2028", "(unmatched)", 499, 1e-06, None),
    ("x" * 200, "PURGE", "/", "/", 503, 0.0, "10.0.0.1"),
    ("id", "GET", "/p", "/p", 204, 3.0, ""),
]


@pytest.mark.parametrize("fields", FIELDS)
def test_access_line_is_the_common_encoding_of_the_same_entry(fields):
    request_id, method, path, route, status, duration_s, remote = fields
    stamp = "2026-12-01T12:00:00.123Z"
    expected = logs.encode(
        logs.entry(
            stamp,
            "info",
            "plumbline.access",
            None,
            {
                "request_id": request_id,
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_s": duration_s,
                "remote": remote,
            },
        )
    )
    line = logs.access_line(stamp, *fields)
    assert line == expected
    assert json.loads(line)["path"] == path
