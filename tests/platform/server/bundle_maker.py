"""Bundles as tests need them: good ones from a folder, and each kind of bad one."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

PLUMBER_R = """\
#* @serializer text
#* @get /hello
function() "hello v{version}"
"""


def app_folder(root: Path, version: int = 1, extra: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "plumber.R").write_text(PLUMBER_R.format(version=version))
    for name, data in (extra or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return out.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, data


def link_member(name: str, target: str, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def good_bundle(version: int = 1, extra: dict[str, bytes] | None = None) -> bytes:
    members = [file_member("plumber.R", PLUMBER_R.format(version=version).encode())]
    members += [file_member(name, data) for name, data in (extra or {}).items()]
    return tar_gz(members)
