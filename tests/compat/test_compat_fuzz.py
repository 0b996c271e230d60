"""Fuzzing with schemathesis, real plumber beside plumbline: at least CASES requests per app,
generated from plumbline's /openapi.json (valid and invalid ones), each sent byte for byte to
both servers.

What must hold, for every request: a 5xx from plumbline is the same 5xx plumber gives for
that request (plumbline may answer better, say 400 for a body jsonlite cannot parse, never
worse; an answer of plumber's with no valid HTTP status counts as a failure of plumber's);
/livez keeps answering all along; no R worker dies and the server is still
running at the end. The example app (without /wait, five seconds a call, and /quit, which
ends plumber itself) and the richer `features` app (serializers, parsers, typed path and
query parameters, errors raised on purpose).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from compat_harness import APPS, EXAMPLE_APP, ServerPair, launch_pair
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode


pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CASES = 1000
LIVEZ_EVERY = 50
# Headers the wire client sets itself, or that only concern schemathesis' own client.
_DROPPED = {"connection", "accept-encoding", "content-length", "host"}


@pytest.mark.parametrize(
    ("plumber_file", "skipped"),
    [(EXAMPLE_APP, {"/wait", "/quit"}), (APPS / "features" / "plumber.R", set())],
    ids=["example", "features"],
)
def test_every_5xx_is_plumbers_and_the_server_stays_up(plumber_file: Path, skipped: set[str]):
    pair = launch_pair(plumber_file)
    pair.wait_ready()
    try:
        spec = httpx.get(pair.plumbline.url + "/openapi.json", timeout=30).json()
        operations = [
            result.ok()
            for result in schemathesis.openapi.from_dict(spec).get_all_operations()
            if result.ok().path not in skipped
        ]
        assert operations
        sent = fuzz(pair, operations)
        assert sent >= CASES
        assert pair.plumbline.proc.poll() is None, "plumbline exited"
        metrics = httpx.get(pair.plumbline.url + "/metrics", timeout=30).text
        for reason in ("exited", "killed_signal", "timeout"):
            line = f'plumbline_worker_restarts_total{{reason="{reason}"}} 0.0'
            assert line in metrics, f"a worker was replaced ({reason}):\n{metrics}"
    finally:
        pair.close()


def fuzz(pair: ServerPair, operations: list) -> int:
    """Send generated requests to both servers until CASES were sent; the count sent."""
    state = {"sent": 0, "mismatches": []}
    deadline = time.monotonic() + 600
    rounds = 0
    while state["sent"] < CASES and time.monotonic() < deadline:
        mode = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[rounds % 2]
        for operation in operations:
            run_operation(pair, operation, mode, state)
        rounds += 1
    assert state["mismatches"] == [], "\n\n".join(state["mismatches"][:5])
    return state["sent"]


def run_operation(pair: ServerPair, operation, mode: GenerationMode, state: dict) -> None:
    @settings(
        max_examples=100,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case) -> None:
        method, target, body = wire_request(case)
        exchange = pair.send(method, target, **body)
        state["sent"] += 1
        status, theirs = exchange.plumbline.status_code, exchange.plumber.status_code
        # plumber failing without an HTTP status (httpuv writes an NA status as
        # -2147483648) is plumber failing too
        if status >= 500 and theirs != status and 100 <= theirs <= 599:
            state["mismatches"].append(exchange.describe())
        if state["sent"] % LIVEZ_EVERY == 0:
            assert pair.request("plumbline", "GET", "/livez").status_code == 200

    try:
        one()
    except Unsatisfiable:
        pass  # nothing to make invalid in an operation without parameters


def wire_request(case) -> tuple[str, str, dict]:
    """The case as the wire client sends it: method, target (path and query as encoded by
    httpx), and the body and headers."""
    kwargs = case.as_transport_kwargs(base_url="http://fuzz")
    url = httpx.Request("GET", kwargs["url"], params=kwargs.get("params") or None).url
    headers = {
        name: value
        for name, value in (kwargs.get("headers") or {}).items()
        if name.lower() not in _DROPPED
    }
    body: dict = {"headers": headers}
    for key in ("json", "data", "content", "files"):
        if key in kwargs:
            raw = key == "data" and isinstance(kwargs[key], (bytes, str))
            body["content" if raw else key] = kwargs[key]
    return kwargs["method"], url.raw_path.decode("ascii"), body
