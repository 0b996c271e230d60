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
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .annotations import router_lines
from .endpoints import (
    ApiInfo, Assets, Endpoint, Filter, Formal, Mount, Param, PathParam, PathTemplate,
    PlumberFile, RouterNode, RouterOptions, Serializer,
)

REPORT_R = Path(__file__).with_name("route_report.R")
REPORT_FORMAT = 1
_MARKER = "<<<plumbline-route-report>>>\n"
# Hooks that run for every request (and may change or answer it); "exit" runs at shutdown.
_REQUEST_HOOKS = frozenset({"preroute", "postroute", "preserialize", "postserialize"})


class RouteReportError(RuntimeError):
    """R could not load the plumber.R; the message is R's (file and line when it gave them)."""


class RNotAvailable(RouteReportError):
    """No Rscript on PATH."""


def r_available() -> bool:
    return shutil.which("Rscript") is not None


def query(plumber_file: str | Path, attach: tuple[str, ...] = (),
          timeout: float = 180) -> PlumberFile:
    """Load plumber_file with plumber in a fresh Rscript (attaching `attach` first, as the
    runtime does) and return plumber's route table. Only the file's own code runs."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise RNotAvailable("Rscript not found on PATH")
    plumber_file = Path(plumber_file).resolve()
    try:
        proc = subprocess.run([rscript, str(REPORT_R), str(plumber_file), *attach],
                              capture_output=True, text=True, timeout=timeout,
                              cwd=plumber_file.parent)
    except subprocess.TimeoutExpired:
        raise RouteReportError(f"{plumber_file}: R did not finish loading it within "
                               f"{timeout:g} s") from None
    if proc.returncode != 0 or _MARKER not in proc.stdout:
        message = proc.stderr.strip().splitlines()
        raise RouteReportError("\n".join(message[-20:]) or f"Rscript exited {proc.returncode}")
    return from_report(proc.stdout.rsplit(_MARKER, 1)[1], plumber_file)


def from_report(report: str | bytes | dict, plumber_file: str | Path) -> PlumberFile:
    """The PlumberFile plumber's router describes (see the module docstring for the JSON)."""
    data = json.loads(report) if isinstance(report, (str, bytes)) else report
    if data.get("format") != REPORT_FORMAT:
        raise ValueError(f"unknown route report format {data.get('format')!r}")
    path = str(plumber_file)
    endpoints: list[Endpoint] = []
    assets: list[Assets] = []
    router = _router(data["router"], "", "", endpoints, assets, data["router"].get("file"))
    top = data["router"]
    filters = tuple(Filter(f["name"], f.get("line")) for f in top.get("filters", ())
                    if not f.get("default"))
    options = data.get("options") or {}
    try:
        source = Path(plumber_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        source = ""
    return PlumberFile(
        path=path, endpoints=tuple(endpoints), filters=filters, assets=tuple(assets),
        info=_info(data), router_blocks=router_lines(source), router=router,
        options=RouterOptions(
            trailing_slash=bool(options.get("trailing_slash")),
            method_not_allowed=bool(options.get("method_not_allowed", True)),
            shared_secret=bool(options.get("shared_secret")),
            custom_error=bool(top.get("custom_error")), debug=bool(data.get("debug"))),
        openapi=data.get("openapi"), source="plumber")


def join_paths(parent: str, child: str) -> str:
    """plumber's join_paths (routerSpecificationInternal): how a mounted path reads in full."""
    if not parent:
        return child
    return re.sub(r"/$", "", parent) + "/" + re.sub(r"^/", "", child)


def _router(node: dict, prefix: str, strip: str, endpoints: list[Endpoint],
            assets: list[Assets], top_file: str | None) -> RouterNode:
    """One router of the report. prefix: its full mount path as plumber documents it
    ("/a/b/"); strip: what plumber strips from a request path before this router sees it."""
    file = node.get("file")
    other_file = file if file and file != top_file else None
    own = tuple(_endpoint(ep, prefix, strip, other_file) for ep in node.get("endpoints", ()))
    endpoints.extend(own)
    mounts = []
    for mount in node.get("mounts", ()):
        sub, where = mount["router"], mount["prefix"]
        full = join_paths(prefix, where)
        if sub.get("kind") == "static":
            folder = Assets(sub["directory"], full.rstrip("/") or "/", None)
            assets.append(folder)
            mounts.append(Mount(where, assets=folder))
        else:
            mounts.append(Mount(where, router=_router(sub, full, strip + where[:-1], endpoints,
                                                      assets, top_file)))
    answers_in_r = (any(not f.get("default") for f in node.get("filters", ()))
                    or bool(_REQUEST_HOOKS & set(node.get("hooks", ())))
                    or bool(node.get("custom_404")))
    return RouterNode(own, tuple(mounts), answers_in_r)


def _endpoint(ep: dict, prefix: str, strip: str, file: str | None) -> Endpoint:
    params = tuple(PathParam(p["name"], p["type"], bool(p["is_array"]))
                   for p in ep.get("path_params", ()))
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
        params=tuple(Param(p["name"], p.get("type") or "string", bool(p.get("is_array")),
                           bool(p.get("required")), p.get("description") or "")
                     for p in ep.get("params", ())),
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
    return Formal(f["name"], None, f.get("type") or "string", bool(f.get("is_array")),
                  f.get("default") if f.get("has_default") else None, has_default)


def _info(data: dict) -> ApiInfo:
    info = _mapping(data.get("info"))
    extra = {k: v for k, v in info.items() if k not in ("title", "description", "version")}
    tags = tuple({"name": str(t.get("name", "")), "description": str(t.get("description", ""))}
                 for t in data.get("tags") or () if isinstance(t, dict))
    return ApiInfo(str(info.get("title", "")), str(info.get("description", "")),
                   str(info.get("version", "")), extra, tags)


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}  # R's empty list() arrives as []
