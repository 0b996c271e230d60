"""Failover scenarios: Locust load through the local ingress while something breaks.

Each scenario runs headless Locust (loadtest/locustfile.py) as a subprocess with CSV and
HTML reports in <reports>/<scenario>/, waits for a baseline, makes its event happen
against the running local cluster, waits until the cluster is whole again, keeps the load
on a little longer and judges the requests Locust recorded: no failed request at all (the
request that itself kills or fails a worker is sent by the scenario, not by Locust), with
latency p99 during the event beside the baseline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from plumbline.platform.local.control import ControlClient

# The Locust users ship inside the package (loadtest/ as package data), so the scenarios
# work from an installed wheel as from a checkout.
LOCUSTFILE = resources.files("plumbline") / "loadtest" / "locustfile.py"
WARMUP = 1.0  # seconds of load not counted in the baseline (users spawning)
SETTLE_TIMEOUT = 240.0
# "During the event" spans at least this long from its start: a worker forked again in a few
# milliseconds leaves an event too short for any request to be in flight, yet the requests
# right after it are the ones a failover would slow down.
EVENT_MIN_WINDOW = 1.0
# Locust's --stop-timeout (users finish their request) and the reports, then some.
STOP_TIMEOUT = 30
STOP_WAIT = STOP_TIMEOUT + 15.0

REVISION_ENDPOINT = """

#* Added by the deploy-change failover scenario
#* @serializer text
#* @get /revision
function() {
  "%s"
}
"""


class ScenarioError(RuntimeError):
    """The event could not be made to happen or the cluster did not recover."""


def locustfile() -> Path:
    """The locustfile as a file on disk, as Locust wants it (pip installs package data so)."""
    path = Path(str(LOCUSTFILE))
    if not path.is_file():
        raise ScenarioError(f"the Locust users are missing from this installation ({path})")
    return path


@dataclass
class Context:
    client: ControlClient
    app: str
    url: str  # the ingress
    report_dir: Path
    emit: Callable[[str], None]
    notes: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.notes.append(line)
        self.emit(f"  {line}")

    def status(self) -> dict:
        return self.client.call("GET", self.client.app_path(self.app))

    def post(self, path: str) -> tuple[int, str]:
        """One request through the ingress, sent by the scenario itself."""
        req = urllib.request.Request(self.url + path, data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def wait_settled(self, timeout: float = SETTLE_TIMEOUT, gone: str | None = None) -> dict:
        """Until every replica is ready, none is on its way in or out (and `gone` is gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            names = {r["name"] for r in status["replicas"]}
            if status["ready"] == status["desired"] == len(status["replicas"]) and (
                gone is None or gone not in names
            ):
                return status
            time.sleep(0.25)
        raise ScenarioError(f"the cluster did not settle within {timeout:.0f}s")

    def pick_ready(self) -> dict:
        ready = [r for r in self.status()["replicas"] if r["ready"]]
        if len(ready) < 2:
            raise ScenarioError("failover scenarios need at least 2 ready replicas")
        return ready[0]

    def wait_restarts(self, before: int, reason: str | None, timeout: float) -> float:
        """Until an R worker was replaced and its successor has loaded the app."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.worker_restarts(reason) > before:
                break
            time.sleep(0.25)
        else:
            raise ScenarioError(f"no R worker was replaced within {timeout:.0f}s")
        while time.monotonic() - start < timeout:
            if self._metric_sum("plumbline_workers", 'state="starting"') == 0:
                return time.monotonic() - start
            time.sleep(0.25)
        raise ScenarioError(f"the new R worker did not load within {timeout:.0f}s")

    def worker_restarts(self, reason: str | None = None) -> int:
        """R worker restarts summed over the replicas, from their /metrics."""
        return self._metric_sum(
            "plumbline_worker_restarts_total", f'reason="{reason}"' if reason else ""
        )

    def _metric_sum(self, metric: str, label: str) -> int:
        total = 0
        for r in self.status()["replicas"]:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{r['port']}/metrics", timeout=2
                ) as resp:
                    text = resp.read().decode()
            except OSError:
                continue
            for m in re.finditer(rf"^{metric}\{{([^}}]*)\}} ([0-9.e+]+)$", text, re.M):
                if label in m.group(1):
                    total += int(float(m.group(2)))
        return total


# ----- the six events; each returns once the cluster is whole again -----


def rolling_restart(ctx: Context) -> None:
    op = ctx.client.call("POST", ctx.client.app_path(ctx.app, "restart"))["operation"]
    ok, message = ctx.client.follow(op, ctx.note, timeout=SETTLE_TIMEOUT)
    if not ok:
        raise ScenarioError(message)


def kill_replica(ctx: Context) -> None:
    victim = ctx.pick_ready()
    os.kill(victim["pid"], signal.SIGKILL)
    start = time.monotonic()
    ctx.note(f"SIGKILL to {victim['name']} (pid {victim['pid']})")
    ctx.wait_settled(gone=victim["name"])
    ctx.note(f"replaced and back to full strength after {time.monotonic() - start:.1f}s")


def quit_worker(ctx: Context) -> None:
    before = ctx.worker_restarts()
    status, body = ctx.post("/quit")
    ctx.note(f"POST /quit (sent by the scenario; allowed to fail) -> {status} {body[:120]}")
    took = ctx.wait_restarts(before, None, timeout=60)
    ctx.note(f"the R worker was replaced and the new one loaded after {took:.1f}s")
    ctx.wait_settled()


def fail_health(ctx: Context) -> None:
    before = ctx.worker_restarts("unhealthy")
    status, body = ctx.post("/fail")
    ctx.note(f"POST /fail (sent by the scenario; allowed to fail) -> {status} {body[:120]}")
    took = ctx.wait_restarts(before, "unhealthy", timeout=60)
    ctx.note(f"the unhealthy R worker was replaced and the new one loaded after {took:.1f}s")
    ctx.wait_settled()


def deploy_change(ctx: Context) -> None:
    """The running app's spec, with a plumber.R that has one more endpoint, deployed."""
    status = ctx.status()
    current = Path(status["plumber_file"])
    folder = ctx.report_dir / "app"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(current.parent, folder)  # entrypoint.R, plumbline.toml, assets
    marker = f"rev-{int(time.time())}"
    source = current.read_text()
    source = source.split("\n\n#* Added by the deploy-change")[0]
    (folder / current.name).write_text(source + REVISION_ENDPOINT % marker)
    spec = json.loads(
        json.dumps(status["spec"]).replace(
            json.dumps(str(current.parent))[1:-1], json.dumps(str(folder))[1:-1]
        )
    )
    op = ctx.client.call("POST", ctx.client.app_path(ctx.app, "deploy"), {"spec": spec})[
        "operation"
    ]
    ok, message = ctx.client.follow(op, ctx.note, timeout=SETTLE_TIMEOUT)
    if not ok:
        raise ScenarioError(message)
    with urllib.request.urlopen(ctx.url + "/revision", timeout=10) as resp:
        answer = resp.read().decode().strip()
    if answer != marker:
        raise ScenarioError(f"new endpoint /revision answered {answer!r}, not {marker!r}")
    ctx.note(f"the new endpoint /revision answers through the ingress: {answer}")


def freeze_replica(ctx: Context, hold: float = 20.0) -> None:
    victim = ctx.pick_ready()
    os.kill(victim["pid"], signal.SIGSTOP)
    start = time.monotonic()
    ctx.note(f"SIGSTOP to {victim['name']} (pid {victim['pid']})")
    try:
        while time.monotonic() - start < 15:
            mine = [r for r in ctx.status()["replicas"] if r["name"] == victim["name"]]
            if not mine or not mine[0]["ready"]:
                break
            time.sleep(0.1)
        else:
            raise ScenarioError(f"{victim['name']} stayed in rotation while frozen")
        ctx.note(
            f"HAProxy took {victim['name']} out of rotation after {time.monotonic() - start:.1f}s"
        )
        # The app keeps answering without it; the supervisor replaces a replica unready
        # past its threshold (`up --unready-timeout`), else it is thawed after `hold`.
        held = time.monotonic()
        while time.monotonic() - held < hold:
            if victim["name"] not in {r["name"] for r in ctx.status()["replicas"]}:
                ctx.note(
                    f"the supervisor replaced {victim['name']} after "
                    f"{time.monotonic() - start:.1f}s"
                )
                break
            time.sleep(0.25)
        else:
            ctx.note(f"thawing {victim['name']} after {time.monotonic() - start:.1f}s")
    finally:
        try:
            os.kill(victim["pid"], signal.SIGCONT)
        except ProcessLookupError:
            pass
    ctx.wait_settled()
    ctx.note(f"whole again after {time.monotonic() - start:.1f}s")


SCENARIOS: dict[str, tuple[str, Callable[[Context], None]]] = {
    "rolling-restart": ("1: rolling restart under load", rolling_restart),
    "kill-replica": ("2: SIGKILL of one replica", kill_replica),
    "quit-worker": ("3: POST /quit (an R worker exits)", quit_worker),
    "fail-health": ("4: POST /fail (a worker's health turns bad and is healed)", fail_health),
    "deploy-change": ("5: a plumber.R change rolled out under load", deploy_change),
    "freeze-replica": ("6: one replica frozen with SIGSTOP", freeze_replica),
}


@dataclass
class ScenarioResult:
    scenario: str
    passed: bool
    requests: int
    failures: list[dict]
    baseline_p99_ms: float | None
    event_p99_ms: float | None
    event_seconds: float
    notes: list[str]
    error: str | None
    verdict: str


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _fmt(ms: float | None) -> str:
    return "n/a" if ms is None else f"{ms:.0f} ms"


def _load_started(
    locust: subprocess.Popen, request_log: Path, report_dir: Path, timeout: float = 120.0
) -> float:
    """When the first request of the load was answered: locust can take seconds to start
    (imports, a cold cache), and a baseline counted from its launch would hold no request."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if locust.poll() is not None:
            raise ScenarioError("locust exited early; see " + str(report_dir / "locust.log"))
        if request_log.exists() and request_log.stat().st_size > 0:
            return time.time()
        time.sleep(0.1)
    raise ScenarioError(
        f"locust got no answer within {timeout:.0f} s; see " + str(report_dir / "locust.log")
    )


def run_scenario(
    name: str,
    client: ControlClient,
    *,
    users: int = 10,
    baseline: float = 10.0,
    after: float = 5.0,
    reports: Path = Path("loadtest/reports"),
    emit: Callable[[str], None] = print,
) -> ScenarioResult:
    title, event = SCENARIOS[name]
    report_dir = (reports / name).resolve()
    shutil.rmtree(report_dir, ignore_errors=True)
    report_dir.mkdir(parents=True)
    request_log = report_dir / "requests.jsonl"
    stop_file = report_dir / "stop"
    app = client.record.apps[0]
    url = client.record.url
    ctx = Context(client, app, url, report_dir, emit)
    emit(f"scenario {title}: {users} users on {url}, baseline {baseline:.0f}s")
    locust = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile()),
            "--headless",
            "-H",
            url,
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            "900s",
            "--stop-timeout",
            str(STOP_TIMEOUT),
            "--csv",
            str(report_dir / name),
            "--html",
            str(report_dir / "report.html"),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        env={
            **os.environ,
            "PLUMBLINE_LOADTEST_LOG": str(request_log),
            "PLUMBLINE_LOADTEST_STOP": str(stop_file),
        },
        stdout=open(report_dir / "locust.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    error = None
    event_start = event_end = time.time()
    try:
        load_start = _load_started(locust, request_log, report_dir)
        time.sleep(WARMUP + baseline)
        if locust.poll() is not None:
            raise ScenarioError("locust exited early; see " + str(report_dir / "locust.log"))
        event_start = time.time()
        emit(f"event: {title}")
        try:
            event(ctx)
        except ScenarioError as exc:
            error = str(exc)
        event_end = time.time()
        time.sleep(after)
    except ScenarioError as exc:
        error = str(exc)
        load_start = time.time()
    finally:
        # The locustfile ends the run when the stop file appears (users finish their request,
        # the HTML report is written); SIGINT, then SIGKILL, only if that did not happen.
        stop_file.touch()
        for last_resort in (signal.SIGINT, signal.SIGKILL):
            try:
                locust.wait(STOP_WAIT)
                break
            except subprocess.TimeoutExpired:
                ctx.note(f"locust did not end {STOP_WAIT:.0f}s after the stop; {last_resort.name}")
                locust.send_signal(last_resort)
        locust.wait()
        stop_file.unlink(missing_ok=True)
    records = []
    if request_log.exists():
        for line in request_log.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass  # a line cut by the stop
    failures = [r for r in records if r["error"]]
    # Latency of the most frequent request (/parity for the example app): the slow ones
    # (/wait sleeps 5 s by design) would hide what the event does to the rest.
    names = [r["name"] for r in records]
    main = max(set(names), key=names.count) if names else ""
    base = [
        r["ms"]
        for r in records
        if r["name"] == main and load_start + WARMUP <= r["t"] < event_start
    ]
    # In flight at some moment of the event: a slow request that began just before it
    # shows the event too, and a short event may see no request begin.
    window_end = max(event_end, event_start + EVENT_MIN_WINDOW)
    during = [
        r["ms"]
        for r in records
        if r["name"] == main and r["t"] <= window_end and r["t"] + r["ms"] / 1000 >= event_start
    ]
    passed = error is None and not failures and len(records) > 0
    verdict = (
        f"{'PASS' if passed else 'FAIL'} {name}: {len(failures)} failed of "
        f"{len(records)} requests; {main} p99 baseline {_fmt(percentile(base, 0.99))}, "
        f"during the event {_fmt(percentile(during, 0.99))} "
        f"({event_end - event_start:.1f}s)" + (f"; {error}" if error else "")
    )
    for failure in failures[:5]:
        emit(f"  failed: {failure['name']}: {failure['error']}")
    result = ScenarioResult(
        name,
        passed,
        len(records),
        failures,
        percentile(base, 0.99),
        percentile(during, 0.99),
        round(event_end - event_start, 2),
        ctx.notes,
        error,
        verdict,
    )
    (report_dir / "summary.json").write_text(json.dumps(result.__dict__, indent=2))
    emit(verdict)
    return result
