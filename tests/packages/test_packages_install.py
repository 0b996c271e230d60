"""Installing for real: R, a CRAN-like repository the test builds on local disk, the shared
cache. One install per exact set (a second app with the same set reuses it, also when two
install at once), exact versions (an archived one too), R's own message when a package
cannot be installed, and nothing left behind then."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from r_repository import LocalRepository, RPackage, manifest_json

from plumbline.packages.library import PackageError, prepare_library

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repository = LocalRepository(tmp_path_factory.mktemp("cran") / "repo")
    repository.add(RPackage("plumblinetest", "1.0.0", 'greet <- function(x) paste("hello", x)'))
    repository.add(
        RPackage("plumblinetest", "0.9.0", 'greet <- function(x) paste("hi", x)'), archived=True
    )
    repository.add(RPackage("plumblinedep", "2.0.0", "twice <- function(x) 2 * x"))
    repository.add(
        RPackage(
            "plumblineuser",
            "1.0.0",
            "quad <- function(x) plumblinedep::twice(plumblinedep::twice(x))",
            imports=("plumblinedep",),
        )
    )
    repository.add(RPackage("plumblinebroken", "1.0.0", "f <- function() 1", fail_install=True))
    return repository


def app(folder: Path, repo_url: str, **packages: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(manifest_json(packages, repo_url))
    return folder


def prepare(folder: Path, cache: Path, **kwargs) -> tuple[Path | None, list[str]]:
    lines: list[str] = []
    return prepare_library(folder, cache, emit=lines.append, **kwargs), lines


def installed(library: Path) -> dict[str, str]:
    return {
        d.name: next(
            line.split(": ", 1)[1]
            for line in (d / "DESCRIPTION").read_text().splitlines()
            if line.startswith("Version:")
        )
        for d in library.iterdir()
        if (d / "DESCRIPTION").is_file()
    }


def test_one_install_per_set_shared_by_apps_with_the_same_set(repo, tmp_path):
    cache = tmp_path / "cache"
    first, lines = prepare(
        app(
            tmp_path / "a",
            repo.url,
            plumblinetest="1.0.0",
            plumblinedep="2.0.0",
            plumblineuser="1.0.0",
            R6="2.5.1",
        ),
        cache,
    )
    assert any(line.startswith("R packages: installing 3 into library") for line in lines)
    assert installed(first) == {
        "plumblinetest": "1.0.0",
        "plumblinedep": "2.0.0",
        "plumblineuser": "1.0.0",
    }  # R6 2.5.1: R has it already
    # Another app, same set (listed in another order): the library is reused, no install.
    second, lines = prepare(
        app(
            tmp_path / "b",
            repo.url,
            plumblineuser="1.0.0",
            plumblinedep="2.0.0",
            plumblinetest="1.0.0",
        ),
        cache,
    )
    assert second == first
    assert not any("installing" in line for line in lines), lines
    assert any("using the cached library" in line for line in lines)
    # A different version is a different set.
    third, lines = prepare(app(tmp_path / "c", repo.url, plumblinetest="0.9.0"), cache)
    assert third != first and installed(third) == {"plumblinetest": "0.9.0"}
    assert any("trying its archive" in line for line in lines)
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == sorted(
        [first.name, third.name]
    )
    assert list((cache / ".staging").iterdir()) == []


def test_nothing_to_install_needs_no_library(repo, tmp_path):
    library, lines = prepare(app(tmp_path / "a", repo.url, R6="2.5.1"), tmp_path / "cache")
    assert library is None and "has all 1 packages manifest.json lists" in lines[-1]
    assert not (tmp_path / "cache").exists()


def _install_in_another_process(folder: str, cache: str, queue) -> None:
    lines: list[str] = []
    try:
        library = prepare_library(Path(folder), Path(cache), emit=lines.append)
        queue.put((str(library), lines))
    except Exception as exc:  # reported to the test
        queue.put((repr(exc), lines))


def test_concurrent_installs_of_one_set_install_it_once(repo, tmp_path):
    cache = tmp_path / "cache"
    folders = [
        app(tmp_path / name, repo.url, plumblineuser="1.0.0", plumblinedep="2.0.0")
        for name in ("a", "b", "c")
    ]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_install_in_another_process, args=(str(f), str(cache), queue))
        for f in folders
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(60)
    libraries = {library for library, _ in results}
    assert len(libraries) == 1 and Path(libraries.pop()).is_dir(), results
    installs = [
        line for _, lines in results for line in lines if line.startswith("R packages: installing")
    ]
    assert len(installs) == 1, results
    assert list((cache / ".staging").iterdir()) == []


def test_a_package_that_cannot_be_installed_fails_with_rs_message(repo, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(PackageError) as failed:
        prepare(
            app(tmp_path / "a", repo.url, plumblinetest="1.0.0", plumblinebroken="1.0.0"), cache
        )
    message = str(failed.value)
    assert "plumblinebroken 1.0.0" in message
    assert "this package refuses to be installed" in message  # R's own error
    with pytest.raises(PackageError, match="‘plumblinemissing’ is not available"):
        prepare(app(tmp_path / "b", repo.url, plumblinemissing="3.1.4"), cache)
    with pytest.raises(PackageError, match="plumblinetest 0.5.0"):  # in no archive either
        prepare(app(tmp_path / "c", repo.url, plumblinetest="0.5.0"), cache)
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == []
    assert list((cache / ".staging").iterdir()) == []


def test_configured_repositories_and_installing_off(repo, tmp_path):
    folder = app(tmp_path / "a", "https://cran.invalid", plumblinedep="2.0.0")
    with pytest.raises(PackageError, match="not in .* and installing is off"):
        prepare(folder, tmp_path / "cache", install=False)
    library, _ = prepare(folder, tmp_path / "cache", repos=(repo.url,))
    assert installed(library) == {"plumblinedep": "2.0.0"}
    assert prepare(folder, tmp_path / "cache", install=False)[0] == library
    with pytest.raises(PackageError, match="no repository to install plumblinetest"):
        prepare(
            app(tmp_path / "b", repo.url, plumblinetest="1.0.0"),
            tmp_path / "cache",
            allow_file_repos=False,
        )
