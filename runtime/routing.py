"""Match a request to the plumber.R endpoint plumber would choose, cheaply.

Same answer as PlumberFile.find (first endpoint in file order whose path and verb match),
but a static path only looks at the endpoints that can match it: those declared with that
exact path and the dynamic ones, kept in file order. Most requests cost one dict lookup and
a short loop instead of a regex per endpoint.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from plumbline.endpoints import Endpoint, PlumberFile

UNMATCHED = "<unmatched>"  # route label for requests no endpoint matches (bounded cardinality)
# Options plumber's 404/405 step reads in R at request time.
_ROUTING_OPTIONS = re.compile(r"plumber\.(?:trailingSlash|methodNotAllowed)\b")


def r_sees_everything(spec: PlumberFile) -> bool:
    """Whether R, not Python, must answer what the annotations do not route, and see bodies
    unchecked: true when plumber.R has @filter blocks (a filter may answer, or refuse before
    a body is parsed), a `#* @plumber` block (it may add routes, filters, hooks, mounts and
    404/error handlers that no annotation shows), or mentions the options that change
    plumber's 404/405 answers (plumber.trailingSlash redirects, plumber.methodNotAllowed).
    """
    if spec.filters or spec.router_blocks:
        return True
    try:
        source = Path(spec.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(_ROUTING_OPTIONS.search(source))


@dataclass(frozen=True)
class Match:
    endpoint: Endpoint | None
    allowed: frozenset[str]  # verbs on this path when endpoint is None (empty: 404)

    @property
    def route(self) -> str:
        return self.endpoint.route if self.endpoint is not None else UNMATCHED


class Router:
    def __init__(self, spec: PlumberFile):
        self.spec = spec
        dynamic = [(i, ep) for i, ep in enumerate(spec.endpoints) if ep.path.is_dynamic]
        static: dict[str, list[tuple[int, Endpoint]]] = {}
        for i, ep in enumerate(spec.endpoints):
            if not ep.path.is_dynamic:
                static.setdefault(ep.path.raw, []).append((i, ep))
        self._dynamic = tuple((ep, Match(ep, frozenset())) for _, ep in dynamic)
        self._by_path = {
            path: tuple((ep, Match(ep, frozenset()))
                        for _, ep in sorted(eps + dynamic, key=lambda x: x[0]))
            for path, eps in static.items()}

    def match(self, method: str, path: str) -> Match:
        allowed: set[str] = set()
        for ep, found in self._by_path.get(path, self._dynamic):
            if ep.path.is_dynamic and ep.path.regex.match(path) is None:
                continue
            if method in ep.verbs:
                return found
            allowed.update(ep.verbs)
        return Match(None, frozenset(allowed))

    def has_get(self, path: str) -> bool:
        return self.spec.has_route("GET", path)
