"""The app's R packages on this machine, installed before any replica starts: a deploy
shows the installation's output and fails before traffic moves if a package cannot be
installed. The replicas then find the library in the cache (`plumbline serve` looks there
first and installs nothing)."""

from __future__ import annotations

from pathlib import Path

from plumbline.platform.backend import Emit
from plumbline.platform.spec.appspec import AppSpec
from plumbline.runtime.settings import default_package_cache


def cache_dir(spec: AppSpec) -> Path:
    return Path(spec.packages.cache_dir or default_package_cache())


def install_packages(spec: AppSpec, emit: Emit) -> Path | None:
    """The library the app needs first on .libPaths() (None: R has every package);
    PackageError or RequirementsError when that cannot be."""
    if spec.package_file is None:
        return None
    from plumbline.packages.library import prepare_library

    return prepare_library(spec.app_dir, cache_dir(spec), repos=spec.packages.repos, emit=emit)
