"""The OpenAPI 3.0.3 document of a plumber.R, built once from plumber's route table.

Shaped like plumber's own /openapi.json (same info defaults, path templates, parameter
schemas, the function's undocumented arguments, 500/default responses) plus request bodies
for POST/PUT/PATCH, so Swagger UI can send them. Every route is there: annotated ones, routes
added in R code and mounted routers' (under their prefix). When the app customises its spec
in R (pr_set_api_spec()), the document is plumber's own, as the worker reported it.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from plumbline.endpoints import Endpoint, Param, PlumberFile, Serializer, formal_type, r_literal

_FORMATS = {"integer": "int64", "number": "double"}
_PARSER_TYPES = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
    "multi": "multipart/form-data",
    "text": "text/plain",
    "octet": "application/octet-stream",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "yaml": "application/yaml",
    "rds": "application/rds",
    "geojson": "application/geo+json",
}
_STRUCTURED_BODIES = {
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
}
_SERIALIZER_TYPES = {
    "json": "application/json",
    "unboxedJSON": "application/json",
    "geojson": "application/geo+json",
    "text": "text/plain",
    "cat": "text/plain",
    "print": "text/plain",
    "format": "text/plain",
    "html": "text/html",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "yaml": "text/x-yaml",
    "png": "image/png",
    "agg_png": "image/png",
    "jpeg": "image/jpeg",
    "agg_jpeg": "image/jpeg",
    "svg": "image/svg+xml",
    "svglite": "image/svg+xml",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "agg_tiff": "image/tiff",
    "webp": "image/webp",
    "pdf": "application/pdf",
    "rds": "application/rds",
    "octet": "application/octet-stream",
    "htmlwidget": "text/html",
    "feather": "application/feather",
    "parquet": "application/parquet",
    "excel": "application/vnd.ms-excel",
    "arrow_ipc_stream": "application/vnd.apache.arrow.stream",
}
_BODY_VERBS = ("POST", "PUT", "PATCH")
_NOT_PARAMS = {"req", "res", "..."}  # plumber supplies these; never client parameters


# Behind a path prefix, Swagger UI's "Try it out" must call through the prefix the page was
# opened by: the content path or a vanity path, which a stripping proxy hides from the app.
# A relative server URL is resolved against where the document was fetched
# (<prefix>/openapi.json), so it names each prefix the document is read through.
PREFIXED_SERVERS = [{"url": "."}]


def build(spec: PlumberFile, prefixed: bool = False) -> dict:
    paths: dict[str, dict] = {}
    for ep in spec.endpoints:
        item = paths.setdefault(ep.path.openapi_path, {})
        for verb in ep.verbs:
            item.setdefault(verb.lower(), _operation(ep, verb))
    document: dict[str, object] = {
        "openapi": "3.0.3",
        "info": {
            "title": spec.info.title or "API Title",
            "description": spec.info.description or "API Description",
            "version": spec.info.version or "1.0.0",
            **spec.info.extra,
        },
    }
    if spec.info.tags:
        document["tags"] = [dict(tag) for tag in spec.info.tags]
    document["paths"] = paths
    if prefixed:
        document["servers"] = PREFIXED_SERVERS
    return document


def render(spec: PlumberFile, prefixed: bool = False) -> bytes:
    if spec.openapi is not None:  # the app's own spec, as plumber serves it
        if not prefixed:
            return spec.openapi.encode()
        own = json.loads(spec.openapi)
        own.setdefault("servers", PREFIXED_SERVERS)
        return json.dumps(own, separators=(",", ":")).encode()
    return json.dumps(build(spec, prefixed), separators=(",", ":")).encode()


def _operation(ep: Endpoint, verb: str) -> dict:
    op: dict = {}
    if ep.summary:
        op["summary"] = ep.summary
    op["description"] = ep.description
    if ep.tags:
        op["tags"] = list(ep.tags)
    params, defaults = _params(ep)
    documented = {p.name: p for p in params}
    in_path = {p.name for p in ep.path.params}
    parameters = []
    for p in ep.path.params:
        doc = documented.get(p.name)
        param = {
            "name": p.name,
            "in": "path",
            "required": True,
            "schema": _schema(p.type, p.is_array, defaults.get(p.name)),
        }
        if doc and doc.description:
            param["description"] = doc.description
        if p.is_array:
            param.update(style="simple", explode=False)
        parameters.append(param)
    others = [p for p in params if p.name not in in_path]
    if verb in _BODY_VERBS:
        op["requestBody"] = _request_body(ep, others, defaults)
    else:
        for p in others:
            param = {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "schema": _schema(p.type, p.is_array, defaults.get(p.name)),
            }
            if p.description:
                param["description"] = p.description
            if p.is_array:
                param.update(style="form", explode=True)
            parameters.append(param)
    op["parameters"] = parameters
    op["responses"] = _responses(ep)
    return op


def _params(ep: Endpoint) -> tuple[list[Param], dict[str, object]]:
    """The documented @params and then the function's other arguments, as plumber lists
    them: an argument without a default is required; a literal default gives the type and
    the schema's default. Returns the params and those defaults by name."""
    formals = {f.name: f for f in ep.formals if f.name not in _NOT_PARAMS}
    params = [
        replace(p, required=formals[p.name].required) if p.name in formals else p for p in ep.params
    ]
    documented = {p.name for p in ep.params}
    defaults = {}
    for formal in formals.values():
        if formal.type is not None:  # plumber evaluated the default (route report)
            value = formal.value
        else:
            literal = r_literal(formal.default)
            value = literal[1] if literal is not None else None
        if value is not None and not isinstance(value, dict):
            defaults[formal.name] = value
        if formal.name not in documented:
            kind, is_array = formal_type(formal)
            params.append(Param(formal.name, kind, is_array, required=formal.required))
    return params, defaults


def _schema(kind: str, is_array: bool, default: object = None) -> dict:
    if kind == "file":
        one = {"type": "string", "format": "binary"}
    else:
        one = {"type": kind}
        if kind in _FORMATS:
            one["format"] = _FORMATS[kind]
    schema = {"type": "array", "items": one} if is_array else one
    if default is not None:
        # plumber writes `y = 1` of a `[dbl]` parameter as `"default": 1`, which OpenAPI
        # tools refuse for an array: [1]
        schema["default"] = [default] if is_array and not isinstance(default, list) else default
    return schema


def _request_body(ep: Endpoint, params, defaults: dict[str, object]) -> dict:
    types = [_PARSER_TYPES[p] for p in ep.parsers if p in _PARSER_TYPES] or ["application/json"]
    content = {}
    for media in types:
        if media in _STRUCTURED_BODIES:
            schema: dict = {
                "type": "object",
                "properties": {
                    p.name: {
                        **_schema(p.type, p.is_array, defaults.get(p.name)),
                        **({"description": p.description} if p.description else {}),
                    }
                    for p in params
                },
            }
            required = [p.name for p in params if p.required]
            if required:
                schema["required"] = required
        elif media == "text/plain":
            schema = {"type": "string"}
        else:
            schema = {"type": "string", "format": "binary"}
        content[media] = {"schema": schema}
    return {"required": any(p.required for p in params), "content": content}


def _responses(ep: Endpoint) -> dict:
    media = _serializer_type(ep.serializer)
    ok_schema = {"type": "object"} if media == "application/json" else {"type": "string"}
    ok = {"description": ep.responses.get("200", "OK"), "content": {media: {"schema": ok_schema}}}
    responses = {"200": ok}
    for code, description in ep.responses.items():
        if code != "200":
            responses[code] = {"description": description}
    responses.setdefault(
        "500",
        {
            "description": "Internal Server Error",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
                }
            },
        },
    )
    responses.setdefault("default", {"description": "Default response."})
    return responses


def _serializer_type(serializer: Serializer | None) -> str:
    if serializer is None:
        return "application/json"
    if serializer.content_type:  # as plumber's responsesSpecification reads it
        return re.split(r"[ ;]", serializer.content_type)[0]
    if serializer.name == "contentType":
        m = re.search(r"type\s*=\s*[\"']([^\"']+)[\"']", serializer.args)
        return m.group(1) if m else "application/octet-stream"
    return _SERIALIZER_TYPES.get(serializer.name or "", "application/octet-stream")
