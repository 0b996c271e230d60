"""`plumbline up` for real: three replicas of the example app behind HAProxy, the status a
user sees, the six failover scenarios under Locust load (short versions), a second `up` on
the same port, `deploy --local` of a whole spec and `rollback --local`, the private control
socket (another user and a web page are refused), and Ctrl-C leaving nothing behind.

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
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from plumbline.platform.local.backend import LocalBackend
from plumbline.platform.local.cluster import MAX_REPLICAS, STARTING_AT_ONCE
from plumbline.platform.local.control import ControlClient, HostRecord
from plumbline.platform.local.failover import run_scenario
from support import EXAMPLE_DIR, PLUMBLINE, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("local_cluster"),  # one cluster, tests in file order
]

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
            [
                *PLUMBLINE,
                "up",
                str(self.app),
                "--replicas",
                "3",
                "--workers",
                "1",
                "--port",
                str(self.port),
                "--name",
                NAME,
                "--unready-timeout",
                "3",
                "--watch",
            ],
            env=self.env,
            stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT,
        )
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
        return subprocess.run(
            [*PLUMBLINE, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def client(self) -> ControlClient:
        os.environ["PLUMBLINE_STATE_DIR"] = self.env["PLUMBLINE_STATE_DIR"]
        return ControlClient(HostRecord.find(NAME))

    def status(self) -> dict:
        return self.client().call("GET", f"/apps/{NAME}")

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
    output = cluster.output()
    assert f"ready: {cluster.url} (3/3 replicas)" in output
    # replicas start a few at a time (each loads R), not all at once
    first_loaded = output.index('"message":"listening"')
    assert output[:first_loaded].count(" starting (revision") <= STARTING_AT_ONCE
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        answers = {n: client.get("/parity", params={"int": n}).text for n in range(12)}
        missing = client.get("/no/such/path")
    assert answers == {n: "even" if n % 2 == 0 else "odd" for n in range(12)}
    assert missing.status_code == 404 and missing.json()["error"] == "no route"
    status = cluster.status()
    assert status["ready"] == 3 and len(status["replicas"]) == 3
    # requests served come from HAProxy's counters, read by the supervisor's next look
    deadline = time.monotonic() + 30
    while sum(r["requests"] for r in status["replicas"]) < 12 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = cluster.status()
    assert sum(r["requests"] for r in status["replicas"]) >= 12


def test_status_and_logs_commands(cluster):
    result = cluster.cli("status", NAME, "--local")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{NAME} (local, {cluster.url}), revision 1: 3/3 updated, 3/3 ready" in out
    assert out.splitlines()[-1] == f"{NAME} is healthy"
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+r\d+\s", line)]
    assert len(rows) == 3
    for _name, state, ready, _revision, pid, port, requests, *_ in rows:
        assert (state, ready) == ("ready", "yes")
        assert psutil.pid_exists(int(pid)) and int(port) > 0 and requests.isdigit()
    for path in ("/parity", "/wait", "/fail", "/quit", "/health"):
        assert f"{cluster.url}{path}" in out
    logs = cluster.cli("logs", NAME, "--local")
    assert logs.returncode == 0, logs.stderr
    cluster.client()  # this process looks in the test cluster's state directory too
    listed = LocalBackend().list_apps()
    assert [(a.name, a.backend, a.url, a.ready) for a in listed] == [
        (NAME, "local", cluster.url, 3)
    ]
    # The only local cluster running needs no name, as in the README.
    unnamed = cluster.cli("status", "--local")
    assert unnamed.returncode == 0 and f"{NAME} (local, {cluster.url})" in unnamed.stdout
    assert re.search(r"^r\d+ \| .*listening", logs.stdout, re.M)


def test_second_up_on_the_same_port_fails_and_leaves_the_first_alone(cluster):
    before = {r["name"]: r["pid"] for r in cluster.status()["replicas"]}
    result = cluster.cli(
        "up", str(cluster.app), "--port", str(cluster.port), "--name", "intruder", timeout=60
    )
    assert result.returncode != 0
    assert f"port {cluster.port}" in result.stderr and "taken" in result.stderr
    assert cluster.process.poll() is None
    after = cluster.status()
    assert {r["name"]: r["pid"] for r in after["replicas"]} == before and after["ready"] == 3
    assert httpx.get(cluster.url + "/parity?int=7", timeout=10).text == "odd"


@pytest.mark.parametrize(
    "scenario",
    [
        "quit-worker",
        "fail-health",
        "kill-replica",
        "freeze-replica",
        "rolling-restart",
        "deploy-change",
    ],
)
def test_failover_scenario_loses_no_request(cluster, scenario, tmp_path):
    lines: list[str] = []
    result = run_scenario(
        scenario,
        cluster.client(),
        users=4,
        baseline=2.0,
        after=1.0,
        reports=tmp_path,
        emit=lines.append,
    )
    report = "\n".join(lines)
    assert result.passed, report
    assert result.requests > 10 and not result.failures, report
    assert lines[-1].startswith(f"PASS {scenario}: 0 failed")
    assert result.baseline_p99_ms is not None and result.event_p99_ms is not None, report
    # Locust ended when asked (its report written), not at a signal sent after a wait.
    assert not [note for note in result.notes if note.startswith("locust did not end")]
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


def test_restart_local_through_the_cli_replaces_every_replica(cluster):
    """The README's own command, `plumbline restart --local`: no name (one cluster runs)."""
    before = cluster.status()
    old_pids = {r["pid"] for r in before["replicas"]}
    result = cluster.cli("restart", "--local", timeout=200)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"restart complete: revision {before['revision'] + 1}, 3/3 replicas ready"
    ), result.stdout
    after = cluster.status()
    assert after["ready"] == 3 and len(after["replicas"]) == 3
    assert not old_pids & {r["pid"] for r in after["replicas"]}, "a replica was not replaced"
    assert all(r["revision"] == after["revision"] for r in after["replicas"])
    assert httpx.get(cluster.url + "/parity?int=7", timeout=10).text == "odd"


def test_watch_rolls_out_a_changed_plumber_file(cluster):
    before = cluster.status()
    path = Path(before["plumber_file"])
    path.write_text(
        path.read_text() + '\n#* @serializer text\n#* @get /watched\nfunction() "seen"\n'
    )
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        status = cluster.status()
        if (
            status["revision"] > before["revision"]
            and status["ready"] == 3
            and all(r["revision"] == status["revision"] for r in status["replicas"])
            and "/watched" in {e["path"] for e in status["endpoints"]}
        ):
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
    assert (after["revision"], after["plumber_file"]) == (
        before["revision"],
        before["plumber_file"],
    )
    assert after["ready"] == 3
    assert {r["pid"] for r in after["replicas"]} == {r["pid"] for r in before["replicas"]}
    assert httpx.get(cluster.url + "/parity?int=2", timeout=10).text == "even"


def test_deploy_local_ships_the_whole_spec_and_rollback_returns(cluster, tmp_path):
    """Every spec flag and the app's plumbline.toml reach the replicas, as in a pod."""
    before = cluster.status()
    app = tmp_path / "v2"
    shutil.copytree(EXAMPLE_DIR, app)
    (app / "plumbline.toml").write_text('[serve]\ndocs = false\nmax-body = "2KiB"\n')
    result = cluster.cli(
        "deploy",
        str(app / "plumber.R"),
        "--name",
        NAME,
        "--local",
        "--replicas",
        "3",
        "--workers",
        "2",
        "--request-timeout",
        "7",
        "--env",
        "GREETING=hi",
        "--image",
        "ignored/image:1",
        timeout=200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note: the local backend ignores image" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("deploy complete: revision")
    after = cluster.status()
    assert after["revision"] > before["revision"] and after["ready"] == 3
    for replica in after["replicas"]:
        process = psutil.Process(replica["pid"])
        cmd = process.cmdline()
        assert cmd[cmd.index("--workers") + 1] == "2" and cmd[cmd.index("--timeout") + 1] == "7"
        assert cmd[cmd.index("--config") + 1] == str(app / "plumbline.toml")
        assert process.environ()["GREETING"] == "hi"
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        assert client.get("/__docs__/").status_code == 404  # [serve] docs = false
        too_big = client.request("GET", "/parity?int=3", content=b"x" * 4096)
        assert too_big.status_code == 413  # [serve] max-body = "2KiB"
        assert client.get("/parity?int=3").text == "odd"

    back = cluster.cli("rollback", NAME, "--local", timeout=200)
    assert back.returncode == 0, back.stdout + back.stderr
    status = cluster.status()
    assert status["revision"] > after["revision"] and status["ready"] == 3
    assert status["plumber_file"] == before["plumber_file"]
    for replica in status["replicas"]:
        assert "--timeout" not in psutil.Process(replica["pid"]).cmdline()
    assert httpx.get(cluster.url + "/__docs__/", timeout=10).status_code == 200


def test_scale_has_an_upper_bound(cluster):
    before = cluster.status()
    result = cluster.cli("scale", NAME, str(MAX_REPLICAS + 1), "--local")
    assert result.returncode == 2
    assert f"from 0 to {MAX_REPLICAS}" in result.stderr
    after = cluster.status()
    assert after["desired"] == before["desired"] == 3
    assert {r["pid"] for r in after["replicas"]} == {r["pid"] for r in before["replicas"]}


NOBODY_CLIENT = """
import json, socket, sys
sock_path, state_file = sys.argv[1], sys.argv[2]
outcome = {}
try:
    open(state_file).read()
    outcome["state_file"] = "read"
except OSError as exc:
    outcome["state_file"] = type(exc).__name__
try:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    body = b'{"replicas": 0}'
    s.sendall(b"POST /apps/%s/scale HTTP/1.0\\r\\nContent-Type: application/json\\r\\n"
              b"Content-Length: %d\\r\\n\\r\\n%s" % (sys.argv[3].encode(), len(body), body))
    chunks = []  # HTTP/1.0: the server closes the connection after its answer
    while chunk := s.recv(65536):
        chunks.append(chunk)
    answer = b"".join(chunks).decode()
    outcome["socket"] = answer.split("\\r\\n")[0] + " " + answer.rsplit("\\r\\n", 1)[-1]
except OSError as exc:
    outcome["socket"] = type(exc).__name__
print(json.dumps(outcome))
"""


def _as_nobody(record: HostRecord, socket_path: str | None = None) -> dict:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 to run as nobody")
    done = subprocess.run(
        [python, "-c", NOBODY_CLIENT, socket_path or record.socket, str(record.path), NAME],
        user="nobody",
        group="nogroup",
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    import json

    return json.loads(done.stdout)


def test_another_user_cannot_reach_the_control_socket(cluster):
    before = cluster.status()
    record = cluster.client().record
    state = Path(record.socket).parent
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    assert oct(Path(record.socket).stat().st_mode & 0o777) == "0o600"
    assert oct(record.path.stat().st_mode & 0o777) == "0o600"
    outcome = _as_nobody(record)
    assert outcome == {"state_file": "PermissionError", "socket": "PermissionError"}
    # Even were the socket reachable by mistake (here: a world-readable hard link to it), the
    # server checks who calls.
    exposed = Path(tempfile.mkdtemp(prefix="exposed-", dir="/tmp"))
    exposed.chmod(0o755)
    link = exposed / "control.sock"
    os.link(record.socket, link)
    os.chmod(record.socket, 0o666)
    try:
        outcome = _as_nobody(record, str(link))
    finally:
        os.chmod(record.socket, 0o600)
        shutil.rmtree(exposed)
    assert outcome["socket"].startswith("HTTP/1.0 403"), outcome
    assert "may not control this local cluster" in outcome["socket"]
    after = cluster.status()
    assert after["desired"] == 3 and after["ready"] == 3
    assert {r["pid"] for r in after["replicas"]} == {r["pid"] for r in before["replicas"]}


def test_a_web_page_cannot_drive_the_control_endpoint(cluster):
    before = cluster.status()
    # No TCP port to aim at: the only listener of `up` and its children is the ingress.
    listening = {
        c.laddr.port
        for p in [psutil.Process(cluster.process.pid), *cluster.descendants()]
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    replica_ports = {r["port"] for r in before["replicas"]}
    assert listening - replica_ports == {cluster.port}
    # What a browser could send (a "simple" cross-origin POST), were the socket reachable.
    transport = httpx.HTTPTransport(uds=cluster.client().record.socket)
    with httpx.Client(transport=transport, base_url="http://localhost", timeout=10) as client:
        text = client.post(
            f"/apps/{NAME}/scale",
            content=b'{"replicas": 0}',
            headers={"Content-Type": "text/plain"},
        )
        assert text.status_code == 415
        cors = client.post(
            f"/apps/{NAME}/scale", json={"replicas": 0}, headers={"Origin": "http://evil.example"}
        )
        assert cors.status_code == 403
        down = client.post(
            "/down", content=b"{}", headers={"Origin": "null", "Content-Type": "application/json"}
        )
        assert down.status_code == 403
    after = cluster.status()
    assert after["desired"] == 3 and after["ready"] == 3
    assert {r["pid"] for r in after["replicas"]} == {r["pid"] for r in before["replicas"]}


def test_ctrl_c_stops_everything(cluster):
    procs = cluster.descendants()
    names = {p.name() for p in procs}
    assert "haproxy" in names and len(procs) >= 3 + 3 + 2  # replicas, R workers, haproxy
    cluster.process.send_signal(signal.SIGINT)
    assert cluster.process.wait(90) == 0
    out = cluster.output()
    assert "stopping" in out and out.rstrip().endswith("haproxy stopped")
    # replicas were drained and stopped before HAProxy went
    assert out.rindex("haproxy stopped") > max(
        out.rindex(f"{r} stopped") for r in re.findall(r"(r\d+) stopped", out)
    )
    gone, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive, [p.as_dict(["pid", "name", "cmdline"]) for p in alive]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", cluster.port))  # the ingress port is free again
    assert not list((cluster.tmp / "state").glob("*.json"))
    assert not list((cluster.tmp / "state").glob("*.sock"))
