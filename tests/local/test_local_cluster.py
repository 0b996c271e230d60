"""`plumbline up` for real: three replicas of the example app behind HAProxy, the status a
user sees, the six failover scenarios under Locust load (short versions), a second `up` on
the same port, and Ctrl-C leaving nothing behind.

One cluster serves the whole module (starting R replicas is the slow part); the tests run
in file order and the last one stops it.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from plumbline.platform.failover import run_scenario
from plumbline.platform.local_cluster import free_port
from plumbline.platform.local_control import StateFile

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO / "examples" / "plumber-on-k8s"
PLUMBLINE = [sys.executable, "-m", "plumbline"]
NAME = "failover"
START_TIMEOUT = 150


class Cluster:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.app = tmp / "app" / "plumber.R"
        shutil.copytree(EXAMPLE_DIR, self.app.parent)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PLUMBLINE_STATE_DIR": str(tmp / "state")}
        self.log = tmp / "up.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*PLUMBLINE, "up", str(self.app), "--replicas", "3", "--workers", "1",
             "--port", str(self.port), "--name", NAME, "--unready-timeout", "3", "--watch"],
            env=self.env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if "ready: " in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"`plumbline up` did not get ready:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*PLUMBLINE, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def state(self) -> StateFile:
        os.environ["PLUMBLINE_STATE_DIR"] = self.env["PLUMBLINE_STATE_DIR"]
        return StateFile.find(NAME)

    def status(self) -> dict:
        return httpx.get(self.state().control_url + "/status", timeout=10).json()

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        procs = self.descendants()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for proc in procs:  # only if the test failed before: never leak processes
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    saved = os.environ.get("PLUMBLINE_STATE_DIR")
    c = Cluster(tmp_path_factory.mktemp("local-cluster"))
    try:
        c.start()
        yield c
    finally:
        c.stop()
        if saved is None:
            os.environ.pop("PLUMBLINE_STATE_DIR", None)
        else:
            os.environ["PLUMBLINE_STATE_DIR"] = saved


def test_up_serves_the_app_through_haproxy(cluster):
    assert f"ready: {cluster.url} (3/3 replicas)" in cluster.output()
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        answers = {n: client.get("/parity", params={"int": n}).text for n in range(12)}
        missing = client.get("/no/such/path")
    assert answers == {n: "even" if n % 2 == 0 else "odd" for n in range(12)}
    assert missing.status_code == 404 and missing.json()["error"] == "no route"
    status = cluster.status()
    assert status["ready"] == 3 and len(status["replicas"]) == 3
    # requests served come from HAProxy's counters, read by the supervisor's next look
    deadline = time.monotonic() + 5
    while sum(r["requests"] for r in status["replicas"]) < 12 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = cluster.status()
    assert sum(r["requests"] for r in status["replicas"]) >= 12


def test_status_and_logs_commands(cluster):
    result = cluster.cli("status", NAME, "--local")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{NAME} (local): {cluster.url}" in out and "3/3 replicas ready" in out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+r\d+\s", line)]
    assert len(rows) == 3
    for name, state, ready, pid, port, requests, *_ in rows:
        assert (state, ready) == ("ready", "yes")
        assert psutil.pid_exists(int(pid)) and int(port) > 0 and requests.isdigit()
    for path in ("/parity", "/wait", "/fail", "/quit", "/health"):
        assert f"{cluster.url}{path}" in out
    logs = cluster.cli("logs", NAME, "--local")
    assert logs.returncode == 0, logs.stderr
    # The only local cluster running needs no name, as in the README.
    unnamed = cluster.cli("status", "--local")
    assert unnamed.returncode == 0 and f"{NAME} (local): {cluster.url}" in unnamed.stdout
    assert re.search(r"^r\d+ \| .*listening", logs.stdout, re.M)


def test_second_up_on_the_same_port_fails_and_leaves_the_first_alone(cluster):
    before = {r["name"]: r["pid"] for r in cluster.status()["replicas"]}
    result = cluster.cli("up", str(cluster.app), "--port", str(cluster.port),
                         "--name", "intruder", timeout=60)
    assert result.returncode != 0
    assert f"port {cluster.port}" in result.stderr and "taken" in result.stderr
    assert cluster.process.poll() is None
    after = cluster.status()
    assert {r["name"]: r["pid"] for r in after["replicas"]} == before and after["ready"] == 3
    assert httpx.get(cluster.url + "/parity?int=7", timeout=10).text == "odd"


@pytest.mark.parametrize("scenario", ["quit-worker", "fail-health", "kill-replica",
                                      "freeze-replica", "rolling-restart", "deploy-change"])
def test_failover_scenario_loses_no_request(cluster, scenario, tmp_path):
    lines: list[str] = []
    result = run_scenario(scenario, cluster.state(), users=4, baseline=2.0, after=1.0,
                          reports=tmp_path, emit=lines.append)
    report = "\n".join(lines)
    assert result.passed, report
    assert result.requests > 10 and not result.failures, report
    assert lines[-1].startswith(f"PASS {scenario}: 0 failed")
    assert result.baseline_p99_ms is not None and result.event_p99_ms is not None, report
    assert (tmp_path / scenario / "report.html").is_file()
    assert (tmp_path / scenario / f"{scenario}_stats.csv").is_file()
    status = cluster.status()
    assert status["ready"] == 3 and len(status["replicas"]) == 3


def test_scale_down_and_up_again(cluster):
    down = cluster.cli("scale", NAME, "2", "--local", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "scaled to 2 replicas, all ready" in down.stdout
    assert "draining (scale down)" in down.stdout
    assert [r["ready"] for r in cluster.status()["replicas"]] == [True, True]
    up = cluster.cli("scale", NAME, "3", "--local", timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    status = cluster.status()
    assert status["ready"] == 3 and len(status["replicas"]) == 3


def test_watch_rolls_out_a_changed_plumber_file(cluster):
    before = cluster.status()
    path = Path(before["plumber_file"])
    path.write_text(path.read_text() + '\n#* @serializer text\n#* @get /watched\n'
                    'function() "seen"\n')
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        status = cluster.status()
        if (status["revision"] > before["revision"] and status["ready"] == 3
                and all(r["revision"] == status["revision"] for r in status["replicas"])
                and "/watched" in {e["path"] for e in status["endpoints"]}):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no rollout of the changed file:\n{cluster.output()[-3000:]}")
    assert f"{path} changed; rolling it out" in cluster.output()
    deadline = time.monotonic() + 10  # HAProxy is reloaded with the new route at the end
    while time.monotonic() < deadline:
        answer = httpx.get(cluster.url + "/watched", timeout=10)
        if answer.status_code == 200:
            break
        time.sleep(0.2)
    assert answer.text == "seen"


def test_deploy_of_a_plumber_file_that_fails_to_load_keeps_the_old_revision(cluster, tmp_path):
    before = cluster.status()
    broken = tmp_path / "broken" / "plumber.R"
    broken.parent.mkdir()
    broken.write_text('stop("model file not found")\n\n#* @get /parity\nfunction(int) "x"\n')
    result = cluster.cli("deploy", str(broken), "--name", NAME, "--local", timeout=150)
    assert result.returncode != 0
    assert "model file not found" in result.stdout + result.stderr  # R's message
    after = cluster.status()
    assert (after["revision"], after["plumber_file"]) == (before["revision"],
                                                          before["plumber_file"])
    assert after["ready"] == 3
    assert {r["pid"] for r in after["replicas"]} == {r["pid"] for r in before["replicas"]}
    assert httpx.get(cluster.url + "/parity?int=2", timeout=10).text == "even"


def test_ctrl_c_stops_everything(cluster):
    procs = cluster.descendants()
    names = {p.name() for p in procs}
    assert "haproxy" in names and len(procs) >= 3 + 3 + 2  # replicas, R workers, haproxy
    cluster.process.send_signal(signal.SIGINT)
    assert cluster.process.wait(90) == 0
    out = cluster.output()
    assert "stopping" in out and out.rstrip().endswith("haproxy stopped")
    # replicas were drained and stopped before HAProxy went
    assert out.rindex("haproxy stopped") > max(out.rindex(f"{r} stopped")
                                               for r in re.findall(r"(r\d+) stopped", out))
    gone, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive, [p.as_dict(["pid", "name", "cmdline"]) for p in alive]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", cluster.port))  # the ingress port is free again
    assert not list((cluster.tmp / "state").glob("*.json"))
