"""plumber's own route table: what plumber built from a plumber.R, read from R.

`route_report.R` (beside this module) describes a router plumber has loaded. An R worker
calls it right after `plumber::pr()` loaded the app and sends the JSON to the pool in its
"ready" frame (the runtime routes, documents and labels from it); the control plane runs it
with Rscript (`query`), so routes added in R code get Ingress rules too. `from_report` turns
the JSON into the same `PlumberFile` the annotation parser returns without R.

The report (JSON, "format": 1):

    {"format": 1, "file": "/abs/plumber.R",
     "info": {"title": .., "description": .., "version": .., ...},   # {} or [] when none
     "tags": [{"name": .., "description": ..}],                      # @apiTag
     "options": {"trailing_slash": bool, "method_not_allowed": bool, "shared_secret": bool},
     "debug": bool,
     "router": ROUTER,
     "openapi": "<plumber's /openapi.json body>" | null}            # only when customised
    ROUTER = {"kind": "router", "file": .., "endpoints": [ENDPOINT, ...],  # routing order
              "filters": [{"name": .., "default": bool, "line": int | null}],
              "mounts": [{"prefix": "/sub/", "router": ROUTER | STATIC}],  # mount order
              "hooks": ["preroute", ...], "custom_404": bool, "custom_error": bool,
              "default_serializer": "<Content-Type>" | null, "default_parsers": [..]}
    STATIC = {"kind": "static", "directory": "./files"}
    ENDPOINT = {"verbs": [..], "path": "/x/<id:int>", "regex": "^/x/(-?\\d+)$",
                "path_params": [{"name", "type", "is_array"}], "preempt": name | null,
                "serializer": {"name": str | null, "content_type": str | null, "own": bool},
                "parsers": [..] | null, "line": int | null, "in_code": bool,
                "summary": .., "description": .., "tags": [..], "responses": {code: text},
                "params": [{"name", "type", "is_array", "required", "description"}],
                "formals": [{"name", "type", "is_array", "required", "has_default",
                             "default"}]}

Paths and regexes are each router's own (plumber strips a mount's prefix before its router
matches); `from_report` joins prefixes for the full paths documents and ingress rules use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .annotations import AnnotationError, parse_file, router_lines
from .endpoints import (
    ApiInfo,
    Assets,
    Endpoint,
    Filter,
    Formal,
    Mount,
    Param,
    PathParam,
    PathTemplate,
    PlumberFile,
    RouterNode,
    RouterOptions,
    Serializer,
)

REPORT_R = Path(__file__).with_name("route_report.R")
SOURCE_VARIABLE = "PLUMBLINE_ROUTE_TABLE"  # where the control plane reads routes from
SOURCES = ("auto", "r", "annotations")
REPORT_FORMAT = 1
_MARKER = "<<<plumbline-route-report>>>\n"
# The report's Rscript starts with R's JIT compiler off: it would compile closures that run
# once (the example app's report: 1.20 -> 0.83 s here), as in the runtime's loading
# (runtime/r/worker.py). _GIVEN_JIT says what the user's R_ENABLE_JIT was ("=VALUE", or ""
# when unset), and route_report.R puts it back before the app's code runs.
_GIVEN_JIT = "PLUMBLINE_GIVEN_R_ENABLE_JIT"
# Hooks that run for every request (and may change or answer it); "exit" runs at shutdown.
_REQUEST_HOOKS = frozenset({"preroute", "postroute", "preserialize", "postserialize"})


def route_table(
    plumber_file: str | Path, attach: tuple[str, ...] = (), source: str | None = None
) -> PlumberFile:
    """plumber's router when R is installed (one Rscript that parses and loads the file,
    attaching `attach` first, as the runtime does), else the annotations (the fallback).

    `source` (default: $PLUMBLINE_ROUTE_TABLE, else "auto") is "auto", "r" (R must load the
    file: no fallback) or "annotations" (never start R). Raises AnnotationError for what
    plumber would refuse as the annotation reader sees it, RSyntaxError for a file R cannot
    parse, RouteReportError when "r" cannot be had. With "auto", a file R cannot load here (a
    package or a data file only the image has) falls back to the annotations, and
    `warnings` says so.
    """
    source = source or os.environ.get(SOURCE_VARIABLE) or "auto"
    if source not in SOURCES:
        raise ValueError(f"{SOURCE_VARIABLE}={source!r}: must be one of {', '.join(SOURCES)}")
    plumber_file = Path(plumber_file)
    unsure: AnnotationError | None = None
    try:
        parsed = parse_file(plumber_file)
    except AnnotationError as exc:
        if not exc.r_decides:
            raise
        unsure, parsed = exc, PlumberFile(str(plumber_file), ())
    if source == "annotations" or (source == "auto" and not r_available()):
        if unsure is not None:
            raise unsure
        reason = (
            "Rscript is not installed" if source == "auto" else f"{SOURCE_VARIABLE}=annotations"
        )
        return replace(parsed, warnings=_code_route_warnings(parsed, reason))
    try:
        return replace(_cached_query(plumber_file, attach), path=str(plumber_file))
    except RSyntaxError:
        raise
    except RouteReportError as exc:
        if source == "r":
            raise
        if unsure is not None:
            raise AnnotationError(
                unsure.path, unsure.line, f"{unsure.message} (R could not load the file: {exc})"
            ) from None
        return replace(
            parsed,
            warnings=(
                f"{plumber_file}: R could not load it here "
                f"({_first_line(exc)}); its routes are read from the "
                "annotations only",
            )
            + _code_route_warnings(parsed, "R could not load the file"),
        )


_QUERIES: dict[tuple, PlumberFile] = {}
_QUERIES_KEPT = 32


def _cached_query(plumber_file: Path, attach: tuple[str, ...]) -> PlumberFile:
    """query(), once per state of the app's folder: a process that builds several specs of
    one app (tests, a local cluster re-reading its file) starts R once for each version."""
    folder = plumber_file.resolve().parent
    state = tuple(
        sorted(
            (entry.name, entry.stat().st_mtime_ns, entry.stat().st_size)
            for entry in folder.iterdir()
            if entry.is_file()
        )
    )
    key = (str(plumber_file.resolve()), tuple(attach), plumber_file.read_bytes(), state)
    if key not in _QUERIES:
        if len(_QUERIES) >= _QUERIES_KEPT:
            _QUERIES.pop(next(iter(_QUERIES)))
        _QUERIES[key] = query(plumber_file, attach)
    return _QUERIES[key]


def _code_route_warnings(api: PlumberFile, reason: str) -> tuple[str, ...]:
    return tuple(
        f"{api.path}:{line}: a `#* @plumber` block may add routes that no annotation "
        f"shows (routes read without R: {reason}); the ingress routes only the "
        "annotated paths (set ingress.path_prefix, e.g. --path-prefix /, to route "
        "every path)"
        for line in api.router_blocks
    )


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


class RouteReportError(RuntimeError):
    """R could not load the plumber.R; the message is R's (file and line when it gave them)."""


class RNotAvailable(RouteReportError):
    """No Rscript on PATH."""


class RSyntaxError(RouteReportError):
    """R cannot parse the file; the message has file, line and column."""


def r_available() -> bool:
    return shutil.which("Rscript") is not None


def query(
    plumber_file: str | Path, attach: tuple[str, ...] = (), timeout: float = 180
) -> PlumberFile:
    """Load plumber_file with plumber in a fresh Rscript (attaching `attach` first, as the
    runtime does) and return plumber's route table. Only the file's own code runs."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise RNotAvailable("Rscript not found on PATH")
    given, plumber_file = Path(plumber_file), Path(plumber_file).resolve()
    given_jit = os.environ.get("R_ENABLE_JIT")
    environment = {
        **os.environ,
        "R_ENABLE_JIT": "0",
        _GIVEN_JIT: "" if given_jit is None else f"={given_jit}",
    }
    try:
        proc = subprocess.run(
            [rscript, str(REPORT_R), str(plumber_file), *attach],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=plumber_file.parent,
            env=environment,
        )
    except subprocess.TimeoutExpired:
        raise RouteReportError(
            f"{plumber_file}: R did not finish loading it within {timeout:g} s"
        ) from None
    if proc.returncode != 0 or _MARKER not in proc.stdout:
        message = "\n".join(proc.stderr.strip().splitlines()[-20:])
        if "syntax error: " in message:
            raise RSyntaxError(_syntax_error(given, message.split("syntax error: ", 1)[1]))
        raise RouteReportError(message or f"Rscript exited {proc.returncode}")
    return from_report(proc.stdout.rsplit(_MARKER, 1)[1], plumber_file)


def _syntax_error(plumber_file: Path, message: str) -> str:
    """R's "<file>:<line>:<col>: unexpected '}'" and the lines it shows, as file:line:col."""
    found = re.search(r":(\d+):(\d+): ([^\n]+)\n?(.*)", message, re.S)
    if not found:
        return f"{plumber_file}: R cannot parse it: {message}"
    line, column, what, context = found.groups()
    return f"{plumber_file}:{line}:{column}: R syntax error: {what}" + (
        f"\n{context.rstrip()}" if context.strip() else ""
    )


def from_report(report: str | bytes | dict, plumber_file: str | Path) -> PlumberFile:
    """The PlumberFile plumber's router describes (see the module docstring for the JSON)."""
    data = json.loads(report) if isinstance(report, (str, bytes)) else report
    if data.get("format") != REPORT_FORMAT:
        raise ValueError(f"unknown route report format {data.get('format')!r}")
    path = str(plumber_file)
    found = _Found(data["router"].get("file"))
    router = _router(data["router"], "", "", found)
    top = data["router"]
    filters = tuple(
        Filter(f["name"], f.get("line")) for f in top.get("filters", ()) if not f.get("default")
    )
    options = data.get("options") or {}
    try:
        source = Path(plumber_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        source = ""
    return PlumberFile(
        path=path,
        endpoints=tuple(found.endpoints),
        filters=filters,
        assets=tuple(found.assets),
        mounted=tuple(found.mounted),
        info=_info(data),
        router_blocks=router_lines(source),
        router=router,
        options=RouterOptions(
            trailing_slash=bool(options.get("trailing_slash")),
            method_not_allowed=bool(options.get("method_not_allowed", True)),
            shared_secret=bool(options.get("shared_secret")),
            custom_error=bool(top.get("custom_error")),
            debug=bool(data.get("debug")),
        ),
        openapi=data.get("openapi"),
        source="plumber",
    )


def join_paths(parent: str, child: str) -> str:
    """plumber's join_paths (routerSpecificationInternal): how a mounted path reads in full."""
    if not parent:
        return child
    return re.sub(r"/$", "", parent) + "/" + re.sub(r"^/", "", child)


@dataclass
class _Found:
    """What the walk over the router tree collects, flat, in plumber's order."""

    top_file: str | None
    endpoints: list[Endpoint] = field(default_factory=list)
    assets: list[Assets] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)  # full prefixes of mounted routers


def _router(node: dict, prefix: str, strip: str, found: _Found) -> RouterNode:
    """One router of the report. prefix: its full mount path as plumber documents it
    ("/a/b/"); strip: what plumber strips from a request path before this router sees it."""
    file = node.get("file")
    other_file = file if file and file != found.top_file else None
    own = tuple(_endpoint(ep, prefix, strip, other_file) for ep in node.get("endpoints", ()))
    found.endpoints.extend(own)
    mounts = []
    for mount in node.get("mounts", ()):
        sub, where = mount["router"], mount["prefix"]
        full = join_paths(prefix, where)
        if sub.get("kind") == "static":
            folder = Assets(sub["directory"], full.rstrip("/") or "/", None)
            found.assets.append(folder)
            mounts.append(Mount(where, assets=folder))
        else:
            found.mounted.append(full)
            mounts.append(Mount(where, router=_router(sub, full, strip + where[:-1], found)))
    answers_in_r = (
        any(not f.get("default") for f in node.get("filters", ()))
        or bool(_REQUEST_HOOKS & set(node.get("hooks", ())))
        or bool(node.get("custom_404"))
    )
    return RouterNode(own, tuple(mounts), answers_in_r)


def _endpoint(ep: dict, prefix: str, strip: str, file: str | None) -> Endpoint:
    params = tuple(
        PathParam(p["name"], p["type"], bool(p["is_array"])) for p in ep.get("path_params", ())
    )
    local = PathTemplate.from_plumber(ep["path"], ep["regex"], params)
    full_path = join_paths(prefix, ep["path"])
    regex = ep["regex"]
    if strip and regex.startswith("^/"):
        regex = "^" + re.escape(strip) + regex[1:]
    serializer = ep.get("serializer") or {}
    return Endpoint(
        verbs=tuple(ep["verbs"]),
        path=PathTemplate.from_plumber(full_path, regex, params) if strip else local,
        line=ep.get("line"),
        params=tuple(
            Param(
                p["name"],
                p.get("type") or "string",
                bool(p.get("is_array")),
                bool(p.get("required")),
                p.get("description") or "",
            )
            for p in ep.get("params", ())
        ),
        serializer=Serializer(serializer.get("name"), "", serializer.get("content_type")),
        parsers=tuple(ep.get("parsers") or ()),
        preempt=ep.get("preempt"),
        summary=ep.get("summary") or "",
        description=ep.get("description") or "",
        tags=tuple(ep.get("tags") or ()),
        responses={str(k): str(v) for k, v in _mapping(ep.get("responses")).items()},
        formals=tuple(_formal(f) for f in ep.get("formals", ())),
        in_code=bool(ep.get("in_code")),
        local=local if strip else None,
        file=file,
    )


def _formal(f: dict) -> Formal:
    has_default = not f.get("required", False)
    return Formal(
        f["name"],
        None,
        f.get("type") or "string",
        bool(f.get("is_array")),
        f.get("default") if f.get("has_default") else None,
        has_default,
    )


def _info(data: dict) -> ApiInfo:
    info = _mapping(data.get("info"))
    extra = {k: v for k, v in info.items() if k not in ("title", "description", "version")}
    tags = tuple(
        {"name": str(t.get("name", "")), "description": str(t.get("description", ""))}
        for t in data.get("tags") or ()
        if isinstance(t, dict)
    )
    return ApiInfo(
        str(info.get("title", "")),
        str(info.get("description", "")),
        str(info.get("version", "")),
        extra,
        tags,
    )


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}  # R's empty list() arrives as []
