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
    VERBS, ApiInfo, Assets, Endpoint, Filter, Formal, Param, PathTemplate, PlumberFile,
    Serializer, api_type,
)


class AnnotationError(ValueError):
    """A plumber.R annotation plumber itself would refuse; carries file and line."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


_ANNOTATION = re.compile(r"^#['*]")
_TAG = re.compile(r"^#['*]\s*@(\w+)")
_COMMENT_OR_BLANK = re.compile(r"^#|^\s*$")
_COMMENT = re.compile(r"^#['*]\s*([^@\s].*)$")
_VERB_TAG = re.compile(r"^#['*]\s*@(get|put|post|use|delete|head|options|patch)(?:\s+(.*))?$", re.S)
_PARAM_TAG = re.compile(r"^#['*]\s*@param(\s+([^\s:]+):?([^\s*]+)?(\*)?(?:\s+(.*))?\s*)?$", re.S)
_SERIALIZER_TAG = re.compile(r"^#['*]\s*@serializer(?:\s+(\S+)\s*(.*?)\s*)?$", re.S)
_SHORT_SERIALIZER = re.compile(r"^#['*]\s*@(json|html|jpeg|png|svg)(.*)$", re.S)
_PARSER_TAG = re.compile(r"^#['*]\s*@parser(?:\s+(\S+)\s*(.*?)\s*)?$", re.S)
_ASSETS_TAG = re.compile(r"^#['*]\s*@assets(?:\s+(\S*)(?:\s+(\S+))?\s*)?$")
_RESPONSE_TAG = re.compile(r"^#['*]\s*@response\s+(\w+)(?:\s+@body\s+\S*)?\s+(\S.*?)\s*$", re.S)
_TAG_TAG = re.compile(r"^#['*]\s*@tag\s+(\"[^\"]+\"|'[^']+'|\S+)")
_ROUTER_BLOCK = re.compile(r"^#['*]\s*@plumber\b")  # plumber's own pattern
_GLOBAL_LINE = re.compile(r"^#['*]\s*(@(api\w+)\s+)?(.*)$", re.I)  # plumber's argRegex

SERIALIZERS = {
    "json", "unboxedJSON", "text", "html", "csv", "tsv", "contentType", "png", "jpeg", "svg",
    "bmp", "tiff", "pdf", "rds", "feather", "parquet", "yaml", "htmlwidget", "format", "print",
    "cat", "geojson", "octet", "excel", "agg_png", "agg_jpeg", "agg_tiff", "svglite",
    "webp", "device", "arrow_ipc_stream",
}
PARSERS = {
    "json", "form", "text", "multi", "octet", "csv", "tsv", "yaml", "rds", "feather",
    "parquet", "geojson", "none", "read_csv", "read_tsv", "arrow_ipc_stream", "excel",
}


def parse_file(path: str | Path) -> PlumberFile:
    path = Path(path)
    return parse_source(path.read_text(encoding="utf-8"), str(path))


def parse_source(source: str, path: str = "plumber.R") -> PlumberFile:
    lines = source.splitlines()
    endpoints: list[Endpoint] = []
    filters: list[Filter] = []
    assets: list[Assets] = []
    info = _api_info(lines)
    for start in _top_level_starts(lines):
        block = _Block.read(lines, start, path)
        kinds = sum(bool(x) for x in (block.paths, block.filter, block.assets))
        if kinds > 1:
            raise AnnotationError(path, start, "A single function can only be a filter, an API "
                                  "endpoint or an asset (@filter AND @get, @post, @assets, etc.)")
        line = start + 1
        if block.paths:
            for verbs, raw in block.paths:
                endpoints.append(Endpoint(
                    verbs=verbs, path=PathTemplate.parse(raw), line=line,
                    params=tuple(block.params), serializer=block.serializer,
                    parsers=tuple(block.parsers), preempt=block.preempt,
                    summary=block.summary, description=block.description,
                    tags=tuple(block.tags), responses=dict(block.responses),
                    formals=_formals(lines, start)))
        elif block.filter:
            filters.append(Filter(block.filter, line))
        elif block.assets:
            directory, mount = block.assets
            assets.append(Assets(directory, mount, line))
    router_blocks = tuple(i + 1 for i, text in enumerate(lines) if _ROUTER_BLOCK.match(text))
    return PlumberFile(path, tuple(endpoints), tuple(filters), tuple(assets), info,
                       router_blocks)


class _Block:
    """The annotations above one expression, read bottom-up as plumber's plumbBlock does."""

    def __init__(self):
        self.paths: list[tuple[tuple[str, ...], str]] = []
        self.params: list[Param] = []
        self.serializer: Serializer | None = None
        self.parsers: list[str] = []
        self.preempt: str | None = None
        self.filter: str | None = None
        self.assets: tuple[str, str] | None = None
        self.tags: list[str] = []
        self.responses: dict[str, str] = {}
        self.summary = ""
        self.description = ""

    @classmethod
    def read(cls, lines: list[str], start: int, path: str) -> "_Block":
        block = cls()
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
        block.params.reverse()
        block.parsers.reverse()
        block.tags.reverse()
        return block

    def _tag(self, line: str, lineno: int, path: str) -> None:
        def fail(msg: str):
            raise AnnotationError(path, lineno, msg)

        if m := _VERB_TAG.match(line):
            target = (m.group(2) or "").strip()
            if not target:
                fail("No path specified.")
            verbs = VERBS if m.group(1) == "use" else (m.group(1).upper(),)
            self.paths.append((tuple(verbs), target))
        elif m := re.match(r"^#['*]\s*@filter(?:\s+(.*))?$", line, re.S):
            name = (m.group(1) or "").strip()
            if not name:
                fail("No @filter name specified.")
            if self.filter:
                fail("Multiple @filters specified for one function.")
            self.filter = name
        elif m := re.match(r"^#['*]\s*@preempt(?:\s+(.*))?$", line, re.S):
            name = (m.group(1) or "").strip()
            if not name:
                fail("No @preempt specified")
            self.preempt = name
        elif re.match(r"^#['*]\s*@assets\b", line):
            m = _ASSETS_TAG.match(line)
            directory = (m.group(1) if m else "") or ""
            if not directory:
                fail("No directory specified for @assets")
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
                fail("Supplemental arguments to the serializer must be surrounded by "
                     f"parentheses, as in `#' @{m.group(1)}(na='null')`")
            args = f"list{extra}" if extra else ""
            self._set_serializer(Serializer(m.group(1), args), fail)
        elif m := _PARSER_TAG.match(line):
            name = m.group(1)
            if not name:
                fail("No @parser specified")
            if name not in PARSERS:
                fail(f"No such @parser registered: {name}")
            self.parsers.append(name)
        elif m := _RESPONSE_TAG.match(line):
            self.responses[m.group(1)] = m.group(2)
        elif m := _PARAM_TAG.match(line):
            if not m.group(2):
                fail("No parameter specified.")
            declared = m.group(3) or ""
            is_array = bool(re.fullmatch(r"\[[^\]]*\]", declared))
            inner = declared[1:-1] if is_array else declared
            self.params = [p for p in self.params if p.name != m.group(2)]
            self.params.append(Param(m.group(2), api_type(inner or None), is_array,
                                     m.group(4) == "*", (m.group(5) or "").strip()))
        elif m := _TAG_TAG.match(line):
            self.tags.append(m.group(1).strip("\"'"))

    def _set_serializer(self, serializer: Serializer, fail) -> None:
        if serializer.name not in SERIALIZERS:
            fail(f"No such @serializer registered: {serializer.name}")
        if self.serializer is not None:
            fail("Multiple @serializers specified for one function.")
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
    return ApiInfo(found.get("apiTitle", ""), found.get("apiDescription", ""),
                   found.get("apiVersion", ""))


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
    text = "\n".join(lines[start:start + 40])
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
