"""The front door under attack: each attack of issue 9 as a real client (raw sockets on
loopback) against a real `plumbline serve` of the example app, bounded in time and count.

What a user would notice: no request can kill a worker (the restart counters stay 0 and the
same worker keeps answering), slow or idle clients are answered 408 or closed instead of
holding the server, connections past the limit do not stop /livez and /readyz, a body cut
short never reaches R (the example's POST /fail would make /health fail), keep-alive
clients are told to leave while the server drains, and a client that hangs up
mid-pipeline leaves no error in the log.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
from serve_harness import Served, serve

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 1.0
MAX_CONNECTIONS = 20


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    with serve(
        tmp_path_factory.mktemp("front"),
        "--workers",
        "1",
        "--drain-delay",
        "0",
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--body-timeout",
        str(BODY_TIMEOUT),
        "--keep-alive-timeout",
        str(KEEP_ALIVE),
        "--max-connections",
        str(MAX_CONNECTIONS),
    ) as served:
        yield served


# ---- raw HTTP over sockets ------------------------------------------------------------


def connect(served: Served, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=timeout)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset after its answer counts as a close)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def exchange(served: Served, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a request, read the answer to the end of the connection."""
    with connect(served) as sock:
        sock.sendall(request)
        return parse(read_all(sock))


def get(path: str, *headers: bytes) -> bytes:
    return b"".join(
        [
            b"GET ",
            path.encode(),
            b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n",
            *(h + b"\r\n" for h in headers),
            b"\r\n",
        ]
    )


def workers_unharmed(served: Served, pids: set[int], check=("/parity?int=3", b"odd")) -> None:
    """The same R worker answers and nothing was restarted."""
    assert served.get(check[0])[2] == check[1]
    assert worker_pids(served) == pids
    _, _, body = served.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith("plumbline_worker_restarts_total{"):
            assert line.endswith(" 0.0"), line


def worker_pids(served: Served) -> set[int]:
    return {child.pid for child in psutil.Process(served.proc.pid).children()}


def metric(served: Served, name: str) -> float:
    value = served.metric(name)
    assert value is not None, f"{name} not in /metrics"
    return value


# ---- 1. sizes -----------------------------------------------------------------------


def test_oversized_heads_get_431_or_414_and_never_reach_a_worker(front):
    pids = worker_pids(front)
    # One big header field, many small ones, a long URL: refused by the front.
    status, headers, body = exchange(front, get("/parity?int=3", b"X-Big: " + b"a" * 70_000))
    assert status == 431 and headers["connection"] == "close"
    assert json.loads(body)["max_header_bytes"] == 64 * 1024
    many = [b"X-H%d: 1" % i for i in range(101)]
    assert exchange(front, get("/parity?int=3", *many))[0] == 431
    status, _, body = exchange(front, get("/parity?int=3&pad=" + "a" * 9000))
    assert status == 414 and json.loads(body) == {
        "error": "request URL too long",
        "max_url_length": 8192,
    }
    # Within the limits, with every byte one JSON escapes to six characters: reaches R whole.
    fits = [b"X-F%d: " % i + b"\xff" * 600 for i in range(98)]
    assert exchange(front, get("/parity?int=4", *fits))[2] == b"even"
    workers_unharmed(front, pids)


def test_thirty_one_mebibyte_heads_are_refused_while_they_arrive(front):
    pids = worker_pids(front)
    refused = before = metric(
        front, 'plumbline_connections_refused_total{reason="header_too_large"}'
    )
    for _ in range(30):
        with connect(front) as sock:
            sock.sendall(b"GET /parity?int=3 HTTP/1.1\r\nHost: t\r\nX-Big: ")
            answer = b""
            try:
                for _ in range(16):  # 1 MiB in 64 KiB pieces; the server stops reading early
                    sock.sendall(b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = read_all(sock)
        if answer:  # plumber resets the connection; we answer first when the client reads
            assert parse(answer)[0] == 431
    refused = metric(front, 'plumbline_connections_refused_total{reason="header_too_large"}')
    assert refused - before == 30
    workers_unharmed(front, pids)


# ---- 2. deadlines and the connection limit ------------------------------------------------


def test_slowloris_gets_408_and_is_closed_while_others_are_served(front):
    socks = [connect(front) for _ in range(10)]
    started = time.monotonic()
    stop = threading.Event()

    def drip():  # one header byte every 0.2 s on every connection
        for byte in b"GET /parity?int=3 HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100:
            if stop.is_set():
                return
            for sock in socks:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    pass
            time.sleep(0.2)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        assert front.get("/parity?int=5")[2] == b"odd"  # others are served meanwhile
        answers = [parse(read_all(sock)) for sock in socks]
        waited = time.monotonic() - started
    finally:
        stop.set()
        for sock in socks:
            sock.close()
    assert {status for status, _, _ in answers} == {408}
    assert all(headers["connection"] == "close" for _, headers, _ in answers)
    assert HEADER_TIMEOUT <= waited < HEADER_TIMEOUT + 10  # closed by the deadline, not by us


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(front):
    with connect(front) as sock:
        started = time.monotonic()
        assert read_all(sock) == b""
        assert time.monotonic() - started < HEADER_TIMEOUT + 10
    with connect(front) as sock:  # blank lines are not a request either
        for _ in range(int(HEADER_TIMEOUT * 10) + 20):
            try:
                sock.send(b"\r\n")
            except OSError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("blank lines kept the connection open")


def test_idle_keep_alive_connection_is_closed(front):
    with connect(front) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.2)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        answered = time.monotonic() - 0.2
        assert read_all(sock) == b""  # closed by the server, no second answer
        assert KEEP_ALIVE * 0.8 <= time.monotonic() - answered < KEEP_ALIVE + 10


def test_past_max_connections_probes_answer_and_the_rest_get_a_fast_503(tmp_path):
    # its own server: the default header timeout (10 s) lets the test hold connections
    with serve(tmp_path, "--workers", "1", "--max-connections", str(MAX_CONNECTIONS)) as served:
        process = psutil.Process(served.proc.pid)
        held = []
        try:
            for _ in range(MAX_CONNECTIONS):
                sock = connect(served)
                sock.sendall(b"GET /parity")  # a head begun: counts until its deadline
                held.append(sock)
            served.wait_until(
                lambda: exchange(served, get("/parity?int=3"))[0] == 503,
                timeout=5,
                what="the connection budget used up",
            )
            status, headers, body = exchange(served, get("/parity?int=3"))
            assert status == 503 and headers["retry-after"] == "1"
            assert json.loads(body)["error"] == "too many connections, retry later"
            status, _, body = exchange(served, get("/livez"))
            assert (status, json.loads(body)) == (200, {"status": "alive"})
            assert exchange(served, get("/readyz"))[0] == 200
            # A flood past the limit does not use up file descriptors: each connection is
            # answered or closed at once.
            fds = process.num_fds()
            for _ in range(300):
                with connect(served):
                    pass
            assert process.num_fds() < fds + 100
        finally:
            for sock in held:
                sock.close()
        served.wait_until(
            lambda: exchange(served, get("/parity?int=3"))[0] == 200,
            timeout=10,
            what="the held connections gone",
        )
        # (a flood connection the client closed before the server accepted it is not counted)
        assert (
            metric(served, 'plumbline_connections_refused_total{reason="too_many_connections"}')
            >= 3
        )


# ---- 3. bodies that do not arrive whole ----------------------------------------------------


def test_a_body_cut_short_never_reaches_r(front):
    before = metric(front, 'plumbline_requests_incomplete_total{reason="disconnect"}')
    with connect(front) as sock:  # /fail makes the app's /health fail: if R ran it, we'd see
        sock.sendall(b"POST /fail HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        time.sleep(0.3)
    front.wait_until(
        lambda: (
            metric(front, 'plumbline_requests_incomplete_total{reason="disconnect"}') == before + 1
        ),
        timeout=10,
        what="the incomplete body counted",
    )
    assert front.get("/health")[2] == b"OK"
    lines = [
        json.loads(line)
        for line in front.stderr.read_text().splitlines()
        if "request body incomplete" in line
    ]
    assert lines and lines[-1]["level"] == "info" and lines[-1]["path"] == "/fail"
    assert lines[-1]["body_bytes_received"] == 10


def test_a_body_that_stops_arriving_gets_408_and_never_reaches_r(front):
    with connect(front) as sock:
        sock.sendall(b"POST /fail HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        started = time.monotonic()
        status, headers, body = parse(read_all(sock))
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body)["body_timeout"] == BODY_TIMEOUT
    assert BODY_TIMEOUT * 0.8 <= time.monotonic() - started < BODY_TIMEOUT + 10
    assert front.get("/health")[2] == b"OK"
    assert metric(front, 'plumbline_requests_incomplete_total{reason="body_timeout"}') >= 1


def test_a_client_that_hangs_up_mid_pipeline_logs_no_error(front):
    pids = worker_pids(front)
    for pause in (0, 0.01, 0.05):
        with connect(front) as sock:
            sock.sendall(get("/parity?int=3").replace(b"Connection: close\r\n", b"") * 30)
            time.sleep(pause)
    with connect(front) as sock:
        sock.sendall(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n" * 2)
        time.sleep(0.3)
    front.wait_until(
        lambda: front.get("/metrics")[2].count(b'state="idle"} 1.0') == 1,
        timeout=30,
        what="the worker idle again",
    )
    errors = [
        line
        for line in front.stderr.read_text().splitlines()
        if '"level":"error"' in line or "Traceback" in line
    ]
    assert errors == []
    workers_unharmed(front, pids)


# ---- 4. drain ---------------------------------------------------------------------------


def test_keep_alive_clients_are_told_to_leave_during_drain_and_lose_no_request(tmp_path):
    with serve(tmp_path, "--workers", "1", "--drain-delay", "3") as served:
        results = {"ok": 0, "closed_told": 0, "failed": [], "refused": 0}
        draining = threading.Event()

        def client():
            conn = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
                    try:
                        conn.connect()
                    except ConnectionRefusedError:  # the listener is closed: go elsewhere
                        results["refused"] += 1
                        return
                try:
                    conn.request("GET", "/parity?int=3")
                    resp = conn.getresponse()
                    resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    # a request on a connection the server had kept open: lost
                    results["failed"].append(repr(exc))
                    conn.close()
                    conn = None
                    continue
                results["ok"] += 1
                time.sleep(0.2)  # a client's think time: its connection sits idle meanwhile
                if resp.getheader("connection", "").lower() == "close":
                    results["closed_told"] += 1 if draining.is_set() else 0
                    conn.close()
                    conn = None

        threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        served.wait_until(lambda: results["ok"] >= 8, timeout=30, what="traffic")
        draining.set()
        served.proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        assert served.proc.wait(60) == 0
    assert results["failed"] == []
    assert results["closed_told"] >= 4  # every client was told, at least once each
    assert results["refused"] == 4  # and then found the listener closed


def test_a_client_that_connected_as_the_server_stops_gets_its_answer(tmp_path):
    with serve(
        tmp_path, "--workers", "1", "--drain-delay", "0", "--header-timeout", "30"
    ) as served:
        talker, silent = connect(served), connect(served)
        # the server has accepted both: open are these two and the one asking for metrics
        served.wait_until(lambda: served.metric("plumbline_connections_open") == 3, what="accept")
        stopped_at = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        served.wait_until(
            lambda: "Shutting down" in served.stderr.read_text(), timeout=10, what="stopping"
        )
        time.sleep(0.2)  # uvicorn asks every connection to close right after it logs that
        talker.sendall(b"GET /parity?int=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_all(talker)
        assert answer, "the connection was closed without an answer"
        status, headers, body = parse(answer)
        assert (status, body) == (200, b"odd")
        assert headers["connection"] == "close"
        assert read_all(silent) == b""  # one that sends nothing is closed after the grace
        assert served.proc.wait(30) == 0
        assert time.monotonic() - stopped_at < 15  # not header-timeout's 30 s
        talker.close()
        silent.close()


# ---- 5. memory --------------------------------------------------------------------------


def test_an_oversized_allocation_is_a_500_and_metrics_show_worker_memory(tmp_path):
    app = Path(__file__).parent / "apps" / "memory" / "plumber.R"
    # R collects fully before it refuses the allocation; re-forking after that is tested in
    # test_runtime_pool_refork.py, not here.
    with serve(
        tmp_path,
        "--workers",
        "1",
        "--max-worker-memory",
        "256MiB",
        "--refork-after-full-gc",
        "off",
        plumber_file=app,
    ) as served:
        pids = worker_pids(served)
        status, _, body = served.get("/allocate?mb=8192")
        assert status == 500 and json.loads(body) == {"error": "500 - Internal server error"}
        assert "cannot allocate vector of size 8.0 Gb" in served.stderr.read_text()
        assert served.get("/allocate?mb=16")[0] == 200
        assert metric(served, 'plumbline_worker_resident_memory_bytes{worker="0"}') > 10 * 1024**2
        limit = metric(served, 'plumbline_worker_memory_limit_bytes{worker="0"}')
        assert 256 * 1024**2 < limit < 256 * 1024**2 + 2 * 1024**3
        workers_unharmed(served, pids, ("/ok", b"ok"))
