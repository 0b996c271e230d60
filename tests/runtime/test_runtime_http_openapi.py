"""/openapi.json documents: valid OpenAPI 3.0.3, built from the annotations alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from plumbline.annotations import parse_file
from plumbline.runtime.front import openapi

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plumber-on-k8s" / "plumber.R"


def test_example_app_document():
    doc = openapi.build(parse_file(EXAMPLE))
    validate(doc)
    assert doc["info"] == {
        "title": "API Title",
        "description": "API Description",
        "version": "1.0.0",
    }  # plumber's defaults
    assert set(doc["paths"]) == {"/parity", "/wait", "/fail", "/quit", "/health"}
    parity = doc["paths"]["/parity"]["get"]
    assert parity["summary"] == "Determine if an integer is odd or even"
    assert parity["parameters"][0]["name"] == "int"
    assert parity["parameters"][0]["description"] == "Integer to test for parity"
    assert "text/plain" in parity["responses"]["200"]["content"]
    assert "application/json" in doc["paths"]["/wait"]["get"]["responses"]["200"]["content"]
    assert "requestBody" in doc["paths"]["/fail"]["post"]


def test_fixture_document_covers_every_annotation():
    doc = openapi.build(parse_file(REPO / "tests" / "fixtures" / "annotated" / "plumber.R"))
    validate(doc)
    assert doc["info"]["version"] == "2.1.0"
    echo = doc["paths"]["/echo"]
    assert echo["get"]["tags"] == ["echo", "two words"]
    assert echo["get"]["description"] == "A longer description\non two lines."
    times = next(p for p in echo["get"]["parameters"] if p["name"] == "times")
    assert times["schema"] == {
        "type": "array",
        "items": {"type": "integer", "format": "int64"},
        "default": [1],
    }  # plumber: `"default": 1`, not valid OpenAPI
    blob = doc["paths"]["/blob/{ids}"]["put"]
    assert blob["parameters"][0]["in"] == "path" and blob["parameters"][0]["explode"] is False
    assert list(blob["requestBody"]["content"]) == ["application/octet-stream"]
    assert "application/octet-stream" in blob["responses"]["200"]["content"]
    assert set(doc["paths"]["/everything"]) == {
        "get",
        "post",
        "put",
        "delete",
        "patch",
        "head",
        "options",
    }


def _plumber_example(name: str) -> Path:
    out = subprocess.run(
        ["Rscript", "-e", 'cat(system.file("plumber", package="plumber"))'],
        capture_output=True,
        text=True,
        check=True,
    )
    path = Path(out.stdout.strip()) / name / "plumber.R"
    assert path.is_file(), f"plumber's examples are not installed ({path})"
    return path


@pytest.mark.slow  # Rscript finds plumber's examples
def test_multi_line_api_description_is_joined_as_plumber_does():
    path = _plumber_example("11-car-inventory")
    doc = openapi.build(parse_file(path))
    validate(doc)
    assert doc["info"]["title"] == "Auto Inventory Manager"
    assert doc["info"]["description"] == (
        "Manage the inventory of an automobile store using an API."
    )


@pytest.mark.slow  # runs real plumber in Rscript
def test_undocumented_arguments_are_listed_as_plumber_lists_them():
    """Every argument but req/res/... is a parameter; its default gives type and default."""
    fixture = REPO / "tests" / "fixtures" / "openapi-arguments" / "plumber.R"
    ours = openapi.build(parse_file(fixture))
    validate(ours)
    code = (
        "spec <- plumber::pr(commandArgs(TRUE)[1])$getApiSpec(); "
        'cat(jsonlite::toJSON(spec$paths, auto_unbox = TRUE, null = "null"))'
    )
    done = subprocess.run(["Rscript", "-e", code, str(fixture)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    plumbers = json.loads(done.stdout)
    for path in ("/search", "/items/{id}"):
        mine = {p["name"]: p for p in ours["paths"][path]["get"]["parameters"]}
        theirs = {p["name"]: p for p in plumbers[path]["get"]["parameters"]}
        assert set(mine) == set(theirs), path
        for name, param in theirs.items():
            assert (mine[name]["in"], mine[name]["required"], mine[name]["schema"]) == (
                param["in"],
                param["required"],
                param["schema"],
            ), (path, name)
    search = {p["name"]: p for p in ours["paths"]["/search"]["get"]["parameters"]}
    assert search["exact"]["schema"] == {"type": "boolean", "default": False}
    assert search["q"]["required"] is True  # no default: required, though its @param has no `*`
