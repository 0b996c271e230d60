"""WorkerPool: a fixed number of R worker processes serving one plumber.R.

Each slot runs a supervisor coroutine: spawn a worker, wait until it has loaded the app, hand
it out for requests, and when it has to go (it died, hung, failed its health check, or
served max_requests) start its successor in the same slot. Requests take an idle worker or
wait in a bounded queue. The HTTP layer sees only call(), the state properties and close().

Pipelining: when every worker is busy, one more request may be written to a worker whose
current request is on a route that answers fast (its mean time in R under
_PIPELINE_MAX_SECONDS), so that the worker reads it as soon as it has answered instead of
sleeping until the pool has seen the answer and sent the next request; on a 2-core VM, waking
a process on the other CPU costs more than a plain endpoint's R. Such a request never runs
before the one ahead of it has answered: if that one times out or its worker dies, it has not
started, and goes to another worker.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import signal
import time
from dataclasses import dataclass, field
from collections.abc import Hashable
from pathlib import Path

from plumbline.runtime.pool.preload import (
    ForkedProcess,
    PreloadUnsafe,
    Zygote,
    ZygoteLoadFailed,
)
from plumbline.runtime.pool import memory
from plumbline.runtime.pool.frame_reader import FrameReader, expire
from plumbline.runtime.pool.r_command import r_process_command
from plumbline.runtime.pool.head_start import HeadStart
from plumbline.runtime.pool.r_environment import REnvironmentProbe
from plumbline.runtime.protocol import (
    ProtocolError,
    WorkerRequest,
    WorkerResponse,
    decode_response,
    encode_request,
    reports_full_gc,
)

logger = logging.getLogger("plumbline.pool")

RESTART_REASONS = (
    "exited",
    "killed_signal",
    "timeout",
    "unhealthy",
    "max_requests",
    "memory",
    "full_gc",
    "load_failed",
)
# The first worker forked before the zygote's heap settled is replaced at once (zygote.py):
# part of starting, not a restart, so not in RESTART_REASONS or the restart counts.
_UNSETTLED = "unsettled"
# The settled successor of a first worker that stays (see _keeps_first): stopped unused.
_FIRST_KEPT = "first_worker_kept"
# Reasons a worker is replaced only once its successor has loaded (it serves until then).
_RECYCLE_REASONS = frozenset({"max_requests", "memory", "full_gc", _UNSETTLED})
# A forked worker whose R ran a full collection is replaced once it has served this long
# (seconds): an app that collects often is re-forked at most this often per worker.
_REFORK_MIN_AGE = 10.0
# A worker's resident memory is read after a request at most this often (seconds).
_MEMORY_CHECK_INTERVAL = 1.0
# A worker that dies this soon after loading is treated like a failed load (back-off applies).
_MIN_HEALTHY_UPTIME = 1.0
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 30.0
# A worker asked to stop sees EOF on its pipe and exits at once when idle; one still busy
# (close() timed out) gets SIGTERM, then SIGKILL.
_TERM_AFTER = 1.0
_KILL_AFTER = 5.0
# A health check gets at least this long (capped by the request timeout).
_HEALTH_TIMEOUT_MIN = 10.0
# A request is pipelined only behind one whose route takes at most this long in R on average
# (seconds): it may wait that long for its worker while another frees up sooner.
_PIPELINE_MAX_SECONDS = 0.005
# Weight of the newest answer in a route's mean time in R (exponential moving average).
_SERVICE_TIME_WEIGHT = 0.2


@dataclass(frozen=True)
class PoolConfig:
    plumber_file: Path
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_queue: int = 100  # requests waiting for a worker; past it PoolFull
    timeout: float | None = 60.0  # per request; past it WorkerTimeout, worker killed + replaced
    max_requests: int = 0  # 0 = never recycle
    max_requests_jitter: int = 0
    attach: tuple[str, ...] = ()
    inline_futures: bool = True
    health_path: str | None = None  # the app's own GET /health, called on idle workers
    health_interval: float = 5.0
    startup_timeout: float = 120.0
    # Load R and the app once in a zygote process and fork the workers from it (shared
    # copy-on-write memory); off, or when the loaded app is not safe to fork, each worker
    # starts R and loads the app itself.
    preload: bool = True
    # Bytes a worker may allocate beyond what it holds once loaded (RLIMIT_DATA, see
    # memory.py); None: derived from the container's memory limit; 0: no limit.
    max_worker_memory: int | None = None
    # Replace a worker (gracefully, as for max_requests) whose resident memory grew by more
    # than this since it loaded; None: half of max_worker_memory; 0: never.
    recycle_memory: int | None = None
    # Replace a forked worker (gracefully) once its R has run a full garbage collection,
    # which un-shares R's heap from the zygote (see bridge.R's sentinel).
    refork_after_full_gc: bool = True
    # R's environment probe and the zygote, started by `plumbline serve` before its imports;
    # None: the pool starts them itself.
    head_start: HeadStart | None = None
    # Give a busy worker its next request while it answers a fast route (module docstring).
    pipeline: bool = True


class AppLoadError(Exception):
    """The app did not load in the first worker; message is R's (with file and line)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PoolFull(Exception):
    """No worker free: the wait queue is full, a queued request waited past the timeout,
    or the pool is shutting down."""


class WorkerTimeout(Exception):
    """The request ran in R longer than the configured timeout."""


class WorkerDied(Exception):
    """The worker running the request died before answering."""


class _NotStarted(Exception):
    """A pipelined request's worker failed on the request ahead of it: this one never ran."""


def _log(level: int, event: str, message: str, **fields) -> None:
    # Structured fields; plumbline.runtime.logs formats the line.
    logger.log(level, message, extra={"fields": {"event": event, **fields}})


def _unexpected_death(returncode: int) -> str:
    if returncode == 0:
        return "exited with code 0 (did the app call quit()?)"
    return _cause_of_death(returncode)


def _cause_of_death(returncode: int, sent: int | None = None) -> str:
    """How a worker ended; `sent` is the last signal the pool itself sent it, whose death is
    the pool's doing and not guessed at."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    if sent == -returncode:
        return f"stopped by the pool with {name}"
    if -returncode == signal.SIGKILL:
        return f"killed by {name} (perhaps out of memory?)"
    return f"killed by {name}"


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self, slot: int, generation: int, proc, reader, writer, limit: int, settled: bool):
        self.slot = slot
        self.generation = generation
        self.proc: asyncio.subprocess.Process = proc
        self.reader: FrameReader = reader
        self.writer: asyncio.WriteTransport = writer
        self.limit = limit  # requests before recycling; 0 = never
        self.state = "starting"
        self.requests = 0
        self.started_at = time.time()
        self.ready_at: float | None = None
        self.stop_reason: str | None = None  # set when the pool itself ends this worker
        self.signalled: int | None = None  # the last signal the pool sent it
        self.retiring = False  # stop when its current request is done
        self.resident = memory.Resident(proc.pid)
        self.resident_at_ready = 0
        self.memory_limit: int | None = None  # its RLIMIT_DATA, once set
        self.next_memory_check = 0.0
        self.full_gc = False  # its R ran a full collection since it was forked
        self.settled = settled  # False: forked before the zygote settled, to be swapped
        self.replace = asyncio.get_running_loop().create_future()  # -> restart reason
        self.watcher: asyncio.Task | None = None
        # Requests handed to it whose answers are not read yet (2: one pipelined), their
        # routes in order, and when the first of them began in R.
        self.queued = 0
        self.routes: collections.deque = collections.deque()
        self.head_since = 0.0
        # Resolves once the answer to the last request written to it has been read: True,
        # or False when the worker failed first (a request written after it never ran).
        self.answered: asyncio.Future | None = None

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def snapshot(self) -> dict:
        return {
            "id": self.slot,
            "generation": self.generation,
            "pid": self.proc.pid,
            "state": self.state,
            "requests": self.requests,
            "started_at": self.started_at,
            "resident_bytes": self.resident.bytes() if self.alive else None,
            "memory_limit": self.memory_limit,
        }

    def kill(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.state != "unhealthy":
            self.state = "stopping"
        if self.alive:
            self._signal(signal.SIGKILL)

    def stop(self, reason: str) -> None:
        """Ask the worker to exit: EOF on its request pipe, then SIGTERM, then SIGKILL."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.state = "stopping"
        self.writer.close()
        loop = asyncio.get_running_loop()
        loop.call_later(_TERM_AFTER, self._signal_if_alive, signal.SIGTERM)
        loop.call_later(_KILL_AFTER, self._signal_if_alive, signal.SIGKILL)

    def _signal_if_alive(self, signum: int) -> None:
        if self.alive:
            self._signal(signum)

    def _signal(self, signum: int) -> None:
        self.signalled = signum
        try:
            self.proc.send_signal(signum)
        except ProcessLookupError:
            pass


class WorkerPool:
    def __init__(self, config: PoolConfig):
        if config.workers < 1:
            raise ValueError("workers must be at least 1")
        if config.max_queue < 0:
            raise ValueError("max_queue must be 0 or more")
        self._config = config
        self._workers: list[_Worker] = []  # every spawned worker whose exit is not yet seen
        self._failed_slots: dict[int, float] = {}  # slot -> time its last load failed
        self._backoff_slots: dict[int, float] = {}  # slot -> when it waits since (crash loop)
        self._idle: collections.deque[_Worker] = collections.deque()
        # requests waiting for a worker: (future of the worker, route)
        self._waiters: collections.deque[tuple[asyncio.Future, Hashable]] = collections.deque()
        self._service_time: dict[Hashable, float] = {}  # route -> mean seconds in R
        self._supervisors: list[asyncio.Task] = []
        self._health_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._first_load: asyncio.Future | None = None
        self._load_errors_logged: set[str] = set()
        self._generation = 0
        self._closing = False
        self._zygote: Zygote | None = None
        self._r_env: dict[str, str] | None = None  # of the R processes started (None: ours)
        if config.preload:
            self._zygote = Zygote(
                Path(config.plumber_file),
                config.attach,
                config.inline_futures,
                config.startup_timeout,
                config.head_start.zygote if config.head_start else None,
            )
        self.in_flight = 0
        # plumber's route table as the first loaded worker reported it (JSON bytes; see
        # plumbline/routes.py), None when no worker described it.
        self.route_report: bytes | None = None
        self.restart_counts: dict[str, int] = {reason: 0 for reason in RESTART_REASONS}
        self.pipelined = 0  # requests given to a worker while it was busy
        self._memory_budget: int | None = config.max_worker_memory  # None until derived
        self._recycle_memory: int | None = config.recycle_memory

    # ---- public interface -------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return any(w.state in ("idle", "busy") and w.alive for w in self._workers)

    @property
    def settling(self) -> bool:
        """Whether the first worker, forked before the zygote settled, is still to be
        replaced (see _UNSETTLED)."""
        return any(not w.settled for w in self._workers)

    @property
    def queue_depth(self) -> int:
        return sum(1 for fut, _ in self._waiters if not fut.done())

    def snapshot(self) -> list[dict]:
        rows = [w.snapshot() for w in self._workers]
        live_slots = {w.slot for w in self._workers}
        for slot, failed_at in self._failed_slots.items():
            if slot not in live_slots:
                rows.append(
                    {
                        "id": slot,
                        "generation": None,
                        "pid": None,
                        "state": "failed",
                        "requests": 0,
                        "started_at": failed_at,
                    }
                )
        for slot, since in self._backoff_slots.items():
            if slot not in live_slots and slot not in self._failed_slots:
                rows.append(
                    {
                        "id": slot,
                        "generation": None,
                        "pid": None,
                        "state": "backoff",
                        "requests": 0,
                        "started_at": since,
                    }
                )
        return sorted(rows, key=lambda row: (row["id"], row["generation"] or 0))

    @property
    def preloaded(self) -> bool:
        """Whether workers are forked from a loaded zygote (see PoolConfig.preload)."""
        return self._zygote is not None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        head_start = self._config.head_start
        if self._zygote is not None:
            self._zygote.launch()  # its Python starts while R's environment is read
        self._r_env = await asyncio.to_thread((head_start or REnvironmentProbe()).child_environment)
        if self._zygote is not None:
            self._zygote.environment = self._r_env
            await self._start_zygote(self._zygote)
        self._first_load = loop.create_future()
        self._supervisors = [
            asyncio.create_task(self._supervise(slot), name=f"plumbline-worker-slot-{slot}")
            for slot in range(self._config.workers)
        ]
        try:
            await self._first_load
        except BaseException:
            await self._shutdown(kill=True)
            raise
        if self._config.health_path:
            self.start_health_checks(self._config.health_path)
        _log(
            logging.INFO,
            "pool_started",
            "first worker ready",
            workers=self._config.workers,
            plumber_file=str(self._config.plumber_file),
        )

    def start_health_checks(self, path: str) -> None:
        """Call the app's own GET `path` on idle workers every health_interval (once started,
        a second call changes nothing)."""
        if self._health_task is None and not self._closing:
            self._health_task = asyncio.create_task(
                self._health_loop(path), name="plumbline-health"
            )

    async def call(self, request: WorkerRequest, route: Hashable = None) -> WorkerResponse:
        """The worker's answer. FrameTooLarge (before any worker is taken) for a request a
        worker could not read; PoolFull, WorkerTimeout, WorkerDied. `route` names the
        endpoint (from a bounded set) for pipelining; None: never pipelined behind."""
        if self._closing:
            raise PoolFull("the pool is shutting down")
        frame = encode_request(request)
        retry = False
        while True:
            worker = await self._acquire(route, retry)
            worker.requests += 1
            self.in_flight += 1
            try:
                response = await self._exchange(worker, frame, self._config.timeout, "timeout")
            except _NotStarted:
                worker.requests -= 1
                if self._closing:
                    raise PoolFull("the pool is shutting down") from None
                retry = True
                continue
            finally:
                self.in_flight -= 1
            self._release(worker)
            return response

    async def close(self, timeout: float) -> None:
        self._closing = True
        deadline = time.monotonic() + timeout
        while (self.in_flight or self.queue_depth) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._shutdown(kill=False)
        _log(logging.INFO, "pool_closed", "all workers stopped")

    async def _start_zygote(self, zygote: Zygote) -> None:
        started = time.time()
        try:
            await zygote.start()
        except ZygoteLoadFailed as exc:
            await zygote.close()
            raise AppLoadError(exc.message) from None
        except PreloadUnsafe as exc:
            await zygote.close()
            self._zygote = None
            _log(
                logging.WARNING,
                "preload_off",
                "the app is not safe to fork; each worker loads it itself",
                reason=str(exc),
            )
            return
        except BaseException:
            await zygote.close()
            raise
        _log(
            logging.INFO,
            "zygote_ready",
            "app loaded once; workers are forked from it",
            pid=zygote.pid,
            load_seconds=round(time.time() - started, 3),
        )

    # ---- dispatch ---------------------------------------------------------------------

    async def _acquire(self, route: Hashable, retry: bool = False) -> _Worker:
        # The worker that went idle last: its caches are the warmest (R after a sleep runs
        # measurably slower; the one least recently used sleeps on), and under light load
        # the others stay idle and untouched (their copy-on-write memory stays shared).
        while self._idle:
            worker = self._idle.pop()
            if worker.state == "idle" and worker.alive:
                worker.state = "busy"
                self._hand(worker, route)
                return worker
        if not self._waiters:
            worker = self._pipelinable()
            if worker is not None:
                self._hand(worker, route)
                return worker
        if len(self._waiters) >= self._config.max_queue and not retry:
            raise PoolFull(f"all workers busy and {len(self._waiters)} requests waiting")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        entry = (fut, route)
        if retry:  # it waited its turn once already
            self._waiters.appendleft(entry)
        else:
            self._waiters.append(entry)
        timeout = self._config.timeout
        # Under load most requests wait here: a timer, not asyncio.timeout() (see expire()).
        timer = loop.call_later(timeout, expire, fut) if timeout is not None else None
        try:
            return await fut
        except TimeoutError:
            # It never reached R: "try again later" (503), not a gateway timeout.
            self._reclaim(fut)
            raise PoolFull(f"no worker became free within {timeout} s") from None
        except BaseException:
            self._reclaim(fut)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _hand(self, worker: _Worker, route: Hashable) -> None:
        if worker.queued:
            self.pipelined += 1
        worker.queued += 1
        worker.routes.append(route)

    def _pipelinable(self) -> _Worker | None:
        """A busy worker that may take one more request now (module docstring), the one
        whose current request began first; None if there is none."""
        chosen = None
        for worker in self._workers:
            if (
                worker.queued == 1
                and worker.state == "busy"
                and self._may_pipeline(worker)
                and (chosen is None or worker.head_since < chosen.head_since)
            ):
                chosen = worker
        return chosen

    def _may_pipeline(self, worker: _Worker) -> bool:
        if (
            not self._config.pipeline
            or worker.retiring
            or worker.stop_reason is not None
            or worker.replace.done()
            or not worker.alive
        ):
            return False
        mean = self._service_time.get(worker.routes[0])
        return mean is not None and mean <= _PIPELINE_MAX_SECONDS

    def _reclaim(self, fut: asyncio.Future) -> None:
        """A waiter gave up just as a worker was handed to it: give the worker back."""
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            worker = fut.result()
            worker.queued -= 1
            worker.routes.pop()  # its own, the last one handed
            self._dispatch(worker)

    def _release(self, worker: _Worker) -> None:
        """The worker's answer to its oldest request has been read."""
        worker.queued -= 1
        if worker.routes:
            worker.routes.popleft()
        if not worker.replace.done():
            # Keeps serving until its successor has loaded; then the supervisor retires it.
            if worker.limit and worker.requests >= worker.limit:
                worker.replace.set_result("max_requests")
            elif self._recycle_memory and time.monotonic() >= worker.next_memory_check:
                self._check_memory(worker)
            if worker.full_gc and self._config.refork_after_full_gc:
                self._check_refork(worker)
        self._dispatch(worker)

    def _dispatch(self, worker: _Worker) -> None:
        """Give the worker to waiting requests (a second one if it may pipeline), or idle."""
        if worker.retiring:
            if not worker.queued:
                worker.stop(worker.replace.result())
            return
        if not worker.alive or worker.stop_reason is not None:
            return
        while self._waiters and (
            not worker.queued or (worker.queued == 1 and self._may_pipeline(worker))
        ):
            fut, route = self._waiters.popleft()
            if not fut.done():
                worker.state = "busy"
                self._hand(worker, route)
                fut.set_result(worker)
        if not worker.queued:
            worker.state = "idle"
            self._idle.append(worker)

    async def _exchange(
        self, worker: _Worker, frame: bytes, timeout: float | None, timeout_reason: str
    ) -> WorkerResponse:
        """Send one request frame to a worker handed to us and read its answer (after the
        answer ahead of it, when it was pipelined: _NotStarted if that one failed)."""
        ahead = worker.answered
        if ahead is not None and ahead.done() and not ahead.result():
            raise _NotStarted  # the worker failed between being handed to us and now
        answered = worker.answered = asyncio.get_running_loop().create_future()
        worker.writer.write(frame)
        if ahead is not None and not ahead.done():
            try:
                started = await asyncio.shield(ahead)
            except asyncio.CancelledError:
                # The caller went away; its request will still run: read and drop its answer.
                self._spawn_background(self._discard_answer(worker, answered, ahead))
                raise
            if not started:
                answered.set_result(False)
                raise _NotStarted
        begun = worker.head_since = time.monotonic()
        try:
            header, body = await worker.reader.read(timeout)
            response = decode_response(header, body)
        except TimeoutError:
            answered.set_result(False)
            worker.kill(timeout_reason)
            raise WorkerTimeout(f"worker {worker.slot} did not answer within {timeout} s") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            answered.set_result(False)
            if worker.stop_reason is None:
                await self._wait_exit(worker)
            cause = (
                _unexpected_death(worker.proc.returncode) if not worker.alive else "closed its pipe"
            )
            raise WorkerDied(f"worker {worker.slot} (pid {worker.proc.pid}) {cause}") from exc
        except ProtocolError as exc:
            answered.set_result(False)
            _log(logging.ERROR, "protocol_error", str(exc), worker=worker.slot, pid=worker.proc.pid)
            worker.kill("exited")
            raise WorkerDied(f"worker {worker.slot} sent a malformed answer") from exc
        except asyncio.CancelledError:
            # The caller went away; the worker is still busy with this request. Read its
            # answer in the background so the next request does not get this one's reply.
            self._spawn_background(self._discard_answer(worker, answered))
            raise
        except Exception:
            # Not expected; whatever it was, a request pipelined behind must not wait forever.
            answered.set_result(False)
            worker.kill("exited")
            raise
        self._note_service_time(worker, time.monotonic() - begun)
        answered.set_result(True)
        if response.full_gc:
            worker.full_gc = True
        return response

    def _note_service_time(self, worker: _Worker, seconds: float) -> None:
        route = worker.routes[0] if worker.routes else None
        if route is not None:
            mean = self._service_time.get(route, seconds)
            self._service_time[route] = mean + _SERVICE_TIME_WEIGHT * (seconds - mean)

    async def _discard_answer(
        self, worker: _Worker, answered: asyncio.Future, ahead: asyncio.Future | None = None
    ) -> None:
        """Read and drop the answer to a request whose caller went away, after the answer
        ahead of it when it was pipelined."""
        try:
            if ahead is not None and not await asyncio.shield(ahead):
                return  # it never ran
            header, _ = await worker.reader.read(self._config.timeout)
        except TimeoutError:
            worker.kill("timeout")
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError):
            worker.kill("exited")
        else:
            answered.set_result(True)
            worker.full_gc = worker.full_gc or reports_full_gc(header)
            self._release(worker)
        finally:
            if not answered.done():  # failed, or cancelled at shutdown
                answered.set_result(False)

    async def _wait_exit(self, worker: _Worker, limit: float = 2.0) -> None:
        try:
            async with asyncio.timeout(limit):
                await worker.proc.wait()
        except TimeoutError:
            pass

    def _spawn_background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- worker lifecycle -------------------------------------------------------------

    async def _supervise(self, slot: int) -> None:
        """Keep one loaded worker in this slot, replacing it whenever it has to go."""
        failures = 0
        current: _Worker | None = None  # a worker due for recycling, serving until replaced
        while not self._closing:
            if failures:
                delay = min(_BACKOFF_FIRST * 2 ** (failures - 1), _BACKOFF_MAX)
                self._backoff_slots[slot] = time.time()
                _log(
                    logging.INFO,
                    "worker_backoff",
                    "waiting before starting a worker again",
                    worker=slot,
                    seconds=delay,
                    failures=failures,
                )
                try:
                    await asyncio.sleep(delay)
                finally:
                    self._backoff_slots.pop(slot, None)
            try:
                worker = await self._spawn(slot)
            except OSError as exc:  # e.g. out of processes or file descriptors
                error = f"cannot start a worker process: {exc}"
            except (ZygoteLoadFailed, PreloadUnsafe) as exc:  # a new zygote after one died
                error = str(exc)
            else:
                error = await self._wait_loaded(worker)
            if error is not None:
                failures += 1
                self.restart_counts["load_failed"] += 1
                self._failed_slots[slot] = time.time()
                self._report_load_failure(slot, error)
                if self._start_failed():
                    return  # the pool is being shut down: nothing to retry
                continue
            self._failed_slots.pop(slot, None)
            if current is not None and self._keeps_first(current):
                # The first worker has served: its R holds what those requests left in it
                # (globals), which the fresh fork would not. It stays; the fork goes.
                worker.stop(_FIRST_KEPT)
                current.settled = True  # to be replaced no more
                current.replace = asyncio.get_running_loop().create_future()
                worker = current
            else:
                if current is not None:
                    self._retire(current)
                current = worker
                self._mark_ready(worker)
                if not worker.settled:
                    worker.replace.set_result(_UNSETTLED)
            reason = await worker.replace
            if reason != _UNSETTLED:
                self.restart_counts[reason] += 1
            if reason in _RECYCLE_REASONS:
                failures = 0
                continue
            current = None
            uptime = time.time() - (worker.ready_at or worker.started_at)
            failures = failures + 1 if uptime < _MIN_HEALTHY_UPTIME else 0

    async def _spawn(self, slot: int) -> _Worker:
        config = self._config
        loop = asyncio.get_running_loop()
        if self._zygote is not None:
            proc, request_w, response_r = await self._zygote.fork()
        else:
            proc, request_w, response_r = await self._spawn_process()
        reader = FrameReader()
        await loop.connect_read_pipe(lambda: reader, os.fdopen(response_r, "rb", buffering=0))
        writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(request_w, "wb", buffering=0)
        )
        limit = 0
        if config.max_requests > 0:
            limit = config.max_requests + random.randint(0, max(config.max_requests_jitter, 0))
        self._generation += 1
        settled = proc.settled if isinstance(proc, ForkedProcess) else True
        worker = _Worker(slot, self._generation, proc, reader, writer, limit, settled)
        self._workers.append(worker)
        worker.watcher = asyncio.create_task(
            self._watch(worker), name=f"plumbline-watch-{proc.pid}"
        )
        _log(logging.INFO, "worker_spawned", "worker starting", worker=slot, pid=proc.pid)
        return worker

    async def _spawn_process(self) -> tuple[asyncio.subprocess.Process, int, int]:
        """A worker that starts R and loads the app itself (no preloading)."""
        config = self._config
        request_r, request_w = os.pipe()
        response_r, response_w = os.pipe()
        args = r_process_command(
            "plumbline.runtime.r.worker",
            config.plumber_file,
            config.attach,
            config.inline_futures,
        )
        args += ["--request-fd", str(request_r), "--response-fd", str(response_w)]
        try:
            # R's own output (print, cat, message) goes to our stderr, never into the frames.
            proc = await asyncio.create_subprocess_exec(
                *args,
                pass_fds=(request_r, response_w),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=2,
                env=self._r_env,
            )
        except BaseException:
            os.close(request_w)
            os.close(response_r)
            raise
        finally:
            os.close(request_r)
            os.close(response_w)
        return proc, request_w, response_r

    async def _wait_loaded(self, worker: _Worker) -> str | None:
        """None once the worker reports ready, else why it did not load."""
        try:
            header, body = await worker.reader.read(self._config.startup_timeout)
        except TimeoutError:
            worker.kill("load_failed")
            return f"the app did not finish loading within {self._config.startup_timeout} s"
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError):
            await self._wait_exit(worker)
            code = "" if worker.alive else f" ({_cause_of_death(worker.proc.returncode)})"
            worker.kill("load_failed")
            return f"the worker ended before it finished loading{code}"
        if header.get("type") == "ready":
            if body and self.route_report is None:  # every worker loads the same file
                self.route_report = body
            return None
        worker.kill("load_failed")
        return str(header.get("message", "unknown load failure"))

    def _report_load_failure(self, slot: int, message: str) -> None:
        if self._closing:
            return
        if self._first_load is not None and not self._first_load.done():
            self._first_load.set_exception(AppLoadError(message))
            return
        if message not in self._load_errors_logged:
            self._load_errors_logged.add(message)
            _log(
                logging.ERROR,
                "load_failed",
                message,
                worker=slot,
                hint="retrying with back-off; this message is logged once",
            )

    def _keeps_first(self, worker: _Worker) -> bool:
        """Whether the first worker, forked before the zygote settled, stays instead of its
        settled successor: when it has been given a request and a client could count on the
        state that left in R (one worker, or workers kept after full collections)."""
        if not worker.alive or worker.replace.result() != _UNSETTLED:
            return False
        served = worker.requests > 0 or worker.state == "busy"
        return served and (self._config.workers == 1 or not self._config.refork_after_full_gc)

    def _start_failed(self) -> bool:
        first = self._first_load
        if first is None or not first.done() or first.cancelled():
            return False
        return first.exception() is not None

    def _mark_ready(self, worker: _Worker) -> None:
        worker.ready_at = time.time()
        if self._first_load is not None and not self._first_load.done():
            self._first_load.set_result(None)
        self._limit_memory(worker)
        _log(
            logging.INFO,
            "worker_ready",
            "worker loaded the app",
            worker=worker.slot,
            pid=worker.proc.pid,
            load_seconds=round(worker.ready_at - worker.started_at, 3),
            memory_limit=worker.memory_limit,
        )
        self._dispatch(worker)

    def _limit_memory(self, worker: _Worker) -> None:
        """Cap what the loaded worker may allocate from now on (set from outside, so the same
        for a worker forked from a loaded parent), and note its resident memory."""
        if self._memory_budget is None:  # derived once, when the first worker has loaded
            self._memory_budget = memory.default_budget(self._config.workers)
            _log(
                logging.INFO,
                "worker_memory_budget",
                "memory each worker may allocate beyond the loaded app",
                bytes=self._memory_budget,
                source="container memory limit" if self._memory_budget else "no limit found",
            )
        if self._recycle_memory is None:
            self._recycle_memory = self._memory_budget // 2
        if self._memory_budget:
            worker.memory_limit = memory.limit_data(worker.proc.pid, self._memory_budget)
        worker.resident_at_ready = worker.resident.bytes() or 0

    def _check_memory(self, worker: _Worker) -> None:
        """After a request: replace the worker, once its successor has loaded, if it holds
        far more than when it had just loaded (uWSGI's reload-on-rss)."""
        worker.next_memory_check = time.monotonic() + _MEMORY_CHECK_INTERVAL
        resident = worker.resident.bytes()
        if resident is None or not self._recycle_memory:
            return
        grown = resident - worker.resident_at_ready
        if grown > self._recycle_memory:
            _log(
                logging.INFO,
                "worker_memory",
                "worker holds too much memory; replacing it after its successor has loaded",
                worker=worker.slot,
                pid=worker.proc.pid,
                resident_bytes=resident,
                grown_bytes=grown,
                threshold=self._recycle_memory,
            )
            worker.replace.set_result("memory")

    def _check_refork(self, worker: _Worker) -> None:
        """After a request: replace a forked worker whose R ran a full collection, once its
        successor (a fresh fork, sharing the zygote's heap again) has loaded."""
        if worker.replace.done() or time.time() - (worker.ready_at or 0) < _REFORK_MIN_AGE:
            return
        _log(
            logging.INFO,
            "worker_full_gc",
            "R ran a full garbage collection in this worker, which un-shares its heap from "
            "the zygote; replacing it with a fresh fork after its successor has loaded",
            worker=worker.slot,
            pid=worker.proc.pid,
        )
        worker.replace.set_result("full_gc")

    def _retire(self, worker: _Worker) -> None:
        """A successor has loaded: stop the recycled worker now, or after its request."""
        reason = worker.replace.result()
        if worker in self._idle:
            self._idle.remove(worker)
            worker.stop(reason)
        elif worker.state == "busy":
            worker.retiring = True
        elif worker.alive:
            worker.stop(reason)

    async def _watch(self, worker: _Worker) -> None:
        """Notice the worker's exit, whenever and however it happens."""
        returncode = await worker.proc.wait()
        worker.writer.close()
        worker.resident.close()
        if worker in self._idle:
            self._idle.remove(worker)
        if worker in self._workers:
            self._workers.remove(worker)
        reason = worker.stop_reason or ("killed_signal" if returncode < 0 else "exited")
        cause = _cause_of_death(returncode, worker.signalled)
        if worker.stop_reason is None and worker.ready_at is not None:
            _log(
                logging.ERROR,
                "worker_died",
                f"worker {_unexpected_death(returncode)}",
                worker=worker.slot,
                pid=worker.proc.pid,
                returncode=returncode,
                requests=worker.requests,
                reason=reason,
            )
        elif worker.stop_reason in ("timeout", "unhealthy"):
            _log(
                logging.WARNING,
                "worker_killed",
                f"worker {cause}",
                worker=worker.slot,
                pid=worker.proc.pid,
                reason=reason,
            )
        else:
            _log(
                logging.INFO,
                "worker_stopped",
                f"worker {cause}",
                worker=worker.slot,
                pid=worker.proc.pid,
                reason=reason,
            )
        if not worker.replace.done():
            worker.replace.set_result(reason)
        elif worker.replace.result() == _UNSETTLED and reason in self.restart_counts:
            self.restart_counts[reason] += 1  # its swap is not a restart; its death is

    # ---- health checks ----------------------------------------------------------------

    async def _health_loop(self, path: str) -> None:
        request = encode_request(
            WorkerRequest(
                method="GET",
                path=path,
                query_string="",
                headers=[("host", "127.0.0.1"), ("user-agent", "plumbline-health-check")],
            )
        )
        while True:
            await asyncio.sleep(self._config.health_interval)
            # Taken out of the idle queue while checked, so no request is routed to them.
            checked = []
            while self._idle:
                worker = self._idle.popleft()
                if worker.state == "idle" and worker.alive:
                    worker.state = "busy"
                    self._hand(worker, None)
                    checked.append(worker)
            await asyncio.gather(*(self._check(worker, request) for worker in checked))

    def _health_timeout(self) -> float:
        # A health check must not hang a worker forever, even with no request timeout.
        limit = max(self._config.health_interval, _HEALTH_TIMEOUT_MIN)
        return min(limit, self._config.timeout) if self._config.timeout else limit

    async def _check(self, worker: _Worker, request: bytes) -> None:
        try:
            response = await self._exchange(worker, request, self._health_timeout(), "unhealthy")
        except (WorkerTimeout, WorkerDied) as exc:
            _log(
                logging.WARNING,
                "health_check_failed",
                str(exc),
                worker=worker.slot,
                pid=worker.proc.pid,
            )
            return
        if 200 <= response.status < 300:
            self._release(worker)
            return
        worker.state = "unhealthy"
        _log(
            logging.WARNING,
            "health_check_failed",
            f"the health check answered {response.status}; replacing the worker",
            worker=worker.slot,
            pid=worker.proc.pid,
            status=response.status,
        )
        worker.kill("unhealthy")

    # ---- shutdown ---------------------------------------------------------------------

    async def _shutdown(self, kill: bool) -> None:
        self._closing = True
        tasks = [*self._supervisors, *self._background]
        if self._health_task is not None:
            tasks.append(self._health_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while self._waiters:
            fut, _ = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(PoolFull("the pool is shutting down"))
        workers = list(self._workers)
        for worker in workers:
            if kill:
                worker.kill("shutdown")
            else:
                worker.stop("shutdown")
        watchers = [w.watcher for w in workers if w.watcher is not None]
        done, pending = (
            await asyncio.wait(watchers, timeout=_KILL_AFTER + 2) if watchers else (set(), set())
        )
        for worker in workers:
            worker.kill("shutdown")
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._idle.clear()
        if self._zygote is not None:
            await self._zygote.close()
