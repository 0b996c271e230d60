"""Content-addressed R libraries: the packages an app needs beyond what R has, installed
once per exact set and shared by every app that needs the same set.

A library's key is the sha256 of R's version, R's platform, the operating system and the
exact list of packages with their versions (what R lacks, or has in another version). It
lives at CACHE/<key>/ and is complete when its `plumbline-library.json` exists: it is
installed into a staging folder under CACHE/.staging and renamed into place, so a reader
never sees half a library. Installs of one key are serialised by a lock file
(CACHE/.locks/<key>.lock, flock); when two machines share the cache over a filesystem whose
locks do not reach each other, the rename still lets exactly one result win.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform as _platform
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from plumbline.packages.requirements import Requirement, Requirements, find_requirements

Emit = Callable[[str], None]
HERE = Path(__file__).resolve().parent
MARKER = "plumbline-library.json"
# Packages the runtime itself serves the app with: the image's version is kept, since the
# runtime's bridge is written against it (the bundle's wish is noted, not followed).
RUNTIME_PROVIDED = frozenset({"plumber"})
_TAIL = 40  # lines of R's output kept for the error message


class PackageError(RuntimeError):
    """Packages that cannot be provided; the message says which and gives R's reasons."""


@dataclass(frozen=True)
class RInfo:
    """The R that will run the app: version, platform and what it has installed."""

    version: str
    platform: str
    os: str
    lib_paths: tuple[str, ...]
    installed: dict[str, str] = field(default_factory=dict)  # package -> version


@dataclass(frozen=True)
class Plan:
    """What one app needs installed beyond `r`: its library's key follows from it."""

    r: RInfo
    source: str  # manifest.json or renv.lock
    listed: int  # packages the file lists
    wanted: tuple[Requirement, ...]  # to install: missing, or another version installed
    notes: tuple[str, ...] = ()

    @property
    def key_document(self) -> dict:
        return {
            "r_version": self.r.version,
            "r_platform": self.r.platform,
            "os": self.r.os,
            "packages": sorted(r.pin for r in self.wanted),
        }

    @property
    def key(self) -> str:
        text = json.dumps(self.key_document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def os_release(path: Path = Path("/etc/os-release")) -> str:
    """The distribution and its version ("debian-12"): binary packages are built for one."""
    fields = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip().strip('"')
    name = fields.get("ID") or _platform.system().lower()
    return f"{name}-{fields.get('VERSION_ID', '')}".rstrip("-")


def rscript() -> str:
    found = shutil.which("Rscript")
    if found is None:
        raise PackageError("Rscript is not installed: R is needed to install R packages")
    return found


def r_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment R runs with for inspection and installs: the caller's (R_LIBS
    included, which is part of what R has), in English so messages read the same everywhere."""
    env = dict(os.environ if environ is None else environ)
    env.update(LANGUAGE="en", LC_MESSAGES="C")
    return env


def inspect_r(environ: dict[str, str] | None = None) -> RInfo:
    proc = subprocess.run(
        [rscript(), "--no-init-file", str(HERE / "inspect.R")],
        capture_output=True,
        text=True,
        timeout=300,
        env=r_environment(environ),
    )
    if proc.returncode != 0:
        raise PackageError(f"R could not list its installed packages: {proc.stderr.strip()}")
    version = r_platform = ""
    libs: list[str] = []
    installed: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        kind, *rest = line.split("\t")
        if kind == "R" and len(rest) == 2:
            version, r_platform = rest
        elif kind == "L" and rest:
            libs.append(rest[0])
        elif kind == "P" and len(rest) == 3:
            installed.setdefault(rest[0], rest[1])
    if not version:
        raise PackageError(f"R did not say its version: {proc.stdout[-500:]}")
    return RInfo(version, r_platform, os_release(), tuple(libs), installed)


def plan_for(requirements: Requirements, r: RInfo) -> Plan:
    wanted, notes = [], []
    for req in requirements.packages:
        have = r.installed.get(req.name)
        if have == req.version:
            continue
        if req.name in RUNTIME_PROVIDED and have is not None:
            notes.append(
                f"{req.name} {req.version} is listed; the runtime serves with its own "
                f"{req.name} {have}"
            )
            continue
        wanted.append(req)
    return Plan(r, requirements.file, len(requirements.packages), tuple(wanted), tuple(notes))


def repositories(
    requirements: Requirements, configured: tuple[str, ...], *, allow_file: bool = True
) -> tuple[str, ...]:
    """Where to install from: the configured repositories when there are any (an operator's
    mirror or binary repository), else the bundle's own. `allow_file`: whether the bundle's
    own file:// repositories count (a server never reads its own disk for a bundle)."""
    if configured:
        return configured
    own = requirements.repositories
    if not allow_file:
        own = tuple(url for url in own if not url.startswith("file:"))
    return own


class LibraryCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def find(self, plan: Plan) -> Path | None:
        path = self.path(plan.key)
        return path if (path / MARKER).is_file() else None

    @contextlib.contextmanager
    def _locked(self, key: str, emit: Emit) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{key}.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                emit(f"R packages: another process is installing library {key}; waiting")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def install(
        self, plan: Plan, repos: tuple[str, ...], emit: Emit, environ: dict[str, str] | None = None
    ) -> Path:
        """The plan's library, installed unless another process did it meanwhile."""
        with self._locked(plan.key, emit):
            found = self.find(plan)
            if found is not None:
                emit(f"R packages: library {plan.key} was installed meanwhile; using it")
                return found
            staging_root = self.root / ".staging"
            staging_root.mkdir(parents=True, exist_ok=True)
            staging = staging_root / f"{plan.key}-{os.getpid()}-{secrets.token_hex(4)}"
            staging.mkdir()
            try:
                started = time.monotonic()
                _run_installer(plan, repos, staging, emit, environ)
                document = {
                    **plan.key_document,
                    "key": plan.key,
                    "repositories": list(repos),
                    "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "seconds": round(time.monotonic() - started, 1),
                }
                (staging / MARKER).write_text(json.dumps(document, indent=2) + "\n")
                final = self.path(plan.key)
                try:
                    os.rename(staging, final)
                except OSError:
                    if self.find(plan) is None:  # not another installer's finished library
                        raise
                    emit(f"R packages: another installer finished library {plan.key} first")
                return final
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)


def _run_installer(
    plan: Plan, repos: tuple[str, ...], library: Path, emit: Emit, environ: dict[str, str] | None
) -> None:
    names = ", ".join(f"{r.name} {r.version}" for r in plan.wanted)
    if not repos:
        raise PackageError(
            f"no repository to install {names} from: the bundle's {plan.source} names none "
            "it can be fetched from; configure repositories (--repos)"
        )
    emit(
        f"R packages: installing {len(plan.wanted)} into library {plan.key} from "
        f"{', '.join(repos)}: {names}"
    )
    with tempfile.TemporaryDirectory(prefix="plumbline-install-") as tmp:
        plan_file, repos_file = Path(tmp) / "plan.dcf", Path(tmp) / "repos.txt"
        plan_file.write_text(
            "\n".join(
                f"Package: {r.name}\nVersion: {r.version}\nRepository: {r.repository or 'NA'}\n"
                for r in plan.wanted
            )
        )
        repos_file.write_text("\n".join(repos) + "\n")
        env = r_environment(environ)
        env.pop("R_LIBS", None)  # the installer puts the new library first itself
        env.update(TMPDIR=tmp, R_LIBS_USER=env.get("R_LIBS_USER", ""))
        tail: list[str] = []
        process = subprocess.Popen(
            [
                rscript(),
                "--no-init-file",
                str(HERE / "install.R"),
                str(plan_file),
                str(repos_file),
                str(library),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
            cwd=tmp,
        )
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            tail = (tail + [line])[-_TAIL:]
            emit(f"  {line}")
        code = process.wait()
    if code != 0:
        raise PackageError(_failure(tail, names))
    emit(f"R packages: installed {names}")


def _failure(tail: list[str], names: str) -> str:
    failed = next(
        (
            line.split(":", 1)[1].strip()
            for line in reversed(tail)
            if line.startswith("plumbline-install-failed:")
        ),
        names,
    )
    problems = [
        line.split(":", 1)[1].strip()
        for line in tail
        if line.startswith("plumbline-install-problem:")
    ]
    errors = []
    for i, line in enumerate(tail):
        text = line.strip()
        if text.startswith(("ERROR", "Error")):
            if text.endswith(":") and i + 1 < len(tail):  # R continues on the next line
                text = f"{text} {tail[i + 1].strip()}"
            errors.append(text)
    reasons = list(dict.fromkeys(errors + problems)) or [line for line in tail if line.strip()][-5:]
    return f"R packages could not be installed: {failed}. R said: " + " | ".join(reasons)


def prepare_library(
    folder: Path,
    cache: Path,
    *,
    repos: tuple[str, ...] = (),
    emit: Emit,
    install: bool = True,
    allow_file_repos: bool = True,
    environ: dict[str, str] | None = None,
) -> Path | None:
    """The library the app in `folder` needs first on .libPaths(), installing it if it is
    not cached yet (unless `install` is False); None when R has every package it lists."""
    requirements = find_requirements(folder)
    if not requirements:
        return None
    r = inspect_r(environ)
    plan = plan_for(requirements, r)
    for note in plan.notes:
        emit(f"R packages: note: {note}")
    if not plan.wanted:
        emit(f"R packages: R {r.version} has all {plan.listed} packages {requirements.file} lists")
        return None
    found = LibraryCache(cache).find(plan)
    if found is not None:
        emit(
            f"R packages: using the cached library {plan.key} ({len(plan.wanted)} of the "
            f"{plan.listed} packages {requirements.file} lists)"
        )
        return found
    if not install:
        raise PackageError(
            f"the library {plan.key} for {len(plan.wanted)} packages of "
            f"{requirements.file} is not in {cache}, and installing is off"
        )
    return LibraryCache(cache).install(
        plan, repositories(requirements, repos, allow_file=allow_file_repos), emit, environ
    )


def with_library(environ: dict[str, str], library: Path | None) -> dict[str, str]:
    """`environ` with `library` first in R_LIBS (R puts R_LIBS first on .libPaths())."""
    if library is None:
        return dict(environ)
    rest = environ.get("R_LIBS", "")
    return {**environ, "R_LIBS": str(library) + (os.pathsep + rest if rest else "")}
