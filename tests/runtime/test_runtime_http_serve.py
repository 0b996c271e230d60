"""`plumbline serve` as a user runs it: a real subprocess, real R workers, real sockets.

Covers what only shows with the whole thing running: /livez while every worker is busy,
readiness during a worker reload and during drain, the SIGTERM drain itself, metrics,
request ids in the JSON access log, pool failures as JSON (503/504/502), and the start-up
failures (bad annotation, R syntax error, port in use) that must exit before binding.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import time

import pytest
from serve_harness import PLUMBLINE, Served, in_thread, serve
from support import EXAMPLE, REPO, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    with serve(
        tmp_path_factory.mktemp("example"), "--workers", "2", "--drain-delay", "0.5"
    ) as served:
        yield served


def test_livez_answers_fast_while_every_worker_runs_wait(example):
    waits = [in_thread(example.get, "/wait") for _ in range(2)]
    example.wait_until(
        lambda: example.metric('plumbline_workers{state="busy"}') == 2,
        timeout=10,
        what="both workers busy",
    )
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        status, _, body = example.get("/livez", timeout=5)
        timings.append(time.perf_counter() - start)
        assert status == 200 and json.loads(body) == {"status": "alive"}
    # both /wait calls (5 s of R each) are still running: livez never waited on R; each
    # answer took well under the R call (a generous bound on a loaded machine)
    assert all(thread.is_alive() for thread, _ in waits)
    assert max(timings) < 2.5, timings
    status, _, _ = example.get("/readyz")
    assert status == 200  # busy is not unready
    for thread, result in waits:
        thread.join(30)
        assert result["value"][0] == 200
        assert "time" in json.loads(result["value"][2])


def test_requests_reach_r_and_metrics_count_them(example):
    for number, answer in ((3, b"odd"), (4, b"even"), (5, b"odd")):
        status, headers, body = example.get(f"/parity?int={number}")
        assert (status, body) == (200, answer)
        assert headers["content-type"].startswith("text/plain")
    assert example.get("/health")[2] == b"OK"  # the app's own /health, run in R
    assert example.get("/nowhere")[0] == 404
    _, headers, body = example.get("/metrics")
    assert headers["content-type"].startswith("text/plain; version=")
    text = body.decode()
    assert 'plumbline_requests_total{method="GET",route="/parity",status="200"} 3.0' in text
    assert 'plumbline_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert 'plumbline_request_duration_seconds_count{route="/parity"} 3.0' in text
    assert 'plumbline_workers{state="idle"}' in text
    assert "plumbline_queue_depth 0.0" in text
    assert 'plumbline_worker_restarts_total{reason="timeout"} 0.0' in text
    assert "plumbline_requests_in_flight 1.0" in text  # the scrape itself


def test_under_load_busy_workers_take_the_next_request_and_each_client_gets_its_own(example):
    """Pipelining through the front: /parity answers in about a millisecond, so with more
    clients than workers a busy worker is written its next request (the pool's route
    names come from the front); every answer still matches its request."""
    before = example.metric("plumbline_requests_pipelined_total")

    def client(offset: int) -> list[bool]:
        conn = http.client.HTTPConnection("127.0.0.1", example.port, timeout=30)
        right = []
        try:
            for number in range(offset, offset + 400, 7):
                conn.request("GET", f"/parity?int={number}")
                body = conn.getresponse().read()
                right.append(body == (b"even" if number % 2 == 0 else b"odd"))
        finally:
            conn.close()
        return right

    clients = [in_thread(client, offset) for offset in range(8)]
    for thread, result in clients:
        thread.join(120)
        assert "error" not in result and all(result["value"]) and len(result["value"]) == 58
    assert example.metric("plumbline_requests_pipelined_total") > before


def test_json_bodies_jsonlite_rejects_get_400_and_the_rest_reach_r(example):
    def send(body: bytes):
        conn = http.client.HTTPConnection("127.0.0.1", example.port, timeout=30)
        try:
            conn.request(
                "GET", "/parity?int=3", body=body, headers={"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    status, body = send(b'{"n": 1,}')
    assert status == 400
    assert json.loads(body)["error"] == "request body is not valid JSON"
    # a BOM and comments are fine for jsonlite, so they must reach R
    assert send(b'\xef\xbb\xbf{"n": 1 /* note */} // end') == (200, b"odd")


def test_request_id_is_returned_and_logged_as_json(example):
    status, headers, _ = example.get("/parity?int=8", headers={"X-Request-Id": "req-4711"})
    assert status == 200 and headers["x-request-id"] == "req-4711"
    _, headers, _ = example.get("/parity?int=9")
    generated = headers["x-request-id"]
    assert len(generated) == 32

    def logged():
        lines = [json.loads(line) for line in example.stdout.read_text().splitlines()]
        return {entry["request_id"]: entry for entry in lines}

    example.wait_until(lambda: generated in logged(), timeout=10, what="access log line")
    entry = logged()["req-4711"]
    assert entry["method"] == "GET" and entry["path"] == "/parity"
    assert entry["route"] == "/parity" and entry["status"] == 200
    assert 0 < entry["duration_s"] < 30


def test_sigterm_drains_without_dropping_requests(tmp_path):
    # a drain delay long enough that the checks below surely fall inside it
    with serve(tmp_path, "--workers", "2", "--drain-delay", "10") as served:
        thread, result = in_thread(served.get, "/wait")
        served.wait_until(
            lambda: served.metric('plumbline_workers{state="busy"}') == 1,
            timeout=10,
            what="/wait running",
        )
        served.proc.send_signal(signal.SIGTERM)
        served.wait_until(
            lambda: served.get("/readyz")[0] == 503, timeout=30, what="readyz 503 after SIGTERM"
        )
        status, _, body = served.get("/readyz")
        assert json.loads(body)["reason"] == "draining"
        # still served during the drain delay
        assert served.get("/parity?int=2")[:3:2] == (200, b"even")
        assert served.get("/livez")[0] == 200
        assert served.proc.wait(60) == 0
        thread.join(10)
        assert result["value"][0] == 200, result  # accepted before SIGTERM: completed
        with pytest.raises(OSError):
            served.get("/livez", timeout=2)


BASIC = REPO / "tests" / "runtime" / "apps" / "basic" / "plumber.R"
LONG = 300  # seconds an R call may sleep (and --timeout): far beyond every bound below
BOUND = 60  # seconds a stop may take in these tests: generous, and far below LONG


def stderr_events(served: Served) -> list[str]:
    return [
        json.loads(line)["message"]
        for line in served.stderr.read_text().splitlines()
        if line.startswith("{")
    ]


def start_long_call(served: Served):
    """A call of LONG seconds, running in R once this returns: its thread and result."""
    thread, result = in_thread(served.get, f"/sleep?secs={LONG}", "GET", None, LONG + 30)
    served.wait_until(
        lambda: served.metric('plumbline_workers{state="busy"}') == 1,
        timeout=30,
        what="the long call running",
    )
    return thread, result


def test_graceful_timeout_cuts_off_a_request_still_running(tmp_path):
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--drain-delay",
        "0",
        "--graceful-timeout",
        "2",
        "--timeout",
        str(LONG),
        "--health-interval",
        "0",
        plumber_file=BASIC,
    ) as served:
        thread, result = start_long_call(served)
        signalled = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(BOUND) == 0  # long before the R call would have ended
        thread.join(30)
        assert time.monotonic() - signalled < BOUND
        # The cut-off request got no answer of R's ("slept"); the server said why it stopped.
        assert "value" not in result or result["value"][2] != b"slept", result
        assert "closing listener, finishing in-flight requests" in stderr_events(served)


def test_second_signal_skips_the_rest_of_the_drain_delay(tmp_path):
    with serve(
        tmp_path, "--workers", "1", "--drain-delay", str(LONG), plumber_file=BASIC
    ) as served:
        served.proc.send_signal(signal.SIGTERM)
        served.wait_until(
            lambda: served.get("/readyz")[0] == 503,
            timeout=30,
            what="readyz 503 after the first SIGTERM",
        )
        assert served.get("/text")[2] == b"hello"  # still serving during the drain delay
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(BOUND) == 0
        events = stderr_events(served)
        assert (
            events.index("stop requested, draining")
            < events.index("skipping the drain delay")
            < events.index("stopped")
        )


def test_third_signal_stops_waiting_for_open_connections(tmp_path):
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--drain-delay",
        "0",
        "--graceful-timeout",
        str(LONG),
        "--timeout",
        str(LONG),
        "--health-interval",
        "0",
        plumber_file=BASIC,
    ) as served:
        thread, result = start_long_call(served)
        served.proc.send_signal(signal.SIGTERM)
        served.wait_until(
            lambda: "closing listener, finishing in-flight requests" in stderr_events(served),
            timeout=30,
            what="the listener closing",
        )
        # Each signal once the last one is logged (the kernel merges a pending one).
        served.proc.send_signal(signal.SIGTERM)  # the drain delay is already over: no change
        served.wait_until(
            lambda: "skipping the drain delay" in stderr_events(served),
            timeout=30,
            what="the second signal handled",
        )
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(BOUND) == 0  # not the graceful timeout, not the R call
        thread.join(30)
        assert "value" not in result or result["value"][2] != b"slept", result
        assert "forcing exit" in stderr_events(served)


def test_pool_failures_become_json_errors_and_readiness_follows_reload(tmp_path):
    # no health checks: one would occupy the only worker and turn /wait into a 503
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--max-queue",
        "0",
        "--timeout",
        "2",
        "--drain-delay",
        "0",
        "--health-interval",
        "0",
    ) as served:
        served.wait_settled()  # one worker, not the first one and its successor
        thread, result = in_thread(served.get, "/wait")
        served.wait_until(
            lambda: served.metric('plumbline_workers{state="busy"}') == 1,
            timeout=10,
            what="/wait running",
        )
        status, headers, body = served.get("/parity?int=1")
        assert status == 503 and headers["retry-after"] == "1"
        assert "error" in json.loads(body)
        thread.join(30)
        status, headers, body = result["value"]
        assert status == 504 and headers["content-type"] == "application/json"
        assert "timeout" in json.loads(body)["error"]
        # the timed-out worker is killed and replaced; until its successor loads, not ready
        served.wait_until(
            lambda: served.get("/readyz")[0] == 503,
            timeout=30,
            what="readyz 503 while the only worker reloads",
        )
        assert served.get("/livez")[0] == 200
        served.wait_until(lambda: served.get("/readyz")[0] == 200, timeout=60, what="ready again")
        assert served.metric('plumbline_worker_restarts_total{reason="timeout"}') == 1
        status, _, body = served.get("/quit", method="POST")
        assert status == 502 and "died" in json.loads(body)["error"]


def test_r_syntax_error_exits_3_with_rs_message_before_binding(tmp_path):
    app = tmp_path / "plumber.R"
    app.write_text("#* @get /a\nfunction() {\n  list(a = 1\n}\n")
    port = free_port()
    proc = subprocess.Popen(
        [*PLUMBLINE, str(app), "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bound = False
    while proc.poll() is None:
        with socket.socket() as probe:
            bound = bound or probe.connect_ex(("127.0.0.1", port)) == 0
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert "failed to load in R" in stderr
    assert "plumber.R:4:1" in stderr and "unexpected" in stderr
    assert not bound


def test_annotation_error_exits_2_with_file_and_line(tmp_path):
    app = tmp_path / "plumber.R"
    app.write_text("x <- 1\n\n#* @get\nfunction() 1\n")
    out = subprocess.run(
        [*PLUMBLINE, str(app), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"{app}:3: No path specified." in out.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [*PLUMBLINE, str(EXAMPLE), "--port", str(port), "--workers", "1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 4
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "in use" in out.stderr


def test_app_with_filters_keeps_them_in_front_of_assets_and_unmatched(tmp_path):
    annotated = REPO / "tests" / "fixtures" / "annotated" / "plumber.R"
    with serve(tmp_path, "--workers", "1", "--drain-delay", "0", plumber_file=annotated) as served:
        status, _, body = served.get("/files/hello.txt")  # via R, after the filters
        assert (status, body) == (200, b"hello asset\n")
        for path in ("/files/%2e%2e/plumber.R", "/files/..%2fplumber.R"):
            status, headers, body = served.get(path)
            assert status == 403 and headers["content-type"] == "application/json"
        status, _, body = served.get("/nowhere")  # plumber's own 404, answered in R
        assert status == 404 and json.loads(body) == {"error": "404 - Resource Not Found"}

        def patch(body: bytes):
            conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
            try:
                conn.request(
                    "PATCH", "/items", body=body, headers={"Content-Type": "application/json"}
                )
                resp = conn.getresponse()
                return resp.status, json.loads(resp.read())
            finally:
                conn.close()

        assert patch(b'{"a": 1, "b": [2]}') == (200, ["a", "b"])
        # filters run before plumber parses a body, so a malformed one is R's to answer
        assert patch(b'{"a": 1') == (500, {"error": "500 - Internal server error"})
