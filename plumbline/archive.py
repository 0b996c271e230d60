"""Safe extraction of an app bundle (a gzip-compressed tar of the app's folder).

Shared by the server (a version folder per upload) and the runtime's `plumbline prepare`
(a pod unpacking the bundle it fetched), so it lives beside neither. Extraction trusts
nothing in the archive: every member must be a plain file, a folder or a link that stays
inside the app's folder; names may not be absolute or climb out with `..`; the total size
and the number of files are capped before anything is written.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1024 * 1024


class BundleError(ValueError):
    """A bundle that cannot be stored or deployed; the message says why, for the user."""


@dataclass(frozen=True)
class Limits:
    max_bundle_size: int
    max_expanded_size: int
    max_files: int


def extract(archive: Path, dest: Path, limits: Limits) -> None:
    """Extract `archive` into the new folder `dest`, or raise BundleError and leave no `dest`."""
    with archive.open("rb") as f:
        if f.read(2) != GZIP_MAGIC:
            raise BundleError("the bundle is not a gzip-compressed tar archive (.tar.gz)")
    work = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _checked_members(tar, limits)
                _write_members(tar, members, work)
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, BundleError):
                raise
            raise BundleError(f"the bundle is not a valid .tar.gz archive: {exc}") from None
        os.replace(work, dest)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _clean_name(raw: str) -> str:
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if "\x00" in raw or raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise BundleError(f"the bundle has a member with an absolute path: {raw!r}")
    if any(part == ".." for part in name.split("/")):
        raise BundleError(f"the bundle has a member that escapes the app folder: {raw!r}")
    return posixpath.normpath(name) if name else "."


def _checked_members(tar: tarfile.TarFile, limits: Limits) -> list[tuple[str, tarfile.TarInfo]]:
    members: list[tuple[str, tarfile.TarInfo]] = []
    total = 0
    for member in tar:
        name = _clean_name(member.name)
        if len(members) >= limits.max_files:
            raise BundleError(
                f"the bundle has more than {limits.max_files} files (--max-bundle-files)"
            )
        if member.issym() or member.islnk():
            target = member.linkname
            base = posixpath.dirname(name) if member.issym() else ""
            resolved = posixpath.normpath(posixpath.join(base, target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                kind = "symbolic" if member.issym() else "hard"
                raise BundleError(
                    f"the bundle has a {kind} link pointing outside the app "
                    f"folder: {member.name!r} -> {target!r}"
                )
        elif member.isfile():
            total += member.size
            if total > limits.max_expanded_size:
                raise BundleError(
                    f"the bundle expands to more than "
                    f"{limits.max_expanded_size} bytes (--max-expanded-size)"
                )
        elif not member.isdir():
            raise BundleError(
                f"the bundle has a member that is not a file, folder or link: {member.name!r}"
            )
        if name != ".":
            members.append((name, member))
    return members


def _write_members(tar: tarfile.TarFile, members, root: Path) -> None:
    real_root = os.path.realpath(root)

    def target_path(name: str) -> Path:
        path = root / name
        parent = os.path.realpath(path.parent)
        if parent != real_root and not parent.startswith(real_root + os.sep):
            raise BundleError(f"the bundle writes through a link outside the app folder: {name!r}")
        if path.is_symlink() or path.is_file():
            path.unlink()
        return path

    links = []
    for name, member in members:
        if member.isdir():
            path = root / name
            if not path.is_dir():
                target_path(name)
                path.mkdir(parents=True, exist_ok=True)
            continue
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if member.issym():
            links.append((name, member))  # last, so no file is written through a link
            continue
        path = target_path(name)
        if member.islnk():
            source = root / _clean_name(member.linkname)
            if not source.is_file() or source.is_symlink():
                raise BundleError(
                    f"the bundle has a hard link to a missing file: "
                    f"{member.name!r} -> {member.linkname!r}"
                )
            shutil.copyfile(source, path)
            continue
        extracted = tar.extractfile(member)
        assert extracted is not None  # a regular file has contents
        with extracted, open(path, "xb") as out:
            shutil.copyfileobj(extracted, out, CHUNK)
        os.chmod(path, 0o755 if member.mode & 0o111 else 0o644)
    for name, member in links:
        path = target_path(name)
        os.symlink(member.linkname, path)
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise BundleError(
                f"the bundle has a symbolic link pointing outside the app folder: "
                f"{member.name!r} -> {member.linkname!r}"
            )
