"""One log format: every line `plumbline serve` writes is a JSON object of the same shape
(server, pool and access log alike), and R's start-up leaves no rpy2 warning behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import httpx
import pytest

from support import EXAMPLE, PLUMBLINE, free_port

pytestmark = pytest.mark.slow
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_serve_logs_one_json_shape_and_no_rpy2_noise(tmp_path):
    port = free_port()
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(
            [
                *PLUMBLINE,
                "serve",
                str(EXAMPLE),
                "--port",
                str(port),
                "--workers",
                "2",
                "--drain-delay",
                "0",
            ],
            stdout=stdout,
            stderr=stderr,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 90
        while '"message":"listening"' not in err.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/parity?int=4", timeout=10).text == "even"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    server_lines = err.read_text().splitlines()
    assert not [line for line in server_lines if "redefined by R" in line or "warn" in line]
    entries = [json.loads(line) for line in server_lines if line.startswith("{")]
    for entry in entries:
        assert STAMP.match(entry["time"]) and entry["level"] and entry["logger"]
        assert isinstance(entry["message"], str)
    events = {e.get("event") for e in entries if e["logger"] == "plumbline.pool"}
    assert {"worker_spawned", "worker_ready", "pool_started"} <= events
    ready = next(e for e in entries if e.get("event") == "worker_ready")
    assert isinstance(ready["worker"], int) and isinstance(ready["pid"], int)
    listening = next(e for e in entries if e["message"] == "listening")
    assert listening["url"] == f"http://127.0.0.1:{port}" and listening["workers"] == 2
    access = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(access) == 1
    assert access[0]["logger"] == "plumbline.access" and STAMP.match(access[0]["time"])
    assert (access[0]["route"], access[0]["status"]) == ("/parity", 200)
