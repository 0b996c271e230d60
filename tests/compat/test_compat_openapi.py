"""/openapi.json against plumber's own (plumber serving its docs): every route plumber
documents is documented, routes added in R code and mounted routers included, with the
parameters plumber lists (name, location, required, schema). plumbline's document differs
deliberately in one way (docs/compatibility.md): a POST/PUT/PATCH endpoint's non-path
parameters are a request body, where plumber lists them as query parameters."""

from __future__ import annotations

import pytest

from compat_harness import APPS, deliberate

pytestmark = pytest.mark.slow
_BODY_VERBS = ("post", "put", "patch")


def _documents(pair):
    ex = pair.send("GET", "/openapi.json")
    assert ex.plumber.status_code == ex.plumbline.status_code == 200, ex.describe()
    return ex.plumber.json(), ex.plumbline.json()


def _params(op: dict, where=None) -> dict:
    return {
        p["name"]: (p["in"], p["required"], _schema(p["schema"]))
        for p in op.get("parameters") or ()
        if where is None or p["in"] == where
    }


def _schema(schema: dict) -> dict:
    # plumber writes the default 1 of a `[dbl]` parameter as 1, which OpenAPI validators refuse
    # for an array; plumbline writes [1]
    if (
        schema.get("type") == "array"
        and "default" in schema
        and not isinstance(schema["default"], list)
    ):
        return {**schema, "default": [schema["default"]]}
    return schema


def check_like_plumber(pair) -> None:
    theirs, ours = _documents(pair)
    assert ours["info"] == theirs["info"]
    assert set(ours["paths"]) == set(theirs["paths"])
    for path, item in theirs["paths"].items():
        assert set(ours["paths"][path]) == set(item), path
        for verb, op in item.items():
            mine = ours["paths"][path][verb]
            for key in ("summary", "tags"):
                assert mine.get(key) == op.get(key), (path, verb, key)
            assert (mine.get("description") or "") == (op.get("description") or ""), (path, verb)
            if verb not in _BODY_VERBS:
                assert _params(mine) == _params(op), (path, verb)
                continue
            assert _params(mine, "path") == _params(op, "path"), (path, verb)
            deliberate("non-path parameters of a POST are its request body")
            body = mine.get("requestBody", {}).get("content", {})
            listed = set(_params(op, "query"))
            for media in body.values():
                properties = set(media["schema"].get("properties", {}))
                assert properties in (set(), listed), (path, verb, media)


class TestAnnotationForms:
    APP = APPS / "annotation-forms"
    PLUMBER_DOCS = True

    def test_document_lists_what_plumber_lists(self, pair):
        check_like_plumber(pair)


class TestRoutesAddedInCode:
    APP = APPS / "in-code"
    PLUMBER_DOCS = True

    def test_document_lists_what_plumber_lists(self, pair):
        check_like_plumber(pair)

    def test_routes_added_in_code_are_documented(self, pair):
        _, ours = _documents(pair)
        assert {
            "/added",
            "/handled",
            "/typed/{x}",
            "/items/{id}",
            "/items/",
            "/items/search",
            "/items/deeper/leaf/{name}",
            "/other/hello/{who}",
            "/other/echo",
        } <= set(ours["paths"])
        item = ours["paths"]["/items/{id}"]["get"]
        assert item["parameters"][0]["schema"] == {"type": "integer", "format": "int64"}
        assert "text/plain" in ours["paths"]["/items/search"]["get"]["responses"]["200"]["content"]


class TestExampleApp:
    APP = APPS.parent.parent.parent / "examples" / "plumber-on-k8s"
    PLUMBER_DOCS = True

    def test_document_lists_what_plumber_lists(self, pair):
        check_like_plumber(pair)
