"""Read the `#*` / `#'` annotations of a plumber.R the way plumber 1.2.1 does (no R needed).

plumber attaches a block of comment lines to the top-level expression right below it and reads
the block bottom-up. A line without a leading `@tag` is a comment wherever it stands (1.2.1
has no multi-line tags): the topmost comment is the endpoint's summary, the others its
description.
"""

from __future__ import annotations

import re
from pathlib import Path

from .endpoints import (
    USE_VERBS,
    ApiInfo,
    Assets,
    Endpoint,
    Filter,
    Formal,
    Param,
    PathTemplate,
    PlumberFile,
    Serializer,
    api_type,
)


class AnnotationError(ValueError):
    """A plumber.R annotation plumber itself would refuse; carries file and line.

    `r_decides` marks what only R can settle for sure: a serializer or parser name that is not
    one of plumber's own may be registered by a package the app attaches.
    """

    def __init__(self, path: str, line: int, message: str, r_decides: bool = False):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message
        self.r_decides = r_decides


_ANNOTATION = re.compile(r"^#['*]")
_TAG = re.compile(r"^#['*]\s*@(\w+)")
_COMMENT_OR_BLANK = re.compile(r"^#|^\s*$")
_COMMENT = re.compile(r"^#['*]\s*([^@\s].*)$")
# plumber's patterns are prefix matches: `#* @getter` is a @get without a path, an error.
_VERB_TAG = re.compile(r"^#['*]\s*@(get|put|post|use|delete|head|options|patch)(\s+(.*)$)?", re.S)
_FILTER_TAG = re.compile(r"^#['*]\s*@filter(\s+(.*)$)?", re.S)
_PREEMPT_TAG = re.compile(r"^#['*]\s*@preempt(\s+(.*)\s*$)?", re.S)
_PARAM_TAG = re.compile(r"^#['*]\s*@param(\s+([^\s:]+):?([^\s*]+)?(\*)?(?:\s+(.*))?\s*)?$", re.S)
_SERIALIZER_TAG = re.compile(r"^#['*]\s*@serializer(?:\s+(\S+)\s*(.*?)\s*$)?", re.S)
_SHORT_SERIALIZER = re.compile(r"^#['*]\s*@(json|html|jpeg|png|svg)(.*)$", re.S)
_PARSER_TAG = re.compile(r"^#['*]\s*@parser(?:\s+(\S+)\s*(.*?)\s*$)?", re.S)
_ASSETS_TAG = re.compile(r"^#['*]\s*@assets(?:\s+(\S*)(?:\s+(\S+))?\s*)?$")
_RESPONSE_TAG = re.compile(r"^#['*]\s*@response\s+(\w+)(?:\s+@body\s+\S*)?\s+(\S.*?)\s*$", re.S)
_TAG_TAG = re.compile(r"^#['*]\s*@tag\s+(\"[^\"]+\"|'[^']+'|\S+)")
_ROUTER_BLOCK = re.compile(r"^#['*]\s*@plumber")  # plumber's own pattern
_GLOBAL_LINE = re.compile(r"^#['*]\s*(@(api\w+)\s+)?(.*)$", re.I)  # plumber's argRegex

SERIALIZERS = {
    "json",
    "unboxedJSON",
    "text",
    "html",
    "csv",
    "tsv",
    "contentType",
    "png",
    "jpeg",
    "svg",
    "bmp",
    "tiff",
    "pdf",
    "rds",
    "feather",
    "parquet",
    "yaml",
    "htmlwidget",
    "format",
    "print",
    "cat",
    "geojson",
    "octet",
    "excel",
    "agg_png",
    "agg_jpeg",
    "agg_tiff",
    "svglite",
    "webp",
    "device",
    "arrow_ipc_stream",
}
# plumber's defaultPlumberFilters: an endpoint may @preempt them too.
DEFAULT_FILTERS = ("queryString", "body", "cookieParser", "sharedSecret")
# R calls by which a plumber.R adds serializers or parsers plumber does not ship.
_REGISTERS = {
    "serializer": re.compile(r"\bregister_serializer\s*\("),
    "parser": re.compile(r"\bregister_parser\s*\("),
}
PARSERS = {
    "json",
    "form",
    "text",
    "multi",
    "octet",
    "csv",
    "tsv",
    "yaml",
    "rds",
    "feather",
    "parquet",
    "geojson",
    "none",
    "read_csv",
    "read_tsv",
    "arrow_ipc_stream",
    "excel",
}


def parse_file(path: str | Path) -> PlumberFile:
    path = Path(path)
    return parse_source(path.read_text(encoding="utf-8"), str(path))


def parse_source(source: str, path: str = "plumber.R") -> PlumberFile:
    lines = source.splitlines()
    # preempt group -> endpoints, in plumber's routing order (see _routing_order)
    groups: dict[str, list[Endpoint]] = {}
    filters: list[Filter] = []
    assets: list[Assets] = []
    info = _api_info(lines)
    registers = {kind: bool(rx.search(source)) for kind, rx in _REGISTERS.items()}
    router_blocks: list[int] = []  # the @plumber blocks seen so far
    for start in _top_level_starts(lines):
        block = _Block.read(lines, start, path, registers)
        kinds = sum(bool(x) for x in (block.paths, block.filter, block.assets, block.modifier))
        if kinds > 1:
            raise AnnotationError(
                path,
                start,
                "A single function can only be a filter, an API "
                "endpoint, an asset or a Plumber object modifier (@filter AND "
                "@get, @post, @assets, @plumber, etc.)",
            )
        line = start + 1
        if block.paths:
            known = ("__first__", *DEFAULT_FILTERS, *(f.name for f in filters))
            if block.preempt is not None and block.preempt not in known and not router_blocks:
                raise AnnotationError(
                    path,
                    line,
                    "The given @preempt filter does not exist in "
                    f"this Plumber router: '{block.preempt}'",
                )
            formals = _formals(lines, start)
            for verbs, raw in block.paths:
                path_template = PathTemplate.parse(raw, formals)
                groups.setdefault(block.preempt or "__no-preempt__", []).append(
                    Endpoint(
                        verbs=verbs,
                        path=path_template,
                        line=line,
                        params=tuple(block.params.values()),
                        serializer=block.serializer,
                        parsers=tuple(block.parsers),
                        preempt=block.preempt,
                        summary=block.summary,
                        description=block.description,
                        tags=tuple(block.tags),
                        responses=dict(block.responses),
                        formals=formals,
                    )
                )
        elif block.filter:
            filters.append(Filter(block.filter, line))
        elif block.assets:
            directory, mount = block.assets
            assets.append(Assets(directory, mount, line))
        elif block.modifier:
            router_blocks.append(block.modifier)
    endpoints = tuple(
        ep for group in _routing_order(filters, groups) for ep in groups.get(group, ())
    )
    return PlumberFile(path, endpoints, tuple(filters), tuple(assets), info, router_lines(source))


def router_lines(source: str) -> tuple[int, ...]:
    """Lines of every `#* @plumber` tag (also one plumber would not run, so that a warning
    never misses one): R code there may add routes, filters, hooks and handlers."""
    return tuple(i + 1 for i, text in enumerate(source.splitlines()) if _ROUTER_BLOCK.match(text))


def _routing_order(filters: list[Filter], groups: dict) -> list[str]:
    """plumber's Plumber$route(): endpoints preempting "__first__", then each filter's
    preempting endpoints (its default filters first), then those that preempt nothing.
    A filter only a @plumber block adds is placed after the annotated ones (R knows)."""
    names = ["__first__", *DEFAULT_FILTERS, *(f.name for f in filters), *groups, "__no-preempt__"]
    return [name for name in dict.fromkeys(names) if name != "__no-preempt__"] + ["__no-preempt__"]


class _Block:
    """The annotations above one expression, read bottom-up as plumber's plumbBlock does."""

    def __init__(self, registers: dict[str, bool]):
        self.registers = registers  # whether the file registers its own serializers, parsers
        self.paths: list[tuple[tuple[str, ...], str]] = []
        self.params: dict[str, Param] = {}
        self.serializer: Serializer | None = None
        self.parsers: list[str] = []
        self.preempt: str | None = None
        self.filter: str | None = None
        self.assets: tuple[str, str] | None = None
        self.modifier: int | None = None  # line of a `#* @plumber` tag
        self.tags: list[str] = []
        self.responses: dict[str, str] = {}
        self.summary = ""
        self.description = ""

    @classmethod
    def read(cls, lines: list[str], start: int, path: str, registers: dict[str, bool]) -> "_Block":
        block = cls(registers)
        # Untagged lines, top to bottom. plumber 1.2.1 has no multi-line tags: every such
        # line is a comment, wherever it stands in the block.
        comments: list[str] = []
        i = start - 1
        while i >= 0 and _COMMENT_OR_BLANK.match(lines[i]):
            raw = lines[i]
            if not _ANNOTATION.match(raw):
                i -= 1
                continue
            if not _TAG.match(raw):
                if m := _COMMENT.match(raw):
                    comments.insert(0, m.group(1).strip())
                i -= 1
                continue
            block._tag(raw, i + 1, path)
            i -= 1
        if comments:
            block.summary = comments[0]
            block.description = "\n".join(comments[1:])
        block.paths.reverse()
        # plumber keeps a repeated @param where it first met it (reading bottom-up), then
        # reverses: the order of the lowest line of each name, top to bottom
        block.params = dict(reversed(block.params.items()))
        block.parsers.reverse()
        block.tags.reverse()
        return block

    def _tag(self, line: str, lineno: int, path: str) -> None:
        def fail(msg: str, r_decides: bool = False):
            raise AnnotationError(path, lineno, msg, r_decides)

        if m := _VERB_TAG.match(line):
            target = (m.group(3) or "").strip()
            if not target:
                fail("No path specified.")
            verbs = USE_VERBS if m.group(1) == "use" else (m.group(1).upper(),)
            self.paths.append((tuple(verbs), target))
        elif m := _FILTER_TAG.match(line):
            name = (m.group(2) or "").strip()
            if not name:
                fail("No @filter name specified.")
            if self.filter:
                fail("Multiple @filters specified for one function.")
            self.filter = name
        elif m := _PREEMPT_TAG.match(line):
            name = (m.group(2) or "").strip()
            if not name:
                fail("No @preempt specified")
            if self.preempt is not None:
                fail("Multiple @preempts specified for one function.")
            self.preempt = name
        elif m := _ASSETS_TAG.match(line):
            directory = m.group(1) or ""
            if not directory:
                fail("No directory specified for @assets")
            if self.assets is not None:
                fail("Multiple @assets specified for one entity.")
            mount = (m.group(2) or "/public").strip()
            self.assets = (directory, mount if mount.startswith("/") else "/" + mount)
        elif m := _SERIALIZER_TAG.match(line):
            name = m.group(1)
            if not name:
                fail("No @serializer specified")
            self._set_serializer(Serializer(name, (m.group(2) or "").strip()), fail)
        elif m := _SHORT_SERIALIZER.match(line):
            extra = m.group(2).strip()
            if extra and not re.fullmatch(r"\(.*\)", extra, re.S):
                fail(
                    "Supplemental arguments to the serializer must be surrounded by "
                    f"parentheses, as in `#' @{m.group(1)}(na='null')`"
                )
            args = f"list{extra}" if extra else ""
            self._set_serializer(Serializer(m.group(1), args), fail)
        elif m := _PARSER_TAG.match(line):
            name = m.group(1)
            if not name:
                fail("No @parser specified")
            if name not in PARSERS and not self.registers["parser"]:
                fail(f"No such @parser registered: {name}", r_decides=True)
            self.parsers.append(name)
        elif m := _RESPONSE_TAG.match(line):
            self.responses[m.group(1)] = m.group(2)
        elif m := _PARAM_TAG.match(line):
            if not m.group(2):
                fail("No parameter specified.")
            declared = m.group(3) or ""
            is_array = bool(re.fullmatch(r"\[[^\]]*\]", declared))
            inner = declared[1:-1] if is_array else declared
            self.params[m.group(2)] = Param(
                m.group(2),
                api_type(inner or None),
                is_array,
                m.group(4) == "*",
                (m.group(5) or "").strip(),
            )
        elif m := _TAG_TAG.match(line):
            tag = m.group(1).strip("\"'")
            if tag in self.tags:
                fail("Duplicate tag specified.")
            self.tags.append(tag)
        elif _ROUTER_BLOCK.match(line):
            self.modifier = lineno

    def _set_serializer(self, serializer: Serializer, fail) -> None:
        if self.serializer is not None:
            fail("Multiple @serializers specified for one function.")
        if serializer.name not in SERIALIZERS and not self.registers["serializer"]:
            fail(f"No such @serializer registered: {serializer.name}", r_decides=True)
        self.serializer = serializer


def _api_info(lines: list[str]) -> ApiInfo:
    """plumber's plumbGlobals: an @api* line runs on over the `#*` lines below it that carry
    no @api* tag (joined with a space) until a line that is not `#*`; a later one wins."""
    found: dict[str, str] = {}

    def record(argument: str) -> None:
        m = _GLOBAL_LINE.match(argument)
        if m and m.group(2) in ("apiTitle", "apiDescription", "apiVersion"):
            found[m.group(2)] = m.group(3).strip()

    current = ""
    for raw in lines:
        m = _GLOBAL_LINE.match(raw)
        if m and not m.group(2):
            if current:
                current += " " + m.group(3)
            continue
        if current:
            record(current)
        current = raw if m else ""
    if current:
        record(current)
    return ApiInfo(
        found.get("apiTitle", ""), found.get("apiDescription", ""), found.get("apiVersion", "")
    )


def _top_level_starts(lines: list[str]) -> list[int]:
    """0-based indexes of lines where a top-level R expression starts.

    A light R scanner: tracks bracket depth outside strings and comments, and treats a
    line that ends with an operator as continued. Good enough to find where plumber's
    annotated expressions begin.
    """
    starts: list[int] = []
    depth = 0
    continued = False
    quote: str | None = None
    for index, line in enumerate(lines):
        code_seen = False
        begins_here = depth == 0 and not continued and quote is None
        last = ""
        i = 0
        while i < len(line):
            ch = line[i]
            if quote:
                if ch == "\\":
                    i += 2
                    continue
                if ch == quote:
                    quote = None
                i += 1
                continue
            if ch == "#":
                break
            if not ch.isspace():
                if not code_seen and begins_here:
                    starts.append(index)
                code_seen = True
                last = ch
            if ch in "\"'`":
                quote = ch
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(0, depth - 1)
            i += 1
        if code_seen:
            continued = last in "+-*/^&|<>=!~,%" or line.rstrip().endswith("%>%")
        # backtick names never span lines; strings may
        if quote == "`":
            quote = None
    return starts


def _formals(lines: list[str], start: int) -> tuple[Formal, ...]:
    """Arguments of `function(a, b = 1, ...)` starting at `start`, if readable."""
    text = "\n".join(lines[start : start + 40])
    m = re.search(r"function\s*\(", text)
    if not m:
        return ()
    depth, i, args, current = 1, m.end(), [], ""
    while i < len(text) and depth:
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if depth == 1 and ch == ",":
            args.append(current)
            current = ""
        elif depth:
            current += ch
        i += 1
    args.append(current)
    formals = []
    for arg in args:
        name, eq, default = arg.partition("=")
        name = name.strip().strip("`")
        if name:
            formals.append(Formal(name, default.strip() if eq else None))
    return tuple(formals)
