"""Following a server task the way rsconnect does: GET /__api__/tasks/ID?first_status=N."""

from __future__ import annotations

import time

import httpx


def wait_task(client: httpx.Client, task_id: str, timeout: float = 120, poll: float = 0.1) -> dict:
    """The task's final state, with its whole output (read incrementally) as `output`."""
    first, lines = 0, []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"/__api__/tasks/{task_id}", params={"first_status": first}).json()
        lines += task["status"]
        first = task["last_status"]
        if task["finished"]:
            return {**task, "output": lines}
        time.sleep(poll)
    raise AssertionError(f"task {task_id} did not finish: {lines}")
