"""Match a request the way plumber's router would, cheaply, from plumber's own route table.

plumber's Plumber$route() tries a router's endpoints in order (those preempting "__first__",
then each filter's preempting ones, then the rest: the order the route table lists them in),
then its mounts in the order they were mounted: the first mount whose prefix starts the path
gets the request, with the prefix stripped, and answers it even when nothing in it matches.
A static mount (@assets, pr_static()) serves a folder.

Router gives the same answer, but a literal path only looks at the endpoints that can match
it (those declared with exactly that path and the ones with parameters or regex characters,
kept in order): most requests cost one dict lookup and a short loop, not a regex each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from plumbline.endpoints import Assets, Endpoint, PlumberFile, RouterNode

UNMATCHED = "<unmatched>"  # route label for requests no endpoint matches (bounded cardinality)
# Options plumber's 404/405 step reads in R at request time.
_ROUTING_OPTIONS = re.compile(r"plumber\.(?:trailingSlash|methodNotAllowed|sharedSecret)\b")


def r_sees_everything(spec: PlumberFile) -> bool:
    """Whether R, not Python, must answer what no endpoint routes, and see bodies unchecked.

    True when R code of the app may answer a request first or change how plumber answers
    it: its own filters (a filter may answer, or refuse before a body is parsed), router
    hooks, a 404 or error handler of its own, options that change plumber's 404/405 answers
    (plumber.trailingSlash redirects, plumber.methodNotAllowed) or add a check
    (plumber.sharedSecret), or a path whose regex only R can run. As plumber's router reports
    these, and with a `#* @plumber` block or an `@filter` in the file in any case, so that no
    file answers differently than before plumbline read plumber's router.
    """
    if spec.filters or spec.router_blocks or spec.routing.answers_in_r:
        return True
    options = spec.options
    if (
        options.trailing_slash
        or not options.method_not_allowed
        or options.shared_secret
        or options.custom_error
    ):
        return True
    if any(ep.own_path.regex is None for ep in spec.endpoints):
        return True
    try:
        source = Path(spec.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(_ROUTING_OPTIONS.search(source))


@dataclass(frozen=True)
class Match:
    endpoint: Endpoint | None
    allowed: frozenset[str] = frozenset()  # verbs on this path when endpoint is None (empty: 404)
    assets: Assets | None = None  # the static folder the request is for
    rest: str = ""  # with assets: the path inside the folder, no leading slash
    in_r: bool = False  # a mounted router got the request: only R knows its answer

    @property
    def route(self) -> str:
        if self.endpoint is not None:
            return self.endpoint.route
        return self.assets.mount if self.assets is not None else UNMATCHED


_NOT_FOUND = Match(None)
_MOUNTED = Match(None, in_r=True)  # under a mounted router that has no such endpoint


class _Table:
    """One router's endpoints, indexed for cheap matching, and its mounts."""

    def __init__(self, node: RouterNode):
        # (endpoint, regex to check or None when the path is literal, its Match), in order;
        # an endpoint whose regex Python cannot run is left out (R sees every request then)
        entries = [
            (i, ep, None if ep.own_path.is_literal else ep.own_path.regex, Match(ep))
            for i, ep in enumerate(node.endpoints)
            if ep.own_path.regex is not None
        ]
        general = [entry for entry in entries if entry[2] is not None]
        literal: dict[str, list] = {}
        for entry in entries:
            if entry[2] is None:
                literal.setdefault(entry[1].own_path.raw, []).append(entry)
        self.general = tuple(entry[1:] for entry in general)
        self.by_path = {
            path: tuple(entry[1:] for entry in sorted(eps + general, key=lambda x: x[0]))
            for path, eps in literal.items()
        }
        self.mounts = tuple(
            (m.prefix, m.assets, _Table(m.router) if m.router else None) for m in node.mounts
        )

    def match(self, method: str, path: str) -> Match:
        allowed: set[str] = set()
        for ep, regex, found in self.by_path.get(path, self.general):
            if regex is not None and regex.match(path) is None:
                continue
            if method in ep.verbs:
                return found
            allowed.update(ep.verbs)
        for prefix, assets, table in self.mounts:
            if not path.startswith(prefix):
                continue
            if table is None:
                return Match(None, assets=assets, rest=path[len(prefix) :])
            inner = table.match(method, path[len(prefix) - 1 :])
            return inner if inner.endpoint is not None else _MOUNTED
        return Match(None, frozenset(allowed)) if allowed else _NOT_FOUND


class Router:
    def __init__(self, spec: PlumberFile):
        self.spec = spec
        self._table = _Table(spec.routing)

    def match(self, method: str, path: str) -> Match:
        return self._table.match(method, path)

    def has_get(self, path: str) -> bool:
        return self.spec.has_route("GET", path)
