"""The app's HTTP paths as Ingress rules: what a cluster's Ingress and the local HAProxy route.

Both backends route exactly these rules, matched as Kubernetes matches them (Exact, and
Prefix element by element), so an app reachable locally is reachable the same way in a
cluster.
"""

from __future__ import annotations

from plumbline.platform.spec.appspec import AppSpec, SpecError, check_http_path

DOCS_PREFIX = "/__docs__"
OPENAPI_PATH = "/openapi.json"


def _covers(prefix: str, path: str) -> bool:
    """Does an Ingress Prefix rule match `path` (element-wise, as Kubernetes defines it)?"""
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def ingress_paths(spec: AppSpec) -> list[dict[str, str]]:
    """[{path, pathType}]: the API's paths as Ingress rules.

    The paths are plumber's own route table's (see plumbline.routes), routes added in R code
    included. Fixed paths are Exact; a typed path such as /users/<id:int> becomes the Prefix
    of its static part (/users); static folders, routers mounted in R code and the docs are
    Prefixes; paths another Prefix already covers are dropped. /metrics, /livez and /readyz stay inside the cluster.
    """
    if spec.ingress.path_prefix:
        return [
            {"path": path, "pathType": "Prefix"}
            for path in (spec.ingress.path_prefix, *spec.ingress.path_aliases)
        ]
    wanted: list[tuple[str, str, str]] = []  # (path, type, where)
    api = spec.api
    for ep in api.endpoints if api else ():
        where = f"{ep.file or spec.plumber_file}:{ep.line}" if ep.line else f"route {ep.route}"
        if ep.path.is_dynamic:
            wanted.append((ep.path.static_prefix.rstrip("/") or "/", "Prefix", where))
        else:
            wanted.append((ep.path.raw, "Exact", where))
    for assets in api.assets if api else ():
        where = f"{spec.plumber_file}:{assets.line}" if assets.line else f"static {assets.mount}"
        wanted.append((assets.mount.rstrip("/") or "/", "Prefix", where))
    for prefix in api.mounted if api else ():  # a mounted router answers all under it
        wanted.append((prefix.rstrip("/") or "/", "Prefix", f"router mounted at {prefix}"))
    if spec.ingress.expose_docs:
        wanted += [(DOCS_PREFIX, "Prefix", "docs"), (OPENAPI_PATH, "Exact", "docs")]
    for path, _, where in wanted:
        check_http_path(path, where)
    prefixes = [p for p, kind, _ in wanted if kind == "Prefix"]
    rules: list[dict[str, str]] = []
    for path, kind, _ in wanted:
        covered_by = [p for p in prefixes if _covers(p, path) and (kind == "Exact" or p != path)]
        if covered_by or {"path": path, "pathType": kind} in rules:
            continue
        rules.append({"path": path, "pathType": kind})
    if not rules:
        raise SpecError(
            f"{spec.plumber_file}: no endpoint paths to route; set ingress.path_prefix "
            "or disable the ingress"
        )
    return rules


def ingress_warnings(spec: AppSpec) -> list[str]:
    """What per-path Ingress rules might not route: with plumber's own route table (R
    installed) nothing; read from the annotations alone, the routes `#* @plumber` blocks may
    add in R code (the reader says why it had to, e.g. R could not load the file here)."""
    api = spec.api
    if not (spec.ingress.enabled and api) or spec.ingress.path_prefix:
        return []
    if api.warnings or api.source == "plumber":
        return list(api.warnings)
    return [
        f"{spec.plumber_file}:{line}: a `#* @plumber` block may add routes that no "
        "annotation shows; the ingress routes only the annotated paths (set "
        "ingress.path_prefix, e.g. --path-prefix /, to route every path)"
        for line in api.router_blocks
    ]
