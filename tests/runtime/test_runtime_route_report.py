"""plumber's route table, reported by the workers: the runtime routes, documents, labels and
health-checks by it, routes added in R code included, and serves files the annotation
reader alone would refuse (a serializer registered where it cannot see)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plumbline import routes
from pool_harness import APPS, running_pool
from test_runtime_http_serve import serve

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
IN_CODE = REPO / "tests" / "compat" / "apps" / "in-code" / "plumber.R"


def test_pool_keeps_the_first_workers_route_report():
    with running_pool(IN_CODE, workers=1, timeout=20) as harness:
        harness.wait_until_idle()
        report = json.loads(harness.pool.route_report)
    assert report["format"] == routes.REPORT_FORMAT
    table = routes.from_report(report, IN_CODE)
    assert table.source == "plumber"
    added = {(ep.verbs, ep.route) for ep in table.endpoints if ep.in_code}
    assert {
        (("GET",), "/added"),
        (("PUT", "DELETE"), "/handled"),
        (("GET",), "/items/<id:int>"),
        (("GET",), "/items/deeper/leaf/<name>"),
    } <= added
    assert [(a.directory, a.mount) for a in table.assets] == [("./www", "/static")]


def test_routes_added_in_code_are_routed_documented_and_labelled(tmp_path):
    with serve(tmp_path, "--workers", "1", "--drain-delay", "0", plumber_file=IN_CODE) as app:
        assert app.get("/added?n=3")[2] == b'{"n":["3"]}'
        assert app.get("/items/7")[0] == 200
        assert app.get("/other/hello/you")[2] == b"hello you"
        assert app.get("/static/s.txt")[2] == b"static in code\n"
        assert app.get("/nope")[0] == 404
        _, _, body = app.get("/metrics")
        text = body.decode()
        for route, status in (
            ("/added", 200),
            ("/items/<id:int>", 200),
            ("/other/hello/<who>", 200),
            ("/static", 200),
            ("<unmatched>", 404),
        ):
            assert (
                f'plumbline_requests_total{{method="GET",route="{route}",status="{status}"}} 1.0'
            ) in text, route
        _, _, body = app.get("/openapi.json")
        paths = json.loads(body)["paths"]
        assert {"/added", "/handled", "/items/{id}", "/other/hello/{who}"} <= set(paths)
        assert set(paths["/handled"]) == {"put", "delete"}
        app.wait_until(
            lambda: '"route":"/items/<id:int>"' in app.stdout.read_text(),
            timeout=10,
            what="the access log line of /items/7",
        )


def test_a_serializer_registered_out_of_the_annotation_readers_sight(tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "helpers.R").write_text(
        'plumber::register_serializer("exclaim", function(...) {\n'
        '  plumber::serializer_content_type("text/plain", function(v) paste0(v, "!"))\n'
        "})\n"
    )
    plumber_r = app_dir / "plumber.R"
    plumber_r.write_text(
        'source("helpers.R")\n\n#* @serializer exclaim\n#* @get /hi\nfunction() "hi"\n'
    )
    with serve(tmp_path, "--workers", "1", "--drain-delay", "0", plumber_file=plumber_r) as app:
        status, headers, body = app.get("/hi")
        assert (status, headers["content-type"], body) == (200, "text/plain", b"hi!")


def test_health_added_in_code_is_checked(tmp_path):
    plumber_r = APPS / "health_in_code" / "plumber.R"
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--drain-delay",
        "0",
        "--health-interval",
        "0.2",
        plumber_file=plumber_r,
    ) as app:
        app.wait_until(
            lambda: (app.metric('plumbline_worker_restarts_total{reason="unhealthy"}') or 0) >= 1,
            timeout=60,
            what="a worker replaced by a failed /health check",
        )
        assert app.get("/ping")[2] == b'["pong"]'
