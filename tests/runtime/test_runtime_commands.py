"""`plumbline serve` lets the zygote started ahead start R before it imports the server, unless
the app's folder lists packages that may put a library of its own on R_LIBS first."""

from __future__ import annotations

from dataclasses import replace

import pytest

from plumbline.runtime.commands import uses_package_library
from plumbline.runtime.settings import ServeConfig


@pytest.mark.parametrize("listing", [None, "manifest.json", "renv.lock"])
@pytest.mark.parametrize("given", ["file", "folder"])
def test_only_an_app_listing_packages_waits_for_its_library(tmp_path, listing, given):
    (tmp_path / "plumber.R").write_text("#* @get /x\nfunction() 1\n")
    if listing:
        (tmp_path / listing).write_text("{}")
    path = str(tmp_path / "plumber.R" if given == "file" else tmp_path)
    assert uses_package_library(path, ServeConfig()) is (listing is not None)
    # With packages off, serve never puts a library on R_LIBS.
    assert uses_package_library(path, replace(ServeConfig(), packages="off")) is False


def test_a_missing_file_lists_no_packages(tmp_path):
    assert uses_package_library(str(tmp_path / "missing.R"), ServeConfig()) is False


def test_a_linked_plumber_r_is_read_where_it_lives(tmp_path):
    # server.use_packages reads the folder of the file the link points to: so does the check.
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "plumber.R").write_text("#* @get /x\nfunction() 1\n")
    (tmp_path / "real" / "manifest.json").write_text("{}")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "plumber.R").symlink_to(tmp_path / "real" / "plumber.R")
    assert uses_package_library(str(tmp_path / "link"), ServeConfig()) is True
    assert uses_package_library(str(tmp_path / "link" / "plumber.R"), ServeConfig()) is True
