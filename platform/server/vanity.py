"""Vanity paths: an app served at a path of its own (`/parity/`) besides `/content/<name>/`.

What a vanity path may be, in one place: the normal form (Connect's, a leading and a trailing
slash), the paths the server and the apps' ingress keep for themselves, and the rule that no
two apps' vanity paths may be equal or one inside the other (a request must have one app).
The API (vanity_api.py) stores it; deploys.py routes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_LENGTH = 200
# One path element: lower-case letters, digits, '-', '_', '.'; a letter or digit at each end
# (so never '.' or '..', and nothing that needs escaping in a URL, HAProxy or an Ingress).
_ELEMENT = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
# Paths under these (whole elements) belong to the server, its dashboard or the apps' ingress;
# every path starting with /__ too (/__api__, /__docs__, ...), as Connect keeps them.
RESERVED = (
    "/content",  # every app's own path
    "/connect",
    "/static",  # the dashboard's files
    "/favicon.ico",
    "/openapi.json",
    "/metrics",
    "/livez",
    "/readyz",
    "/healthz",
    "/health",
    "/robots.txt",
)


class VanityError(ValueError):
    """A vanity path that cannot be used; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def normalise(raw: object) -> str:
    """The path in its one form, "/parity/" or "/teams/parity/"; VanityError if it is not
    a path a vanity path may be (malformed or reserved). A missing leading or trailing slash
    is added."""
    if not isinstance(raw, str) or not raw:
        raise VanityError('path must be a non-empty string such as "/parity/"')
    path = raw if raw.startswith("/") else "/" + raw
    path = path if path.endswith("/") else path + "/"
    if path == "/":
        raise VanityError("the root path / cannot be a vanity path")
    if "//" in path:
        raise VanityError(f"{raw!r} has an empty path element ('//')")
    if len(path) > MAX_LENGTH:
        raise VanityError(f"a vanity path has at most {MAX_LENGTH} characters")
    check_not_reserved(path)
    for element in path[1:-1].split("/"):
        if element in (".", ".."):
            raise VanityError(f"{raw!r}: '.' and '..' cannot be path elements")
        if _ELEMENT.match(element.lower()) and element != element.lower():
            raise VanityError(
                f"{raw!r}: vanity paths are lower-case (did you mean {path.lower()!r}?)"
            )
        if not _ELEMENT.match(element):
            raise VanityError(
                f"{raw!r}: each path element must be lower-case letters, digits, '-', '_' "
                "or '.', starting and ending with a letter or digit"
            )
    return path


def check_not_reserved(path: str) -> None:
    if path.startswith("/__"):
        raise VanityError(f"{path} is reserved: paths starting with /__ are the server's")
    for prefix in RESERVED:
        if path.startswith(prefix + "/"):
            raise VanityError(f"{path} is reserved: {prefix} belongs to the server")


def overlapping(path: str, taken: Iterable[str]) -> list[str]:
    """The vanity paths in `taken` equal to `path`, inside it or around it."""
    return [other for other in taken if other.startswith(path) or path.startswith(other)]


def ingress_alias(path: str) -> str:
    """As an Ingress Prefix rule and a --root-path alias: without the trailing slash."""
    return path.rstrip("/")
