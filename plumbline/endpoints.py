"""What a plumber.R declares: endpoints, filters, assets and API info.

Pure data, no R. Shared by the runtime (routing, OpenAPI) and the control plane
(validating a push, deriving ingress paths and probes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

VERBS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

# plumber's plumberToApiTypeMap: annotation type -> OpenAPI type.
API_TYPES = {
    "bool": "boolean", "boolean": "boolean", "logical": "boolean",
    "dbl": "number", "double": "number", "float": "number", "number": "number",
    "numeric": "number",
    "int": "integer", "integer": "integer",
    "chr": "string", "str": "string", "character": "string", "string": "string",
    "list": "object", "data.frame": "object", "df": "object", "object": "object",
    "file": "file", "binary": "file",
}
DEFAULT_API_TYPE = "string"

# plumber's apiTypesInfo regexes for path parameters (single value, array).
_PATH_REGEX = {
    "boolean": r"[01tfTF]|true|false|TRUE|FALSE",
    "number": r"-?\d*\.?\d+",
    "integer": r"-?\d+",
    "string": r"[^/]+",
}
_PATH_PARAM = re.compile(r"/<(\.?[a-zA-Z][\w.]*)(?::([^>]*))?>")


def api_type(plumber_type: str | None, in_path: bool = False) -> str:
    """Map an annotation type (`int`, `[dbl]`'s inner part, ...) to an OpenAPI type."""
    if not plumber_type:
        return DEFAULT_API_TYPE
    found = API_TYPES.get(plumber_type, DEFAULT_API_TYPE)
    if in_path and found not in _PATH_REGEX:
        return DEFAULT_API_TYPE
    return found


@dataclass(frozen=True)
class Param:
    name: str
    type: str = DEFAULT_API_TYPE  # OpenAPI type: string, integer, number, boolean, object, file
    is_array: bool = False
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Formal:
    """One argument of an endpoint function, as written: `n = 10` -> Formal("n", "10")."""
    name: str
    default: str | None = None  # R source of the default; None when it has none


@dataclass(frozen=True)
class PathParam:
    name: str
    type: str
    is_array: bool


@dataclass(frozen=True)
class PathTemplate:
    """A plumber path such as `/users/<id:int>`, compiled the way plumber compiles it."""

    raw: str
    params: tuple[PathParam, ...]
    regex: re.Pattern

    @classmethod
    def parse(cls, raw: str) -> "PathTemplate":
        params = []
        pattern = raw
        for m in _PATH_PARAM.finditer(raw):
            declared = m.group(2) or ""
            is_array = bool(re.fullmatch(r"\[[^\]]*\]", declared))
            inner = declared[1:-1] if is_array else declared
            kind = api_type(inner or None, in_path=True)
            params.append(PathParam(m.group(1), kind, is_array))
        for p in params:
            one = _PATH_REGEX[p.type]
            rx = f"(?:(?:{one}),?)+" if p.is_array else one
            pattern = re.sub(r"/(?:<\.?[a-zA-Z][\w.:\[\]]*>)(/?)",
                             lambda m, rx=rx: f"/({rx}){m.group(1)}", pattern, count=1)
        if not params:
            pattern = re.escape(raw)
        return cls(raw, tuple(params), re.compile(f"^{pattern}$"))

    @property
    def is_dynamic(self) -> bool:
        return bool(self.params)

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.match(path)
        if m is None:
            return None
        return {p.name: v for p, v in zip(self.params, m.groups())}

    @property
    def openapi_path(self) -> str:
        """`/users/<id:int>` -> `/users/{id}`."""
        return _PATH_PARAM.sub(lambda m: "/{" + m.group(1) + "}", self.raw)

    @property
    def static_prefix(self) -> str:
        """The literal part before the first path parameter, for ingress prefix rules."""
        m = _PATH_PARAM.search(self.raw)
        if m is None:
            return self.raw
        return self.raw[: m.start() + 1]


@dataclass(frozen=True)
class Serializer:
    name: str  # registered plumber serializer name: json, text, html, png, ...
    args: str = ""  # the R source of its arguments, as written; evaluated by R only


@dataclass(frozen=True)
class Endpoint:
    verbs: tuple[str, ...]
    path: PathTemplate
    line: int  # 1-based line of the function expression in plumber.R
    params: tuple[Param, ...] = ()
    serializer: Serializer | None = None
    parsers: tuple[str, ...] = ()
    preempt: str | None = None
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    responses: dict[str, str] = field(default_factory=dict)
    formals: tuple[Formal, ...] = ()  # the function's arguments, when readable

    @property
    def route(self) -> str:
        """The route template, as used in metrics labels and logs."""
        return self.path.raw


@dataclass(frozen=True)
class Filter:
    name: str
    line: int


@dataclass(frozen=True)
class Assets:
    directory: str
    mount: str  # URL prefix, with a leading slash
    line: int


@dataclass(frozen=True)
class ApiInfo:
    title: str = ""
    description: str = ""
    version: str = ""


@dataclass(frozen=True)
class PlumberFile:
    path: str
    endpoints: tuple[Endpoint, ...]
    filters: tuple[Filter, ...] = ()
    assets: tuple[Assets, ...] = ()
    info: ApiInfo = ApiInfo()
    # Lines of `#* @plumber` blocks: R code that may add routes, filters and handlers no
    # annotation shows.
    router_blocks: tuple[int, ...] = ()

    def find(self, method: str, path: str) -> tuple[Endpoint | None, dict[str, str], set[str]]:
        """Route like plumber: first endpoint in file order whose path and verb match.

        Returns (endpoint, path values, verbs allowed on this path); an endpoint of None with
        a non-empty set means 405, with an empty set 404.
        """
        allowed: set[str] = set()
        for ep in self.endpoints:
            values = ep.path.match(path)
            if values is None:
                continue
            if method in ep.verbs:
                return ep, values, allowed
            allowed.update(ep.verbs)
        return None, {}, allowed

    def has_route(self, method: str, path: str) -> bool:
        return any(method in ep.verbs and ep.path.raw == path for ep in self.endpoints)
