"""Reading what an app folder asks for: rsconnect's manifest.json, renv's renv.lock, and the
refusals that keep anything but names, versions and URLs out of what R is handed."""

from __future__ import annotations

import json

import pytest

from plumbline.packages.library import plan_for
from plumbline.packages.requirements import RequirementsError, find_requirements, parse_repos
from plumbline.packages.library import Plan, RInfo, repositories


def write(folder, name, data) -> None:
    (folder / name).write_text(json.dumps(data) if not isinstance(data, str) else data)


def manifest(**packages) -> dict:
    return {
        "version": 1,
        "packages": {
            name: {
                "Source": "CRAN",
                "Repository": repo,
                "description": {"Package": name, "Version": version},
            }
            for name, (version, repo) in packages.items()
        },
    }


def test_manifest_json_as_rsconnect_writes_it(tmp_path):
    write(
        tmp_path,
        "manifest.json",
        manifest(ranger=("0.16.0", "https://cloud.r-project.org"), Rcpp=("1.0.10", None)),
    )
    found = find_requirements(tmp_path)
    assert found.file == "manifest.json"
    assert [(r.name, r.version, r.repository) for r in found.packages] == [
        ("Rcpp", "1.0.10", ""),
        ("ranger", "0.16.0", "https://cloud.r-project.org"),
    ]
    assert found.repositories == ("https://cloud.r-project.org",)


def test_renv_lock_names_its_repositories(tmp_path):
    write(
        tmp_path,
        "renv.lock",
        {
            "R": {
                "Version": "4.2.2",
                "Repositories": [
                    {"Name": "CRAN", "URL": "https://cloud.r-project.org/"},
                    {"Name": "PPM", "URL": "https://packagemanager.posit.co/cran/latest"},
                ],
            },
            "Packages": {
                "ranger": {
                    "Package": "ranger",
                    "Version": "0.14.1",
                    "Source": "Repository",
                    "Repository": "PPM",
                },
                "R6": {
                    "Package": "R6",
                    "Version": "2.5.1",
                    "Source": "Repository",
                    "Repository": "CRAN",
                },
            },
        },
    )
    found = find_requirements(tmp_path)
    assert {r.name: r.repository for r in found.packages} == {
        "R6": "https://cloud.r-project.org",
        "ranger": "https://packagemanager.posit.co/cran/latest",
    }
    assert found.repositories[0] == "https://cloud.r-project.org"


def test_manifest_json_wins_over_renv_lock_and_none_without_either(tmp_path):
    assert find_requirements(tmp_path) is None
    write(tmp_path, "renv.lock", {"Packages": {"R6": {"Version": "2.5.1"}}})
    write(tmp_path, "manifest.json", manifest(glue=("1.6.2", None)))
    assert [r.name for r in find_requirements(tmp_path).packages] == ["glue"]
    write(tmp_path, "manifest.json", {"version": 1, "packages": "NA"})  # rsconnect, no package
    assert not find_requirements(tmp_path)


@pytest.mark.parametrize(
    "packages, message",
    [
        ({"x; system('id')": ("1.0", None)}, "is not an R package name"),
        ({"ranger": ("1.0'); q(", None)}, "is not a package version"),
        ({"ranger": ("1", None)}, "is not a package version"),
        ({"ranger": ("1.0", "ftp://mirror")}, "is not a repository URL"),
        ({"ranger": ("1.0", "https://x y")}, "is not a repository URL"),
    ],
)
def test_anything_but_names_versions_and_urls_is_refused(tmp_path, packages, message):
    write(tmp_path, "manifest.json", manifest(**packages))
    with pytest.raises(RequirementsError, match=message):
        find_requirements(tmp_path)


def test_broken_files_are_refused_with_their_name(tmp_path):
    write(tmp_path, "renv.lock", "{not json")
    with pytest.raises(RequirementsError, match="renv.lock is not valid JSON"):
        find_requirements(tmp_path)
    write(tmp_path, "manifest.json", "[1, 2]")
    with pytest.raises(RequirementsError, match="manifest.json must hold a JSON object"):
        find_requirements(tmp_path)


R = RInfo(
    "4.2.2",
    "x86_64-pc-linux-gnu",
    "debian-12",
    ("/usr/lib/R/library",),
    {"jsonlite": "1.8.4", "plumber": "1.2.1", "R6": "2.5.1"},
)


def test_the_plan_installs_what_r_lacks_or_has_in_another_version(tmp_path):
    write(
        tmp_path,
        "manifest.json",
        manifest(
            jsonlite=("1.8.8", None),
            R6=("2.5.1", None),
            ranger=("0.16.0", None),
            plumber=("1.2.2", None),
        ),
    )
    plan = plan_for(find_requirements(tmp_path), R)
    assert [r.pin for r in plan.wanted] == ["jsonlite==1.8.8", "ranger==0.16.0"]
    assert plan.listed == 4
    assert "the runtime serves with its own plumber 1.2.1" in plan.notes[0]


def test_the_library_key_is_r_platform_and_the_exact_set():
    from plumbline.packages.requirements import Requirement

    def key(r=R, *pins):
        return Plan(r, "manifest.json", 9, tuple(Requirement(*p.split("==")) for p in pins)).key

    base = key(R, "ranger==0.16.0", "jsonlite==1.8.8")
    assert base == key(R, "jsonlite==1.8.8", "ranger==0.16.0")  # order does not matter
    assert base != key(R, "ranger==0.16.1", "jsonlite==1.8.8")
    assert base != key(R, "ranger==0.16.0")
    other_r = RInfo("4.3.1", R.platform, R.os, R.lib_paths, R.installed)
    other_os = RInfo(R.version, R.platform, "ubuntu-22.04", R.lib_paths, R.installed)
    assert base not in (
        key(other_r, "ranger==0.16.0", "jsonlite==1.8.8"),
        key(other_os, "ranger==0.16.0", "jsonlite==1.8.8"),
    )


def test_configured_repositories_replace_the_bundles_own(tmp_path):
    write(
        tmp_path,
        "manifest.json",
        manifest(a=("1.0", "https://cran.example.org"), b=("1.0", "file:///srv/repo")),
    )
    found = find_requirements(tmp_path)
    assert repositories(found, ()) == ("https://cran.example.org", "file:///srv/repo")
    assert repositories(found, (), allow_file=False) == ("https://cran.example.org",)
    ppm = parse_repos("PPM=https://packagemanager.posit.co/cran/__linux__/bookworm/latest")
    assert repositories(found, ppm) == ppm
    assert parse_repos("https://a.example.org, https://b.example.org/") == (
        "https://a.example.org",
        "https://b.example.org",
    )
    with pytest.raises(RequirementsError):
        parse_repos("not a url")
