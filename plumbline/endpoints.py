"""What a plumber.R declares: endpoints, filters, assets, mounts and API info.

Pure data, no R. Filled either from plumber's own router (plumbline/routes.py, when R is
there) or by the annotation parser (plumbline/annotations.py, the fallback without R), and
shared by the runtime (routing, OpenAPI, metrics labels) and the control plane (validating a
push, deriving ingress paths and probes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

VERBS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
USE_VERBS = ("GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH")  # plumber's @use order

# plumber's plumberToApiTypeMap: annotation type -> OpenAPI type.
API_TYPES = {
    "bool": "boolean",
    "boolean": "boolean",
    "logical": "boolean",
    "dbl": "number",
    "double": "number",
    "float": "number",
    "number": "number",
    "numeric": "number",
    "int": "integer",
    "integer": "integer",
    "chr": "string",
    "str": "string",
    "character": "string",
    "string": "string",
    "list": "object",
    "data.frame": "object",
    "df": "object",
    "object": "object",
    "file": "file",
    "binary": "file",
}
DEFAULT_API_TYPE = "string"

# plumber's apiTypesInfo regexes for path parameters (single value, array).
_PATH_REGEX = {
    "boolean": r"[01tfTF]|true|false|TRUE|FALSE",
    "number": r"-?\d*\.?\d+",
    "integer": r"-?\d+",
    "string": r"[^/]+",
}
# plumber's createPathRegex patterns: a parameter, and a parameter as it is replaced.
_PATH_PARAM = re.compile(r"/<(\.?[a-zA-Z][\w.]*)(?::([^>]*))?>")
_PATH_PARAM_SLOT = re.compile(r"/(?:<\.?[a-zA-Z][\w.:\[\]]*>)(/?)")
_REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}]")


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
    """One argument of an endpoint function, as written: `n = 10` -> Formal("n", "10").

    From plumber's route report, `type`, `is_array` and `value` are plumber's reading of the
    evaluated default (getArgsMetadata); from the annotation parser only `default` is known.
    """

    name: str
    default: str | None = None  # R source of the default; None when it has none
    type: str | None = None  # OpenAPI type of the default as plumber evaluates it, if known
    is_array: bool = False
    value: Any = None  # the default as a JSON value, when plumber could evaluate it
    has_default: bool | None = None  # from the route report (its source is not reported)

    @property
    def required(self) -> bool:
        return self.default is None if self.has_default is None else not self.has_default


@dataclass(frozen=True)
class PathParam:
    name: str
    type: str
    is_array: bool


@dataclass(frozen=True)
class PathTemplate:
    """A plumber path such as `/users/<id:int>`, matched with the regex plumber matches it with.

    plumber does not escape the literal parts of a path (`/a.b` matches `/aXb`), and an
    untyped parameter takes the type of the function argument's default. `regex` is None when
    plumber's regex (reported by R) is not one Python's `re` reads the same way: then only R
    can tell which requests the path matches.
    """

    raw: str
    params: tuple[PathParam, ...]
    regex: re.Pattern | None

    @classmethod
    def parse(cls, raw: str, formals: tuple[Formal, ...] = ()) -> "PathTemplate":
        """plumber's createPathRegex, from the path as written and the function's arguments."""
        if not raw.startswith("/"):
            raw = "/" + raw  # plumber's PlumberEndpoint$setPath
        by_name = {f.name: f for f in formals if f.name not in ("req", "res", "...")}
        params = []
        for m in _PATH_PARAM.finditer(raw):
            declared = m.group(2) or ""
            is_array = bool(re.fullmatch(r"\[[^\]]*\]", declared))
            inner = declared[1:-1] if is_array else declared
            formal = by_name.get(m.group(1))
            if inner not in API_TYPES and by_name:
                # plumber takes an undeclared (or unknown) type from the argument's default
                inner = formal_type(formal)[0] if formal is not None else ""
            if not is_array and formal is not None and by_name:
                is_array = formal_type(formal)[1]
            params.append(PathParam(m.group(1), api_type(inner or None, in_path=True), is_array))
        pattern = raw
        for p in params:
            one = _PATH_REGEX[p.type]
            rx = f"(?:(?:{one}),?)+" if p.is_array else one
            pattern = _PATH_PARAM_SLOT.sub(_slot(rx), pattern, count=1)
        return cls(raw, tuple(params), _compile(f"^{pattern}$"))

    @classmethod
    def from_plumber(cls, raw: str, regex: str, params: tuple[PathParam, ...]) -> "PathTemplate":
        """The template and regex plumber itself built (reported by R)."""
        return cls(raw, params, _compile(regex))

    @property
    def is_dynamic(self) -> bool:
        return bool(self.params)

    @property
    def is_literal(self) -> bool:
        """Matches exactly its own text and nothing else (no parameter, no regex character)."""
        return not self.params and not _REGEX_SPECIAL.search(self.raw)

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.match(path) if self.regex is not None else None
        if m is None:
            return None
        return {p.name: v for p, v in zip(self.params, m.groups())}

    @property
    def openapi_path(self) -> str:
        """`/users/<id:int>` -> `/users/{id}` (plumber's own substitution)."""
        return re.sub(r"<([^:>]+)(:[^>]+)?>", r"{\1}", self.raw)

    @property
    def static_prefix(self) -> str:
        """The literal part before the first path parameter, for ingress prefix rules."""
        m = _PATH_PARAM.search(self.raw)
        if m is None:
            return self.raw
        return self.raw[: m.start() + 1]


def _slot(rx: str):
    return lambda m: f"/({rx}){m.group(1)}"


def formal_type(formal: Formal) -> tuple[str, bool]:
    """(OpenAPI type, is an array) of an argument's default, as plumber's getArgsMetadata
    reads it; the annotation parser knows only literal defaults (anything else: string)."""
    if formal.type is not None:
        return formal.type, formal.is_array
    literal = r_literal(formal.default)
    if literal is None:
        return DEFAULT_API_TYPE, False
    kind, value = literal
    return kind, isinstance(value, list) and len(value) > 1


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_STRING = re.compile(r"\"([^\"\\]*)\"|'([^'\\]*)'")


def r_literal(source: str | None) -> tuple[str, Any] | None:
    """(OpenAPI type, value) of R source that is a scalar literal or a c() of them; else None."""
    source = (source or "").strip()
    m = re.fullmatch(r"c\((.*)\)", source, re.S)
    if m:
        found = [r_literal(part) for part in _split_arguments(m.group(1))]
        items = [item for item in found if item is not None]
        if not items or len(items) < len(found):
            return None
        kinds = {kind for kind, _ in items}
        kind = "string" if "string" in kinds else "number" if "number" in kinds else kinds.pop()
        values = [value for _, value in items]
        return kind, values if len(values) > 1 else values[0]
    if source in ("TRUE", "T", "FALSE", "F"):
        return "boolean", source.startswith("T")
    if source.endswith("L") and re.fullmatch(r"-?\d+", source[:-1]):
        return "integer", int(source[:-1])
    if _NUMBER.fullmatch(source):
        value = float(source)
        return "number", int(value) if value.is_integer() else value
    m = _STRING.fullmatch(source)
    if m:
        return "string", m.group(1) if m.group(1) is not None else m.group(2)
    return None


def _split_arguments(text: str) -> list[str]:
    parts, depth, current, quote = [], 0, "", None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    if current.strip():
        parts.append(current)
    return parts


def _compile(regex: str) -> re.Pattern | None:
    try:
        return re.compile(regex)
    except re.error:
        return None


@dataclass(frozen=True)
class Serializer:
    name: str | None  # registered plumber serializer name (json, text, ...); None: set in code
    args: str = ""  # the R source of its arguments, as written; evaluated by R only
    content_type: str | None = None  # the Content-Type it sets, when R reported it


@dataclass(frozen=True)
class Endpoint:
    verbs: tuple[str, ...]
    path: PathTemplate  # the full path, under the prefixes of the routers it is mounted in
    line: int | None  # 1-based line of the function in plumber.R; None when unknown
    params: tuple[Param, ...] = ()
    serializer: Serializer | None = None
    parsers: tuple[str, ...] = ()  # explicit @parser names; () means the router's defaults
    preempt: str | None = None
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    responses: dict[str, str] = field(default_factory=dict)
    formals: tuple[Formal, ...] = ()  # the function's arguments, when readable
    in_code: bool = False  # added by R code (pr_get(), pr_handle(), a mounted router)
    # The path as its own router matches it (plumber strips mount prefixes before matching).
    local: PathTemplate | None = None
    file: str | None = None  # the file `line` is in, when not the plumber.R (a mounted pr(file))

    @property
    def route(self) -> str:
        """The route template, as used in metrics labels and logs."""
        return self.path.raw

    @property
    def own_path(self) -> PathTemplate:
        return self.local if self.local is not None else self.path


@dataclass(frozen=True)
class Filter:
    name: str
    line: int | None


@dataclass(frozen=True)
class Assets:
    directory: str
    mount: str  # URL prefix, with a leading slash
    line: int | None


@dataclass(frozen=True)
class ApiInfo:
    title: str = ""
    description: str = ""
    version: str = ""
    # Other `info` fields plumber read (@apiTOS, @apiContact, @apiLicense) and @apiTag tags.
    extra: dict[str, Any] = field(default_factory=dict)
    tags: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Mount:
    """A router mounted under `prefix` (plumber's form: leading and trailing slash)."""

    prefix: str
    router: "RouterNode | None" = None  # a mounted Plumber router
    assets: Assets | None = None  # a static folder (@assets, pr_static())


@dataclass(frozen=True)
class RouterNode:
    """One plumber router, in the order plumber tries things: endpoints, then mounts.

    `answers_in_r` is true when R code of this router may answer a request no endpoint
    matches, or change how one is matched: a filter of the app's own, a router hook, or a
    404 handler of its own.
    """

    endpoints: tuple[Endpoint, ...]
    mounts: tuple[Mount, ...] = ()
    answers_in_r: bool = False


@dataclass(frozen=True)
class RouterOptions:
    """Router-wide settings that change how plumber answers (read by R after loading)."""

    trailing_slash: bool = False  # options(plumber.trailingSlash): 307 redirects
    method_not_allowed: bool = True  # options(plumber.methodNotAllowed): 405, else 404
    shared_secret: bool = False  # options(plumber.sharedSecret): the default filter answers 400
    custom_error: bool = False  # pr_set_error(): errors are answered by the app's handler
    debug: bool = False  # pr_set_debug(TRUE): error bodies carry R's message


@dataclass(frozen=True)
class PlumberFile:
    path: str
    endpoints: tuple[Endpoint, ...]  # every endpoint, mounted ones included, in routing order
    filters: tuple[Filter, ...] = ()  # the app's own filters (not plumber's defaults)
    assets: tuple[Assets, ...] = ()  # static folders, under their full mount prefix
    info: ApiInfo = ApiInfo()
    # Lines of `#* @plumber` blocks: R code that may add routes, filters and handlers.
    router_blocks: tuple[int, ...] = ()
    # The router tree as plumber routes it; None for a flat file (endpoints, then assets).
    router: RouterNode | None = None
    options: RouterOptions = RouterOptions()
    # plumber's own /openapi.json body, when the app customises its spec (pr_set_api_spec()).
    openapi: str | None = None
    # Where this description comes from: "plumber" (R's router) or "annotations" (no R).
    source: str = "annotations"
    # Full prefixes ("/items/") of routers mounted in R code: every path under one is theirs.
    mounted: tuple[str, ...] = ()
    # What the reader could not settle (R could not load the file here, ...).
    warnings: tuple[str, ...] = ()

    @property
    def routing(self) -> RouterNode:
        if self.router is not None:
            return self.router
        mounts = tuple(Mount(a.mount.rstrip("/") + "/", assets=a) for a in self.assets)
        return RouterNode(self.endpoints, mounts, answers_in_r=bool(self.filters))

    def find(self, method: str, path: str) -> tuple[Endpoint | None, dict[str, str], set[str]]:
        """Route like plumber: first endpoint in routing order whose path and verb match.

        Returns (endpoint, path values, verbs allowed on this path); an endpoint of None with
        a non-empty set means 405, with an empty set 404. Top-level endpoints only.
        """
        allowed: set[str] = set()
        for ep in self.routing.endpoints:
            values = ep.own_path.match(path)
            if values is None:
                continue
            if method in ep.verbs:
                return ep, values, allowed
            allowed.update(ep.verbs)
        return None, {}, allowed

    def has_route(self, method: str, path: str) -> bool:
        return any(method in ep.verbs and ep.path.raw == path for ep in self.endpoints)
