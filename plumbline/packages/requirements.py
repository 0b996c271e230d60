"""The R packages an app folder asks for: rsconnect's manifest.json, else renv's renv.lock.

Both name every package with its exact version (rsconnect from the publishing R session,
renv from its snapshot) and, when known, the repository it came from. Everything read here
is data handed to R later as data (a DCF file), never as code, so names, versions and URLs
are checked against what R and repositories actually use, and anything else is refused
with the file and the package named.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
RENV_LOCK = "renv.lock"
MAX_FILE = 8 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")
_VERSION = re.compile(r"^[0-9]+([.-][0-9]+)+$")
_URL = re.compile(r"^(https?|file)://[^\s\"'\\]+$")


class RequirementsError(ValueError):
    """A manifest.json or renv.lock that cannot be used; the message names file and package."""


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str
    source: str = ""  # CRAN, Repository, Bioconductor, github, ... as the file says
    repository: str = ""  # URL of the repository it was installed from, when known

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Requirements:
    file: str  # which file they come from
    packages: tuple[Requirement, ...]
    repositories: tuple[str, ...]  # the file's own repository URLs, in its order

    def __bool__(self) -> bool:
        return bool(self.packages)


def lists_requirements(folder: Path) -> bool:
    """Whether the folder holds a file find_requirements() reads (no reading: a quick look)."""
    return any((folder / name).is_file() for name in (MANIFEST, RENV_LOCK))


def find_requirements(folder: Path) -> Requirements | None:
    """The folder's manifest.json (rsconnect writes it at publish time), else its renv.lock;
    None when it has neither. RequirementsError when the one found is unusable."""
    for name, read in ((MANIFEST, _from_manifest), (RENV_LOCK, _from_renv_lock)):
        path = folder / name
        if path.is_file() and not path.is_symlink():
            if path.stat().st_size > MAX_FILE:
                raise RequirementsError(f"{name} is larger than {MAX_FILE // 2**20} MiB")
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise RequirementsError(f"{name} is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise RequirementsError(f"{name} must hold a JSON object")
            return read(data)
    return None


def _from_manifest(data: dict) -> Requirements:
    packages = data.get("packages")
    if packages in (None, "NA") or (isinstance(packages, list) and not packages):
        return Requirements(MANIFEST, (), ())
    if not isinstance(packages, dict):
        raise RequirementsError(f"{MANIFEST}: 'packages' must be an object of packages")
    found, repos = [], []
    for name, info in packages.items():
        if not isinstance(info, dict):
            raise RequirementsError(f"{MANIFEST}: package {name!r} must be an object")
        found_description = info.get("description")
        description: dict = found_description if isinstance(found_description, dict) else {}
        version = description.get("Version", info.get("Version"))
        repository = _text(info.get("Repository"))
        found.append(_requirement(MANIFEST, name, version, _text(info.get("Source")), repository))
        if repository and repository not in repos:
            repos.append(repository)
    return Requirements(MANIFEST, tuple(sorted(found, key=lambda r: r.name)), tuple(repos))


def _from_renv_lock(data: dict) -> Requirements:
    found_r = data.get("R")
    r: dict = found_r if isinstance(found_r, dict) else {}
    named: dict[str, str] = {}
    for repo in r.get("Repositories") or []:
        if isinstance(repo, dict) and _text(repo.get("URL")):
            url = _checked_url(RENV_LOCK, "R.Repositories", _text(repo.get("URL")))
            named[_text(repo.get("Name")) or url] = url
    packages = data.get("Packages") or {}
    if not isinstance(packages, dict):
        raise RequirementsError(f"{RENV_LOCK}: 'Packages' must be an object of packages")
    found = []
    for name, info in packages.items():
        if not isinstance(info, dict):
            raise RequirementsError(f"{RENV_LOCK}: package {name!r} must be an object")
        repository = _text(info.get("Repository"))
        url = named.get(repository, repository if _URL.match(repository) else "")
        found.append(
            _requirement(RENV_LOCK, name, info.get("Version"), _text(info.get("Source")), url)
        )
    return Requirements(
        RENV_LOCK, tuple(sorted(found, key=lambda r: r.name)), tuple(dict.fromkeys(named.values()))
    )


def _requirement(file: str, name, version, source: str, repository: str) -> Requirement:
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 100:
        raise RequirementsError(f"{file}: {name!r} is not an R package name")
    if not isinstance(version, str) or not _VERSION.match(version) or len(version) > 50:
        raise RequirementsError(f"{file}: package {name}: {version!r} is not a package version")
    if repository:
        repository = _checked_url(file, f"package {name}", repository)
    return Requirement(name, version, source[:50], repository)


def _checked_url(file: str, where: str, url: str) -> str:
    url = url.rstrip("/")
    if not _URL.match(url) or len(url) > 500:
        raise RequirementsError(f"{file}: {where}: {url!r} is not a repository URL")
    return url


def _text(value) -> str:
    return value.strip() if isinstance(value, str) and value.strip() not in ("", "NA") else ""


def parse_repos(values) -> tuple[str, ...]:
    """Repository URLs from a setting: "URL[,URL...]" or "NAME=URL" items (R's own notation)."""
    items = values if isinstance(values, (list, tuple)) else str(values).split(",")
    urls = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        _, sep, url = text.partition("=")
        url = url.strip() if sep and "://" not in text.split("=", 1)[0] else text
        urls.append(_checked_url("repos", "setting", url))
    return tuple(dict.fromkeys(urls))
