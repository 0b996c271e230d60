"""The pool's side of preloading: a zygote process (runtime/r/zygote.py) forks the workers.

The pool never forks and never embeds R; it starts the zygote blank (head_start.py) and tells
it what to load and in which environment once it knows R's, then asks it
over a Unix SOCK_SEQPACKET socket for a worker whenever a slot needs one. The zygote creates
the worker's two pipes, forks, and hands the pool its ends (SCM_RIGHTS); from then on the
pool talks to that worker exactly as to one it spawned. A forked worker is not the pool's
child: ForkedProcess watches it through a pidfd (its exit wakes the event loop), signals it
through the pidfd (never a recycled pid), and takes its exit status from the zygote, which
reaps it. If the zygote dies its workers keep serving; the next fork starts a new zygote.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from plumbline.runtime.pool.head_start import LaunchedZygote, send_message
from plumbline.runtime.protocol import MAX_CONTROL_PACKET

# How long a worker's exit waits for the zygote's report of its status (it reaps at once;
# a dead zygote never reports).
_STATUS_WAIT = 2.0
UNKNOWN_STATUS = 255
# A zygote that died after loading is started again after this long, so the next worker the
# pool needs is forked at once (if that start fails, the next fork tries again and reports).
_RESTART_DELAY = 1.0
logger = logging.getLogger("plumbline.pool")


class PreloadUnsafe(Exception):
    """The loaded app holds something a fork must not copy (message says what)."""


class ZygoteLoadFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ForkedProcess:
    """asyncio.subprocess.Process's interface (pid, returncode, wait, kill, send_signal) for a
    worker the zygote forked."""

    def __init__(self, pid: int, settled: bool = True):
        self.pid = pid
        # False: forked before the zygote's heap settled, to be replaced at once (zygote.py).
        self.settled = settled
        self.returncode: int | None = None
        self._loop = asyncio.get_running_loop()
        self._exited = self._loop.create_future()
        self._status_timer: asyncio.TimerHandle | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # gone already; the zygote's report brings its status
            self._pidfd = None
            self._gone()
        else:
            self._loop.add_reader(self._pidfd, self._gone)

    def _gone(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
        if self.returncode is None and self._status_timer is None:
            self._status_timer = self._loop.call_later(_STATUS_WAIT, self.reported, UNKNOWN_STATUS)

    def reported(self, returncode: int) -> None:
        """The zygote reaped it (or it is presumed gone with an unknown status)."""
        if self._exited.done():
            return
        if self._status_timer is not None:
            self._status_timer.cancel()
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self.returncode = returncode
        self._exited.set_result(returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, signum: int) -> None:
        if self.returncode is not None or self._pidfd is None:
            raise ProcessLookupError(self.pid)
        signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ZygoteProcess(ForkedProcess):
    """The zygote itself, the pool's own child: its exit status is the pool's to take once
    its pidfd says it ended."""

    def __init__(self, process: subprocess.Popen):
        self._process = process
        super().__init__(process.pid)

    def _gone(self) -> None:
        self.reported(self._process.wait())


class Zygote:
    """The zygote process, started on first use and again after it died."""

    def __init__(
        self,
        plumber_file: Path,
        attach: tuple[str, ...],
        inline_futures: bool,
        startup_timeout: float,
        launched: LaunchedZygote | None = None,
    ):
        self._plumber_file = plumber_file
        self._attach = attach
        self._inline_futures = inline_futures
        self._startup_timeout = startup_timeout
        self._launched = launched  # started ahead, not yet told what to load
        self._proc: ZygoteProcess | None = None
        self._sock: socket.socket | None = None
        self._ready: asyncio.Future | None = None
        self._forks: dict[int, asyncio.Future] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self.pid: int | None = None
        self.environment: Mapping[str, str] | None = None  # R's (None: the pool's own)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and self._sock is not None

    def launch(self) -> None:
        """Start the zygote process now, before what it will load is known: its Python starts
        while the caller goes on (the pool reads R's environment)."""
        if self._launched is None and not self.alive:
            self._launched = LaunchedZygote()

    async def start(self) -> None:
        """Start the zygote and wait until it has loaded the app.

        ZygoteLoadFailed: the app did not load; PreloadUnsafe: it must not be forked."""
        async with self._lock:
            if not self.alive:
                await self._start()

    async def fork(self) -> tuple[ForkedProcess, int, int]:
        """A new worker: its process and the pool's ends of its pipes (request write end,
        response read end). OSError if the zygote cannot fork or died meanwhile."""
        await self.start()
        fork_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._forks[fork_id] = future
        try:
            if self._sock is None:
                raise ConnectionError("the zygote closed its channel")
            self._sock.send(json.dumps({"type": "fork", "id": fork_id}).encode())
            return await asyncio.wait_for(future, self._startup_timeout)
        except (TimeoutError, ConnectionError) as exc:
            raise OSError(f"the zygote did not fork a worker: {exc!r}") from None
        finally:
            self._forks.pop(fork_id, None)

    async def close(self) -> None:
        self._closed = True
        launched, self._launched = self._launched, None
        if launched is not None:  # never told what to load: without its channel it exits
            self._proc = ZygoteProcess(launched.process)
            launched.take_channel().close()
        for task in list(self._tasks):
            if not task.get_name().startswith("plumbline-zygote-watch"):
                task.cancel()
        if self._sock is not None:
            self._close_channel()
        if self._proc is not None and self._proc.returncode is None:
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                await self._proc.wait()

    # ---- internals ----------------------------------------------------------------------

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        environment = dict(os.environ if self.environment is None else self.environment)
        launched, self._launched = self._launched, None
        if launched is not None and launched.r_environment not in (None, environment):
            # Its R started in another environment (a package library has since come first
            # on R_LIBS, say): plumber may have been loaded from the wrong library.
            logger.info(
                "the zygote started ahead started R in another environment; starting another",
                extra={"fields": {"event": "zygote_environment_changed"}},
            )
            launched.close(kill=True)
            launched = None
        if launched is None:
            launched = LaunchedZygote()
        self._proc = proc = ZygoteProcess(launched.process)
        messages = (
            []
            if launched.r_environment is not None
            else [launched.environment_message(environment)]
        )
        # Only the first zygote (none has loaded yet: no pid) forks its first worker before
        # settling: nothing serves yet, so that worker's head start is worth its replacement.
        messages.append(
            launched.load_message(
                self._plumber_file, self._attach, self._inline_futures, self.pid is None
            )
        )
        ours = launched.take_channel()
        try:
            for message in messages:
                send_message(ours, message)
        except (BrokenPipeError, ConnectionError):
            pass  # it ended already: its last message, or its exit status, says why
        except OSError as exc:  # out of memory for the message, say
            ours.close()
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise ZygoteLoadFailed(f"could not tell the zygote what to load: {exc}") from None
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        # Read its outcome even when nobody waits any more (start cancelled), so asyncio
        # does not report a never-retrieved exception.
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        loop.add_reader(ours.fileno(), self._on_readable)
        self._background(self._watch(proc), f"plumbline-zygote-watch-{proc.pid}")
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), self._startup_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            self._close_channel()
            raise ZygoteLoadFailed(
                f"the app did not finish loading within {self._startup_timeout} s"
            ) from None
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            self._close_channel()
            raise
        self.pid = proc.pid

    async def _watch(self, proc: ZygoteProcess) -> None:
        returncode = await proc.wait()
        if proc is not self._proc:
            return
        self._close_channel()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(
                ZygoteLoadFailed(
                    f"the zygote ended before it finished loading (exit status {returncode})"
                )
            )
        elif not self._closed:
            logger.warning(
                "the zygote died; its workers keep serving, a new one is starting",
                extra={
                    "fields": {"event": "zygote_died", "pid": proc.pid, "returncode": returncode}
                },
            )
            self._background(self._restart(), "plumbline-zygote-restart")

    async def _restart(self) -> None:
        await asyncio.sleep(_RESTART_DELAY)
        with contextlib.suppress(Exception):  # the next fork starts it again and reports why
            await self.start()

    def _background(self, coro, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _close_channel(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
        for future in self._forks.values():
            if not future.done():
                future.set_exception(ConnectionError("the zygote closed its channel"))

    def _on_readable(self) -> None:
        while self._sock is not None:
            try:
                data, fds, _, _ = socket.recv_fds(
                    self._sock, MAX_CONTROL_PACKET, 2, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return
            except OSError:
                self._close_channel()
                return
            if not data:
                self._close_channel()
                return
            self._dispatch(json.loads(data), fds)

    def _dispatch(self, message: dict, fds: list[int]) -> None:
        kind = message.get("type")
        if kind == "forked":
            process = ForkedProcess(message["pid"], message.get("settled", True))
            self._children[process.pid] = process
            future = self._forks.get(message["id"])
            if future is not None and not future.done() and len(fds) == 2:
                future.set_result((process, fds[0], fds[1]))
            else:  # nobody waits any more: the worker sees EOF and exits
                for fd in fds:
                    os.close(fd)
        elif kind == "exited":
            gone = self._children.pop(message["pid"], None)
            if gone is not None:
                gone.reported(message["returncode"])
        elif self._ready is not None and not self._ready.done():
            if kind == "ready":
                self._ready.set_result(None)
            elif kind == "unsafe":
                self._ready.set_exception(PreloadUnsafe(message.get("message", "")))
            else:
                self._ready.set_exception(
                    ZygoteLoadFailed(str(message.get("message", "unknown load failure")))
                )
        for fd in fds if kind != "forked" else ():
            os.close(fd)
