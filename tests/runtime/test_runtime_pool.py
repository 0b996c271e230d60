"""The worker pool with real R workers: plumber semantics, concurrency and worker lifecycle."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid

import pytest

from plumbline.exits import ExitCode
from plumbline.runtime.pool.pool import AppLoadError, PoolFull, WorkerDied, WorkerTimeout
from pool_harness import APPS, running_pool, wait_for

pytestmark = pytest.mark.slow

BASIC = APPS / "basic" / "plumber.R"


@pytest.fixture(scope="module")
def pool():
    # Shared by the module's tests, some of which check that their worker stayed: a worker is
    # never re-forked under them (test_runtime_pool_refork.py tests that).
    with running_pool(BASIC, workers=2, timeout=20, refork_after_full_gc=False) as harness:
        harness.wait_until_idle()
        yield harness


def content_type(response) -> str | None:
    return dict((name.lower(), value) for name, value in response.headers).get("content-type")


def body_json(response):
    return json.loads(response.body)


# ---- plumber semantics ----------------------------------------------------------------


def test_text_serializer(pool):
    response = pool.get("/text")
    assert (response.status, content_type(response), response.body) == (
        200,
        "text/plain; charset=UTF-8",
        b"hello",
    )


def test_json_serializer_uses_jsonlite_defaults(pool):
    response = pool.get("/json")
    assert (response.status, content_type(response), response.body) == (
        200,
        "application/json",
        b'{"a":[1]}',
    )


def test_typed_path_parameter(pool):
    assert pool.get("/items/42").body == b'{"id":[42],"class":["integer"]}'
    not_an_int = pool.get("/items/abc")
    assert not_an_int.status == 404
    assert body_json(not_an_int) == {"error": "404 - Resource Not Found"}


def test_query_arguments_are_decoded(pool):
    assert body_json(pool.get("/echo", "msg=hi%20there&n=3")) == {"msg": ["hi there"], "n": ["3"]}
    assert body_json(pool.get("/echo", "msg=a+b&msg=c")) == {"msg": ["a b", "c"], "n": ["0"]}
    assert body_json(pool.get("/echo")) == {"msg": ["none"], "n": ["0"]}


def test_json_body_arguments(pool):
    response = pool.request(
        "POST", "/sum", headers=[("content-type", "application/json")], body=b'{"a": 1, "b": 2}'
    )
    assert (response.status, response.body) == (200, b'{"sum":[3]}')


def test_deeply_nested_json_is_an_r_error_not_a_crash(pool):
    pids = {row["pid"] for row in pool.snapshot()}
    body = b'{"a": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b', "b": 1}'
    response = pool.request(
        "POST", "/sum", headers=[("content-type", "application/json")], body=body
    )
    assert response.status == 500
    assert {row["pid"] for row in pool.snapshot()} == pids


def test_rook_environment_seen_by_the_endpoint(pool):
    response = pool.request(
        "POST",
        "/req",
        "x=1",
        headers=[("x-custom", "yes"), ("content-type", "text/plain")],
        body=b"line1\nline2",
    )
    assert body_json(response) == {
        "method": ["POST"],
        "path": ["/req"],
        "query": ["?x=1"],
        "custom": ["yes"],
        "header": ["yes"],
        "content_type": ["text/plain"],
        "body": ["line1\nline2"],
        "raw_length": [11],
        "scheme": ["http"],
        "remote": ["127.0.0.1"],
    }


def test_rook_environment_has_what_httpuv_puts_there(pool):
    # Recorded from plumber 1.2.1 on httpuv 1.6.9 for this request (less httpuv's private
    # .bodyData connection): the CGI variables are strings, the rest what plumber adds.
    response = pool.request(
        "POST",
        "/rook-names",
        "a=1",
        body=b'{"q": 2}',
        headers=[
            ("accept", "*/*"),
            ("content-type", "application/json"),
            ("user-agent", "curl/7.88.1"),
            ("x-foo-bar", "baz"),
        ],
    )
    strings = {
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "HTTP_ACCEPT",
        "HTTP_CONTENT_LENGTH",
        "HTTP_CONTENT_TYPE",
        "HTTP_HOST",
        "HTTP_USER_AGENT",
        "HTTP_X_FOO_BAR",
        "PATH_INFO",
        "QUERY_STRING",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REQUEST_METHOD",
        "rook.url_scheme",
        "rook.version",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "postBody",
    }
    others = {
        ".internal": "environment",
        "args": "list",
        "argsBody": "list",
        "argsPath": "list",
        "argsQuery": "list",
        "body": "list",
        "bodyRaw": "raw",
        "cookies": "list",
        "HEADERS": "character",
        "httpuv.version": "package_version",
        "pr": "Plumber",
        "rook.errors": "ErrorStream",
        "rook.input": "InputStream",
    }
    expected = {name: ["string"] for name in strings} | {k: [v] for k, v in others.items()}
    assert body_json(response) == expected


def test_non_ascii_header_bytes_reach_r_as_utf8(pool):
    # The HTTP layer hands raw header bytes over decoded as latin-1.
    sent = "h\u00e9 \u2713".encode().decode("latin-1")
    response = pool.get("/req", headers=[("x-custom", sent)])
    assert body_json(response)["custom"] == ["h\u00e9 \u2713"]


def test_large_body_crosses_intact(pool):
    body = os.urandom(3_000_000)
    response = pool.request(
        "POST", "/mirror", headers=[("content-type", "application/octet-stream")], body=body
    )
    assert (response.status, content_type(response)) == (200, "application/octet-stream")
    assert response.body == body


def test_response_status_and_headers_set_by_the_endpoint(pool):
    response = pool.get("/status")
    assert response.status == 201
    assert ("X-Plumbline", "yes") in response.headers
    assert response.body == b'{"created":[true]}'


def test_error_in_endpoint_is_plumbers_500(pool):
    response = pool.get("/error")
    assert (response.status, content_type(response)) == (500, "application/json")
    assert body_json(response) == {"error": "500 - Internal server error"}


def test_unknown_route_and_wrong_method(pool):
    assert pool.get("/nope").status == 404
    wrong = pool.request("POST", "/text")
    assert wrong.status == 405
    assert body_json(wrong) == {"error": "405 - Method Not Allowed"}


def test_character_vector_body_sends_its_first_element(pool):
    assert pool.get("/text-vector").body == b"one"


def test_plumber_exports_are_available_unqualified(pool):
    response = pool.get("/attachment")
    assert response.status == 200
    assert ("Content-Disposition", 'attachment; filename="hello.txt"') in response.headers
    assert response.body == b"hello"


def test_repeated_request_headers_are_joined_like_httpuv(pool):
    response = pool.get("/payload", headers=[("x-payload", "one"), ("x-payload", "two")])
    assert body_json(response) == {"payload": ["one,two"]}


def test_plumber_max_request_size_option_is_enforced():
    with running_pool(APPS / "max_size" / "plumber.R", workers=1) as harness:
        small = harness.request("POST", "/upload", body=b"x" * 50)
        assert (small.status, small.body) == (200, b"50")
        large = harness.request("POST", "/upload", body=b"x" * 200)
        assert (large.status, content_type(large), large.body) == (
            413,
            "text/plain",
            b"Maximum upload size exceeded",
        )


def test_utf8_bytes_are_passed_through(pool):
    assert pool.get("/bytes").body == "hé".encode()


def test_r_console_output_does_not_corrupt_the_protocol(pool):
    for _ in range(3):
        assert body_json(pool.get("/noisy")) == {"ok": [True]}
    assert pool.get("/text").body == b"hello"


def test_query_value_is_data_not_code(pool):
    marker = f"/tmp/plumbline-owned-{uuid.uuid4().hex}"
    query = f"q=system(%22touch%20{marker}%22)"
    response = pool.get("/value", query)
    assert body_json(response) == {"q": [f'system("touch {marker}")']}
    assert not os.path.exists(marker)


# ---- concurrency and lifecycle ----------------------------------------------------------


def test_workers_run_requests_in_parallel():
    with running_pool(BASIC, workers=8, timeout=60) as harness:
        harness.wait_until_idle(timeout=120)
        started = time.monotonic()
        futures = [harness.submit("GET", "/sleep", "secs=3") for _ in range(8)]
        # All eight in R at the same moment (each sleeps 3 s): they run side by side.
        wait_for(
            lambda: harness.pool.in_flight == 8 and harness.pool.queue_depth == 0,
            timeout=20,
            interval=0.02,
        )
        assert [f.result(60).body for f in futures] == [b"slept"] * 8
        assert time.monotonic() - started < 8 * 3  # generous: less than one after another


def test_sequential_requests_go_to_the_worker_that_went_idle_last(pool):
    # Its caches are warm; the other worker stays asleep (and its copy-on-write pages shared).
    pids = {int(pool.get("/pid").body) for _ in range(12)}
    assert len(pids) == 1
    # Busy with a slow request, that worker is not taken: the other one answers.
    slow = pool.submit("GET", "/sleep", "secs=2")
    wait_for(lambda: pool.pool.in_flight == 1, timeout=20, interval=0.02)
    other = int(pool.get("/pid").body)
    assert slow.result(60).body == b"slept"
    assert other not in pids


def test_timeout_kills_and_replaces_the_worker(caplog):
    caplog.set_level(logging.INFO, logger="plumbline.pool")
    with running_pool(BASIC, workers=2, timeout=1.5) as harness:
        before = {row["pid"] for row in harness.wait_until_idle()}
        with pytest.raises(WorkerTimeout):
            harness.get("/sleep", "secs=30")
        after = {row["pid"] for row in harness.wait_until_idle()}
        assert len(after) == 2 and len(after - before) == 1
        assert harness.pool.restart_counts["timeout"] == 1
        assert [harness.get("/text").body for _ in range(4)] == [b"hello"] * 4
    # The log says the pool killed it, and why; it does not guess at the OOM killer.
    killed = [e for e in map(_logged, caplog.records) if e["event"] == "worker_killed"]
    assert [(e["message"], e["reason"]) for e in killed] == [
        ("worker stopped by the pool with SIGKILL", "timeout")
    ]
    assert killed[0]["pid"] in before - after


def test_request_still_queued_after_the_timeout_gets_pool_full_and_kills_nothing():
    # timeout 9 s, two calls of 6 s: each runs well within the timeout (3 s to spare), and a
    # request queued behind both waits 12 s less however late it came, 3 s more than allowed
    # as long as it came within 3 s of the first (it comes within milliseconds).
    with running_pool(BASIC, workers=1, timeout=9) as harness:
        harness.wait_until_idle()
        first = harness.submit("GET", "/sleep", "secs=6")
        wait_for(lambda: harness.pool.in_flight == 1)
        second = harness.submit("GET", "/sleep", "secs=6")
        wait_for(lambda: harness.pool.queue_depth == 1)
        with pytest.raises(PoolFull, match="no worker became free"):
            harness.get("/text")
        assert first.result(60).body == b"slept" and second.result(60).body == b"slept"
        assert harness.pool.restart_counts["timeout"] == 0


def test_quit_fails_only_that_request_and_the_slot_is_refilled():
    with running_pool(BASIC, workers=2) as harness:
        harness.wait_until_idle()
        busy = harness.submit("GET", "/sleep", "secs=2")
        wait_for(lambda: harness.pool.in_flight == 1)  # /quit goes to the other worker
        with pytest.raises(WorkerDied):
            harness.request("POST", "/quit")
        assert busy.result(30).body == b"slept"
        harness.wait_until_idle()
        assert harness.pool.restart_counts["exited"] == 1
        assert harness.get("/text").body == b"hello"


def _logged(record: logging.LogRecord) -> dict:
    """A pool log record as its JSON line reads: the message and its structured fields."""
    return {"message": record.getMessage(), **getattr(record, "fields", {})}


def test_idle_worker_killed_by_the_os_is_replaced(caplog):
    caplog.set_level(logging.INFO, logger="plumbline.pool")
    with running_pool(BASIC, workers=1) as harness:
        victim = harness.wait_until_idle()[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        rows = wait_for(
            lambda: [r for r in harness.snapshot() if r["state"] == "idle" and r["pid"] != victim]
        )
        assert len(rows) == 1
        assert harness.pool.restart_counts["killed_signal"] == 1
        assert harness.get("/text").body == b"hello"
    died = [e for e in map(_logged, caplog.records) if e["event"] == "worker_died"]
    assert len(died) == 1
    assert "SIGKILL" in died[0]["message"] and "perhaps out of memory?" in died[0]["message"]
    assert died[0]["pid"] == victim


def test_max_requests_recycles_workers_without_losing_requests():
    with running_pool(BASIC, workers=1, max_requests=3, max_requests_jitter=0) as harness:
        harness.wait_until_idle()
        # The worker keeps serving past its limit until its successor has loaded.
        pids = []
        deadline = time.monotonic() + 60
        while len(set(pids)) < 3 and time.monotonic() < deadline:
            response = harness.get("/pid")
            assert response.status == 200
            pids.append(int(response.body))
            time.sleep(0.05)
        assert len(set(pids)) >= 3
        assert pids.count(pids[0]) >= 3
        assert harness.pool.restart_counts["max_requests"] >= 2


def test_a_request_s_query_body_and_content_type_never_reach_the_next():
    """The worker's call of R keeps what most requests pass (no query, no body) in place from
    one call to the next and clears what it made for one request: one worker answers each
    request as if it were its first. Plumber parses a JSON body without a content type, not
    one sent as text/plain (the endpoint's arguments are then missing: a 500)."""
    json_body = b'{"a":1,"b":2}'
    sums = [
        ([("content-type", "application/json")], json_body, 200),
        ([("content-type", "text/plain")], json_body, 500),
        ([], json_body, 200),  # no content type: not the text/plain before it
        ([("content-type", "text/plain")], json_body, 500),
        ([], b"", 500),  # no body: not the one before it
        ([("content-type", "application/json")], b'{"a":2,"b":5}', 200),
    ]
    with running_pool(BASIC, workers=1, timeout=20) as harness:
        answers = []
        for headers, body, _ in sums:
            answer = harness.request("POST", "/sum", headers=headers, body=body)
            answers.append((answer.status, body_json(answer) if answer.status == 200 else None))
            echoed = [body_json(harness.get("/echo", query)) for query in ("msg=x&n=1", "")]
            assert echoed == [{"msg": ["x"], "n": ["1"]}, {"msg": ["none"], "n": ["0"]}]
        assert answers == [
            (
                status,
                {"sum": [json.loads(body)["a"] + json.loads(body)["b"]]} if status == 200 else None,
            )
            for _, body, status in sums
        ]


def test_abandoned_request_does_not_leak_its_answer_to_the_next():
    with running_pool(BASIC, workers=1) as harness:
        harness.wait_until_idle()
        abandoned = harness.submit("GET", "/sleep", "secs=1")
        wait_for(lambda: harness.pool.in_flight == 1)
        abandoned.cancel()  # the client went away while R was still working
        assert harness.get("/text").body == b"hello"
        assert harness.get("/json").body == b'{"a":[1]}'
        assert harness.pool.restart_counts == dict.fromkeys(harness.pool.restart_counts, 0)


def test_queue_is_bounded():
    with running_pool(BASIC, workers=1, max_queue=1, timeout=30) as harness:
        harness.wait_until_idle()
        running = harness.submit("GET", "/sleep", "secs=2")
        wait_for(lambda: harness.pool.in_flight == 1)
        queued = harness.submit("GET", "/text")
        wait_for(lambda: harness.pool.queue_depth == 1)
        with pytest.raises(PoolFull):
            harness.get("/text")
        assert running.result(30).body == b"slept"
        assert queued.result(30).body == b"hello"
        assert harness.pool.queue_depth == 0


def test_close_waits_for_in_flight_requests_and_runs_exit_hooks(tmp_path, monkeypatch):
    marker = tmp_path / "exit-hooks"
    monkeypatch.setenv("PLUMBLINE_TEST_EXIT_MARKER", str(marker))
    with running_pool(BASIC, workers=2) as harness:
        harness.wait_until_idle()
        # The first worker, swapped at start (docs/workers.md), stopped as any replaced one.
        assert marker.read_text() == "bye\n"
        marker.unlink()
        running = harness.submit("GET", "/sleep", "secs=1")
        wait_for(lambda: harness.pool.in_flight == 1)
        harness.run(harness.pool.close(10))
        assert running.result(5).body == b"slept"
        assert harness.snapshot() == []
    assert marker.read_text() == "bye\n" * 2


# ---- start-up failures -------------------------------------------------------------------


def test_syntax_error_fails_start_with_the_line():
    with pytest.raises(AppLoadError) as caught:
        with running_pool(APPS / "syntax_error" / "plumber.R", workers=2):
            pass
    assert "plumber.R:5:1: unexpected '}'" in caught.value.message


def test_stop_at_load_fails_start_with_rs_message():
    with pytest.raises(AppLoadError) as caught:
        with running_pool(APPS / "stop_at_load" / "plumber.R", workers=1):
            pass
    assert "database unreachable" in caught.value.message
    assert "plumber.R" in caught.value.message


@pytest.mark.parametrize("preload", [False, True], ids=["spawned", "preloaded"])
def test_a_failed_start_logs_no_retry_and_no_guessed_cause(caplog, preload):
    caplog.set_level(logging.INFO, logger="plumbline.pool")
    with pytest.raises(AppLoadError, match="database unreachable"):
        with running_pool(APPS / "stop_at_load" / "plumber.R", workers=2, preload=preload):
            pass
    logged = [_logged(r) for r in caplog.records]
    # The pool does not retry an app that failed its first load, nor say it will.
    assert [e for e in logged if e["event"] == "worker_backoff"] == []
    assert not any("out of memory" in e["message"] for e in logged), logged
    # A worker that loaded the app itself and failed is stopped by the pool, and said so (the
    # other one too, at the shutdown, if it had not failed yet), unless it exited first.
    stopped = [e for e in logged if e["event"] == "worker_stopped"]
    reasons = sorted(e["reason"] for e in stopped)
    expected = [[]] if preload else [["load_failed", "load_failed"], ["load_failed", "shutdown"]]
    assert reasons in expected
    ends = {
        "worker stopped by the pool with SIGKILL",
        f"worker exited with code {int(ExitCode.APP_LOAD)}",
    }
    assert {e["message"] for e in stopped} <= ends, stopped


@pytest.mark.parametrize("preload", [False, True], ids=["spawned", "preloaded"])
def test_later_load_failures_back_off_and_log_once(tmp_path, monkeypatch, caplog, preload):
    caplog.set_level(logging.INFO, logger="plumbline.pool")
    breaker = tmp_path / "broken"
    monkeypatch.setenv("PLUMBLINE_TEST_BREAK_FILE", str(breaker))
    with running_pool(APPS / "breakable" / "plumber.R", workers=1, preload=preload) as harness:
        victim = harness.wait_until_idle()[0]["pid"]
        breaker.touch()
        if preload:  # the app loads again only in a new zygote
            os.kill(harness.pool._zygote.pid, signal.SIGKILL)
            wait_for(lambda: not harness.pool._zygote.alive)
        os.kill(victim, signal.SIGKILL)
        # Back-off 0.5, 1, 2 s before the 2nd, 3rd, 4th attempt: not a tight crash loop. The
        # failures are timed as they are counted; a gap can only be longer than its back-off.
        failed_at: list[float] = []

        def count() -> bool:
            while len(failed_at) < harness.pool.restart_counts["load_failed"]:
                failed_at.append(time.monotonic())
            return len(failed_at) >= 4

        wait_for(count, timeout=90, interval=0.02)
        gaps = [later - earlier for earlier, later in zip(failed_at, failed_at[1:])]
        assert all(gap >= back_off for gap, back_off in zip(gaps, (0.5, 1.0, 2.0))), gaps
        # Between attempts the slot is failed, starting or being reaped: never serving.
        assert [r["state"] for r in harness.snapshot()] in (["failed"], ["starting"], ["stopping"])
        assert not harness.pool.ready
        breaker.unlink()
        harness.wait_until_idle(timeout=60)
        assert harness.get("/ok").body == b"fine"
    logged = [_logged(r) for r in caplog.records]
    load_errors = [r for r in logged if r["event"] == "load_failed"]
    assert len(load_errors) == 1
    assert "broken on purpose" in load_errors[0]["message"]
