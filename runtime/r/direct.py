"""The worker's side of runtime/r/direct.R: route a request and parse its query as plumber would.

A worker loads the app, then direct.R describes plumber's endpoints (in plumber's order: verbs,
path regex, whether the endpoint can be called directly, the function's argument names).
For each request the worker asks DirectRoutes.plan(): either a DirectCall (endpoint index,
query arguments, path values) for plumbline_direct(), or None, and the request takes
plumber's pipeline (plumbline_handle) as before. None whenever plumber's result cannot be
reproduced here exactly: non-ASCII paths or queries, percent-escapes that decode to
non-ASCII or NUL bytes (plumber warns or fails there), cookies (plumber parses them and may
fail), more than 150 query keys (plumber then orders them differently), or a path regex with
anything beyond plumber's own type patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# plumber's path-parameter patterns (apiTypesInfo: regex and regexArray), the only regex
# syntax a path may contain for Python's re and ICU (plumber's stringi) to agree on it.
_TYPE_PATTERNS = (
    "(?:(?:[01tfTF]|true|false|TRUE|FALSE),?)+",
    "[01tfTF]|true|false|TRUE|FALSE",
    "(?:(?:-?\\d*\\.?\\d+),?)+",
    "-?\\d*\\.?\\d+",
    "(?:(?:-?\\d+),?)+",
    "-?\\d+",
    "(?:(?:[^/]+),?)+",
    "[^/]+",
)
# What is left of a path regex once those are removed: literal path characters ("." is any
# character in both engines), the anchors and the capture groups around the patterns.
_PLAIN_REGEX = re.compile(r"\^[A-Za-z0-9/_\-.~()]*\$")
_HEX = re.compile(r"[0-9A-Fa-f]{2}")
_MAX_QUERY_KEYS = 150  # beyond it plumber's combine_keys() sorts the keys
# Routes a worker remembers (method and path -> endpoint and path values): the endpoints never
# change in a worker's life, so a repeated path skips the regex scan. Bounded in number and
# in path length, as paths with values in them are as many and as long as clients make up.
_ROUTES_REMEMBERED = 4096
_LONGEST_PATH_REMEMBERED = 256


@dataclass(frozen=True)
class DirectCall:
    index: int  # 1-based, as R counts plumber's endpoints
    args: list[tuple[str, list[str]]]  # query arguments the function takes, in plumber's order
    path_values: tuple[str, ...]


@dataclass(frozen=True)
class _Endpoint:
    index: int
    verbs: frozenset[str]
    regex: re.Pattern
    params: int
    direct: bool
    fargs: frozenset[str]


class DirectRoutes:
    def __init__(self, rows: list[dict]):
        """rows: direct_prepare()'s table (verbs, regex, params, direct, fargs)."""
        endpoints: list[_Endpoint] = []
        for index, row in enumerate(rows, start=1):
            regex = _compile(row["regex"], row["params"])
            if regex is None:  # Python might route differently: let R route everything
                endpoints = []
                break
            endpoints.append(
                _Endpoint(
                    index,
                    frozenset(row["verbs"]),
                    regex,
                    row["params"],
                    bool(row["direct"]),
                    frozenset(row["fargs"]),
                )
            )
        self._endpoints = tuple(endpoints)
        self.enabled = any(ep.direct for ep in endpoints)
        self._routed: dict[tuple[str, str], tuple[_Endpoint, tuple[str, ...]] | None] = {}

    def plan(self, method: str, path: str, query: str, cookie: bool) -> DirectCall | None:
        """`cookie`: whether the request has a Cookie header."""
        key = (method, path)
        try:
            routed = self._routed[key]
        except KeyError:
            routed = self._route(method, path)
            if len(path) <= _LONGEST_PATH_REMEMBERED:
                if len(self._routed) >= _ROUTES_REMEMBERED:
                    self._routed.clear()
                self._routed[key] = routed
        if routed is None:
            return None
        ep, path_values = routed
        if cookie:
            return None
        parsed = parse_query(query)
        if parsed is None:
            return None
        args = [(name, values) for name, values in parsed.items() if name in ep.fargs]
        return DirectCall(ep.index, args, path_values)

    def _route(self, method: str, path: str) -> tuple[_Endpoint, tuple[str, ...]] | None:
        """plumber's endpoint for this request and the path's values, if it can be called
        directly; None: plumber's pipeline answers (404, 405, mounts, redirects...)."""
        if not path.isascii():
            return None
        for ep in self._endpoints:
            if method not in ep.verbs:
                continue
            match = ep.regex.match(path)
            if match is None:
                continue
            if not ep.direct:
                return None
            return ep, match.groups() if ep.params else ()
        return None


def parse_query(query: str) -> dict[str, list[str]] | None:
    """plumber's parseQS() for an ASCII query string (without the "?"); None: let R do it."""
    if not query:
        return {}
    if not query.isascii():
        return None
    found: dict[str, list[str]] = {}
    for pair in query.replace("+", " ").split("&"):
        # plumber decodes every part before it drops the pairs that are not key=value: a
        # %00 anywhere fails the request.
        parts = [_decode(part) for part in pair.split("=") if part]
        if None in parts:
            return None
        if len(parts) == 2:
            key, value = parts
            assert key is not None and value is not None
            found.setdefault(key, []).append(value)
    if len(found) > _MAX_QUERY_KEYS:
        return None
    return found


def _decode(text: str) -> str | None:
    """httpuv's decodeURIComponent(); None for a byte it would mark UTF-8 or refuse.

    Its exact rules: "%" with two hex digits is decoded; "%" with anything else is kept
    with the two characters after it, which are skipped (so "%%41" stays "%%41"); in the
    last two characters nothing is decoded. A decoded NUL fails the request, a decoded
    byte over 0x7F makes the string UTF-8: both are left to R.
    """
    if "%" not in text:
        return text
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "%" or i > n - 3:
            out.append(ch)
            i += 1
            continue
        pair = text[i + 1 : i + 3]
        if _HEX.fullmatch(pair):
            code = int(pair, 16)
            if code == 0 or code > 0x7F:
                return None
            out.append(chr(code))
        else:
            out.append("%" + pair)
        i += 3
    return "".join(out)


def _compile(regex: str, params: int) -> re.Pattern | None:
    plain = regex
    for pattern in _TYPE_PATTERNS:
        plain = plain.replace(pattern, "")
    if not _PLAIN_REGEX.fullmatch(plain):
        return None
    try:
        compiled = re.compile(regex)
    except re.error:
        return None
    return compiled if compiled.groups == params else None
