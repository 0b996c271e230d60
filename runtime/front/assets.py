"""Serve each static folder (`#* @assets ./dir /mount`, `pr_static()`) from Python, never
outside that folder. Which folder a request is for is the router's call (routing.py).

The path is checked as sent (still percent-encoded): encoded slashes, backslashes, NUL and
any `.`/`..` segment (also when written %2e%2e) are refused with 403 before touching the
disk; then the file's real path (symlinks resolved) must still lie inside the folder's real
path, else 403. Missing files are 404. Only GET and HEAD.
"""

from __future__ import annotations

import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from starlette.responses import FileResponse

from plumbline.endpoints import Assets
from plumbline.runtime.front.errors import PLUMBER_NOT_FOUND, send_error

_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c|00)", re.I)
# plumber:::knownContentTypes, verbatim: assets get the same Content-Type as under plumber.
_PLUMBER_TYPES = {
    "html": "text/html; charset=UTF-8",
    "htm": "text/html; charset=UTF-8",
    "js": "text/javascript",
    "css": "text/css",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "txt": "text/plain",
    "pdf": "application/pdf",
    "ps": "application/postscript",
    "xml": "application/xml",
    "m3u": "audio/x-mpegurl",
    "m4a": "audio/mp4a-latm",
    "m4b": "audio/mp4a-latm",
    "m4p": "audio/mp4a-latm",
    "mp3": "audio/mpeg",
    "wav": "audio/x-wav",
    "m4u": "video/vnd.mpegurl",
    "m4v": "video/x-m4v",
    "mp4": "video/mp4",
    "mpeg": "video/mpeg",
    "mpg": "video/mpeg",
    "avi": "video/x-msvideo",
    "mov": "video/quicktime",
    "ogg": "application/ogg",
    "swf": "application/x-shockwave-flash",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
    "potx": "application/vnd.openxmlformats-officedocument.presentationml.template",
    "ppsx": "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "sldx": "application/vnd.openxmlformats-officedocument.presentationml.slide",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    "xlam": "application/vnd.ms-excel.addin.macroEnabled.12",
    "xlsb": "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
    "feather": "application/vnd.apache.arrow.file",
    "parquet": "application/vnd.apache.parquet",
    "rds": "application/rds",
    "tsv": "application/tab-separated-values",
    "csv": "application/csv",
    "json": "application/json",
    "yml": "application/yaml",
    "yaml": "application/yaml",
}


@dataclass(frozen=True)
class Folder:
    prefix: str  # URL prefix without a trailing slash ("" for "/")
    root: str  # real path of the folder
    route: str  # label for metrics and logs


class AssetFolders:
    def __init__(self, assets: tuple[Assets, ...], base_dir: Path):
        # plumber resolves the folder against the working directory, the plumber.R's folder
        self._folders = {
            a: Folder(a.mount.rstrip("/"), os.path.realpath(base_dir / a.directory), a.mount)
            for a in assets
        }

    def folder(self, assets: Assets) -> Folder:
        return self._folders[assets]

    def is_safe(self, folder: Folder, rest: str) -> bool:
        return _resolve(folder.root, rest) is not None

    async def serve(self, scope, receive, send, folder: Folder, rest: str) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_error(
                send, 405, "405 - Method Not Allowed", headers=[(b"allow", b"GET, HEAD")]
            )
            return
        target = _resolve(folder.root, rest)
        if target is None:
            await send_error(send, 403, "forbidden path")
            return
        if os.path.isdir(target):
            target = os.path.join(target, "index.html")
        if not os.path.isfile(target):
            await send_error(send, 404, PLUMBER_NOT_FOUND)
            return
        # Content-Type as a header, not media_type: Starlette would append a charset
        response = FileResponse(target, headers={"content-type": _content_type(target)})
        await response(scope, receive, send)


def _resolve(root: str, rest: str) -> str | None:
    """Real path of `rest` inside `root`, or None when it is or points outside."""
    if _ENCODED_SEPARATOR.search(rest) or "\\" in rest:
        return None
    segments = [unquote(s) for s in rest.split("/") if s]
    if any(s in (".", "..") or "\\" in s or "\x00" in s or "/" in s for s in segments):
        return None
    target = os.path.realpath(os.path.join(root, *segments))
    if target != root and not target.startswith(root + os.sep):
        return None
    return target


def _content_type(path: str) -> str:
    """plumber's getContentType: its own table, then a MIME map, else octet-stream."""
    ext = os.path.splitext(path)[1][1:].lower()
    return _PLUMBER_TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"
