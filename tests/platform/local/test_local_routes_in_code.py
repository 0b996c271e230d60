"""`plumbline up` routes what plumber's router has, routes added in R code included: the
local HAProxy routes the Ingress rules, and those come from plumber's route table (R loads
the file once), not from the annotations alone."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import httpx
import pytest

from support import PLUMBLINE, REPO, free_port

pytestmark = pytest.mark.slow

IN_CODE = REPO / "tests" / "compat" / "apps" / "in-code"


def test_up_routes_the_routes_r_code_adds(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(IN_CODE, app)
    port = free_port()
    log = tmp_path / "up.log"
    env = {**os.environ, "PLUMBLINE_STATE_DIR": str(tmp_path / "state")}
    env.pop("PLUMBLINE_ROUTE_TABLE", None)
    with open(log, "w") as out:
        up = subprocess.Popen(
            [
                *PLUMBLINE,
                "up",
                str(app / "plumber.R"),
                "--replicas",
                "1",
                "--workers",
                "1",
                "--port",
                str(port),
                "--name",
                "in-code",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 150
        while "ready: " not in log.read_text(errors="replace"):
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        output = log.read_text()
        assert "warning: " not in output, output  # no route left to R code alone
        url = re.search(r"ready: (\S+)", output).group(1)
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/added").json() == {"n": [1]}
            assert client.put("/handled").text == "PUT"
            assert client.get("/items/7").json() == {"id": [7], "class": ["integer"]}
            assert client.get("/other/hello/you").text == "hello you"
            assert client.get("/static/s.txt").text == "static in code\n"
            missing = client.get("/no/such/path")
        assert missing.status_code == 404 and missing.json()["error"] == "no route"
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(90)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
