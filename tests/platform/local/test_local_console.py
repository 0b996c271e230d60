"""`plumbline up --log-format json`: the console as JSON lines, through the runtime's encoder."""

from __future__ import annotations

import json

from plumbline.platform.cli.local import say_json


def test_supervisor_and_replica_lines_become_json(capsys):
    say_json("ready: http://127.0.0.1:8080 (3/3 replicas)")
    say_json('r2 | {"time":"2026-01-01T00:00:00.000Z","level":"info","logger":"x","message":"m"}')
    say_json("r1 | Error in library(nope): there is no package called 'nope'")
    supervisor, replica, plain = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert supervisor["logger"] == "plumbline.local" and supervisor["source"] == "supervisor"
    assert supervisor["message"].startswith("ready: ")
    assert replica == {
        "time": "2026-01-01T00:00:00.000Z",
        "level": "info",
        "logger": "x",
        "message": "m",
        "replica": "r2",
    }
    assert plain["source"] == "r1" and plain["message"].startswith("Error in library")
