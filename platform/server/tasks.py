"""Tasks: long operations (deploy, restart, scale, delete) run in threads, output in the DB.

A task's output is stored line by line as it is produced, so a client polling
`GET /__api__/tasks/<id>?first_status=N` (rsconnect's way) gets the lines after N from any
server replica, and the final state with `finished`, `code` and `error`. Tasks of one app
run one at a time, in the order they were asked for; tasks of different apps run side by
side (up to --task-workers). A task still running when the server stopped is marked failed
when it starts again: nothing would finish it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC

from sqlalchemy import select, update

from plumbline.platform.server.db import Database, Task, TaskLine, utcnow

log = logging.getLogger("plumbline.server.tasks")


class TaskFailed(Exception):
    """Raised inside a job: the task fails with this message (shown to the user as is)."""


class TaskContext:
    """What a job gets: `emit(line)` for its output, the task's id and row fields."""

    def __init__(self, runner: TaskRunner, task_id: str):
        self.runner = runner
        self.task_id = task_id
        self._seq = 0
        self._lock = threading.Lock()
        self.result: dict | None = None

    def emit(self, line: str) -> None:
        with self._lock:
            lines = str(line).splitlines() or [""]
            with self.runner.db.session() as s:
                for text in lines:
                    s.add(TaskLine(task_id=self.task_id, seq=self._seq, line=text))
                    self._seq += 1


Job = Callable[[TaskContext], None]


class TaskRunner:
    def __init__(self, db: Database, workers: int):
        self.db = db
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="task")
        self._app_locks: dict[int | None, threading.Lock] = {}
        self._guard = threading.Lock()

    def recover(self) -> int:
        """Mark tasks left unfinished by an earlier server process as failed."""
        with self.db.session() as s:
            result = s.execute(
                update(Task)
                .where(Task.state.in_(("queued", "running")))
                .values(
                    state="failed",
                    code=1,
                    finished_at=utcnow(),
                    error="the server stopped before this task finished; run it again",
                )
            )
            return result.rowcount or 0

    def app_lock(self, app_id: int | None) -> threading.Lock:
        """The lock an app's tasks run under (one at a time per app)."""
        with self._guard:
            return self._app_locks.setdefault(app_id, threading.Lock())

    def submit(
        self,
        kind: str,
        job: Job,
        *,
        app_id: int | None,
        user_id: int | None,
        bundle_id: int | None = None,
    ) -> str:
        task_id = secrets.token_hex(8)
        with self.db.session() as s:
            s.add(
                Task(
                    id=task_id,
                    kind=kind,
                    app_id=app_id,
                    user_id=user_id,
                    bundle_id=bundle_id,
                    state="queued",
                )
            )
        self.pool.submit(self._run, task_id, job, self.app_lock(app_id))
        return task_id

    def _run(self, task_id: str, job: Job, lock: threading.Lock) -> None:
        ctx = TaskContext(self, task_id)
        with lock:
            self._set(task_id, state="running")
            try:
                job(ctx)
            except TaskFailed as exc:
                ctx.emit(f"error: {exc}")
                self._finish(task_id, ctx, ok=False, error=str(exc))
            except Exception as exc:  # a bug, or the backend failing unexpectedly
                log.exception("task %s failed", task_id)
                message = f"{type(exc).__name__}: {exc}"
                ctx.emit(f"error: {message}")
                self._finish(task_id, ctx, ok=False, error=message)
            else:
                self._finish(task_id, ctx, ok=True, error="")

    def _set(self, task_id: str, **values) -> None:
        with self.db.session() as s:
            s.execute(update(Task).where(Task.id == task_id).values(**values))

    def _finish(self, task_id: str, ctx: TaskContext, *, ok: bool, error: str) -> None:
        self._set(
            task_id,
            state="done" if ok else "failed",
            code=0 if ok else 1,
            error=error,
            finished_at=utcnow(),
            result=json.dumps(ctx.result) if ctx.result is not None else None,
        )

    def wait_idle(self, timeout: float | None = None) -> None:
        """Stop taking tasks and wait for the running ones (server shutdown)."""
        self.pool.shutdown(wait=True, cancel_futures=False)


def task_view(db: Database, task_id: str, first: int = 0) -> dict | None:
    """The task as rsconnect reads it: output lines from `first`, and where to go on."""
    first = max(first, 0)
    with db.session() as s:
        # The state first, then the lines: a task seen finished has all its lines stored.
        task = s.get(Task, task_id)
        if task is None:
            return None
        lines = list(
            s.scalars(
                select(TaskLine.line)
                .where(TaskLine.task_id == task_id, TaskLine.seq >= first)
                .order_by(TaskLine.seq)
            )
        )
        return {
            "id": task.id,
            "task_id": task.id,
            "kind": task.kind,
            "app_id": task.app_id,
            "bundle_id": task.bundle_id,
            "user_id": task.user_id,
            "state": task.state,
            "status": lines,
            "first_status": first,
            "last_status": first + len(lines),
            "finished": task.finished,
            "code": task.code,
            "error": task.error,
            "result": json.loads(task.result) if task.result else None,
            "created_time": iso(task.created_at),
            "finished_time": iso(task.finished_at),
        }


def iso(value) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they are UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")
