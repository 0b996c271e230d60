"""A CRAN-like repository on local disk, built by the tests (no network here): tiny R
packages made with `R CMD build`, indexed with `tools::write_PACKAGES`, older versions in
src/contrib/Archive/<name>/ as CRAN keeps them; optionally served over HTTP on loopback."""

from __future__ import annotations

import functools
import json
import http.server
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from support import free_port


@dataclass(frozen=True)
class RPackage:
    name: str
    version: str
    code: str  # R/ code of the package; every top-level function is exported
    imports: tuple[str, ...] = ()
    fail_install: bool = False  # its build-time R code stops: installation fails


def build(package: RPackage, workdir: Path) -> Path:
    """`R CMD build` of the package: its .tar.gz."""
    source = workdir / f"{package.name}-{package.version}" / package.name
    (source / "R").mkdir(parents=True)
    imports = f"Imports: {', '.join(package.imports)}\n" if package.imports else ""
    (source / "DESCRIPTION").write_text(
        f"Package: {package.name}\nVersion: {package.version}\nTitle: Test Package\n"
        "Description: A tiny package built by plumbline's tests.\n"
        "Authors@R: person('Plumbline', 'Tests', email = 'tests@example.com', "
        "role = c('aut', 'cre'))\nLicense: MIT\nEncoding: UTF-8\n" + imports
    )
    (source / "NAMESPACE").write_text(
        'exportPattern("^[[:alpha:]]+")\n' + "".join(f"import({p})\n" for p in package.imports)
    )
    code = package.code
    if package.fail_install:
        code += '\nstop("this package refuses to be installed (a test package)")\n'
    (source / "R" / "code.R").write_text(code + "\n")
    proc = subprocess.run(
        ["R", "CMD", "build", "--no-build-vignettes", "--no-manual", str(source)],
        cwd=source.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return source.parent / f"{package.name}_{package.version}.tar.gz"


class LocalRepository:
    """root/src/contrib with PACKAGES; `url` is file://, `serve()` gives an http:// one."""

    def __init__(self, root: Path):
        self.root = root
        self.contrib = root / "src" / "contrib"
        self.contrib.mkdir(parents=True, exist_ok=True)
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return self.root.resolve().as_uri()

    def add(self, package: RPackage, *, archived: bool = False) -> Path:
        tarball = build(package, self.root.parent / f".build-{self.root.name}")
        target = self.contrib / "Archive" / package.name if archived else self.contrib
        target.mkdir(parents=True, exist_ok=True)
        dest = target / tarball.name
        shutil.copyfile(tarball, dest)
        self.index()
        return dest

    def index(self) -> None:
        proc = subprocess.run(
            [
                "Rscript",
                "--vanilla",
                "-e",
                "tools::write_PACKAGES(commandArgs(TRUE)[1], type = 'source')",
                str(self.contrib),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr

    def serve(self) -> str:
        """Serve the repository over HTTP on loopback (until stop()); its http:// URL."""
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def install_into(library: Path, repository_url: str, *names: str) -> None:
    """Install packages from the repository into `library`, as an R user would (so the
    packages look installed from that repository to rsconnect and packrat)."""
    library.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "Rscript",
            "--vanilla",
            "-e",
            "a <- commandArgs(TRUE); install.packages(a[-(1:2)], lib = a[1], repos = a[2], "
            "type = 'source')",
            str(library),
            repository_url,
            *names,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in names:
        assert (library / name / "DESCRIPTION").is_file(), proc.stdout + proc.stderr


def manifest_json(packages: dict[str, str], repository_url: str = "", source: str = "CRAN") -> str:
    """A manifest.json naming packages (name -> version) as rsconnect writes one."""
    entries = {}
    for name, version in packages.items():
        entry: dict = {"Source": source, "description": {"Package": name, "Version": version}}
        if repository_url:
            entry["Repository"] = repository_url
        entries[name] = entry
    return json.dumps({"version": 1, "packages": entries})
