"""Users of the example app (examples/plumber-on-k8s/plumber.R), every answer checked.

Mostly /parity with a random integer (the answer must be the right "odd"/"even"), about one
call in 100 the slow /wait (a JSON object with a time). Run it alone with
  locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8080 -u 10 -r 10 -t 30s
or through `plumbline loadtest SCENARIO`, which also sets PLUMBLINE_LOADTEST_LOG: a JSON
line per request (start time, latency, outcome) from which the scenarios judge the event,
and PLUMBLINE_LOADTEST_STOP: a file whose creation ends the run.
"""

from __future__ import annotations

import json
import os
import random

import gevent
from locust import FastHttpUser, between, events, task

_log_path = os.environ.get("PLUMBLINE_LOADTEST_LOG")
# Line-buffered: the scenario sees the first request land (its baseline starts there), and
# a killed locust loses nothing.
_log = open(_log_path, "a", buffering=1) if _log_path else None


@events.request.add_listener
def _record(request_type, name, response_time, exception, start_time=None, **_):
    if _log is not None:
        _log.write(
            json.dumps(
                {
                    "t": start_time,
                    "name": f"{request_type} {name}",
                    "ms": response_time,
                    "error": None if exception is None else str(exception),
                }
            )
            + "\n"
        )


@events.init.add_listener
def _stop_when_asked(environment, **_):
    """End the run once PLUMBLINE_LOADTEST_STOP exists, the way locust ends a timed run
    (runner.quit(): users finish their request, then the summary and the HTML report). A
    SIGINT ends it so only when it lands in locust's main greenlet: one that landed in another
    was lost, and locust ran on until killed, with no report."""
    stop_path = os.environ.get("PLUMBLINE_LOADTEST_STOP")
    if not stop_path:
        return

    def watch():
        while not os.path.exists(stop_path):
            gevent.sleep(0.1)
        environment.runner.quit()

    gevent.spawn(watch)


@events.quitting.add_listener
def _close(**_):
    if _log is not None:
        _log.flush()


class AppUser(FastHttpUser):
    wait_time = between(0.05, 0.25)
    network_timeout = 90.0  # a frozen replica's request completes once it is thawed/replaced
    connection_timeout = 5.0

    # About 1 call in 100 is the 5-second /wait: each then holds an R worker as long as
    # ~1,000 /parity calls, so a higher share would leave the pool mostly busy sleeping.
    @task(100)
    def parity(self):
        number = random.randint(-(10**6), 10**6)
        expected = "even" if number % 2 == 0 else "odd"
        with self.client.get(f"/parity?int={number}", name="/parity", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}: {resp.text[:200]}")
            elif resp.text.strip() != expected:
                resp.failure(f"parity of {number}: expected {expected!r}, got {resp.text[:100]!r}")

    @task(1)
    def wait(self):
        with self.client.get("/wait", name="/wait", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}: {resp.text[:200]}")
                return
            try:
                body = resp.json()
            except ValueError:
                resp.failure(f"not JSON: {resp.text[:100]!r}")
                return
            stamp = body.get("time") if isinstance(body, dict) else None
            # plumber's json serializer boxes scalars: {"time": ["2024-01-01 10:00:00"]}
            if isinstance(stamp, list) and len(stamp) == 1:
                stamp = stamp[0]
            if not isinstance(stamp, str) or not stamp[:4].isdigit():
                resp.failure(f"no time in {resp.text[:100]!r}")
