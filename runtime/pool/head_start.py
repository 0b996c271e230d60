"""What `plumbline serve` starts before it imports the server: R's environment probe and, with
preloading, the zygote, which starts R as soon as R's environment is known.

The zygote is on the way to the first ready worker: R's start and plumber's load (~0.6 s) need
R's environment but not the app. So the zygote is started blank (a LaunchedZygote) and told in
two steps: the environment R starts in (R's variables from the probe, and an app's package
library, which `plumbline serve` puts on R_LIBS after reading the app's folder), upon which it
starts R and loads plumber; then, once the pool starts, what to load. Meanwhile `plumbline
serve` imports the rest of the server on the other core (preload.Zygote, runtime/r/zygote.py).

Nothing here imports asyncio (~0.05 s): the probe would start that much later.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from plumbline.runtime.pool.r_environment import REnvironmentProbe
from plumbline.runtime.protocol import MAX_CONTROL_PACKET


def send_message(channel: socket.socket, data: bytes) -> None:
    """One message to the zygote (runtime/r/zygote.py reads either form), whatever its size:
    an environment can be megabytes (a long R_LIBS, an Renviron's variables)."""
    if len(data) <= MAX_CONTROL_PACKET:
        channel.send(data)
        return
    memory = os.memfd_create("plumbline-zygote-message", os.MFD_CLOEXEC)
    try:
        with open(memory, "wb", closefd=False) as file:
            file.write(data)
        socket.send_fds(channel, [b""], [memory])
    finally:
        os.close(memory)


class LaunchedZygote:
    """A zygote process waiting to be told its environment, then what to load.

    Its channel is a Unix SOCK_SEQPACKET socket; whoever takes the channel (the pool's Zygote)
    owns the process. Closed without being taken, the zygote reads EOF and exits."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._started_with = dict(os.environ)
        # The environment R was started in, once sent (None: not yet).
        self.r_environment: dict[str, str] | None = None
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "plumbline.runtime.r.zygote",
                    "--control-fd",
                    str(theirs.fileno()),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=2,  # R's output goes to stderr, the log's, as a worker's
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._channel: socket.socket | None = ours

    def start_r(self, environment: Mapping[str, str]) -> None:
        """Have it start R (and load plumber) with exactly this environment. OSError if the
        message cannot be sent (the zygote died)."""
        if self._channel is None:
            raise RuntimeError("the zygote's channel was taken already")
        send_message(self._channel, self.environment_message(environment))
        self.r_environment = dict(environment)

    def environment_message(self, environment: Mapping[str, str]) -> bytes:
        """The variables that differ from the ones the process started with (R_LIBS, R's own)."""
        return json.dumps(
            {
                "type": "environment",
                "set": {
                    name: value
                    for name, value in environment.items()
                    if self._started_with.get(name) != value
                },
                "unset": [name for name in self._started_with if name not in environment],
            }
        ).encode()

    @staticmethod
    def load_message(
        plumber_file: Path, attach: Sequence[str], inline_futures: bool, fork_before_settling: bool
    ) -> bytes:
        return json.dumps(
            {
                "type": "load",
                "plumber_file": str(plumber_file),
                "attach": list(attach),
                "inline_futures": inline_futures,
                "fork_before_settling": fork_before_settling,
            }
        ).encode()

    def take_channel(self) -> socket.socket:
        channel, self._channel = self._channel, None
        if channel is None:
            raise RuntimeError("the zygote's channel was taken already")
        return channel

    def close(self, kill: bool = False) -> None:
        """Stop it if nobody took it over (kill: at once, not when it next reads its channel)."""
        channel, self._channel = self._channel, None
        if channel is None:
            return
        channel.close()
        if kill:
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class HeadStart:
    """The probe, and with preloading a zygote that starts R as soon as the probe has answered
    and `plumbline serve` has settled R's environment (a thread waits for both, while the main
    thread imports the server and reads the app)."""

    def __init__(self, preload: bool):
        self.r_environment = REnvironmentProbe()
        self.zygote: LaunchedZygote | None = None
        self._thread: threading.Thread | None = None
        self._settled = threading.Event()
        self._closing = False
        if preload:
            try:
                self.zygote = LaunchedZygote()
            except OSError:
                return  # the pool starts one when it needs it, and reports what fails
            self._thread = threading.Thread(
                target=self._start_r, args=(self.zygote,), name="plumbline-head-start"
            )
            self._thread.start()

    def environment_settled(self) -> None:
        """Every variable R's processes get is set (an app's package library first on R_LIBS):
        the zygote may start R once the probe has answered. `plumbline serve` says so at once
        when the app lists no packages (runtime/commands.py), else once the library is set."""
        self._settled.set()

    def _start_r(self, zygote: LaunchedZygote) -> None:
        self.r_environment.variables()
        self._settled.wait()
        if self._closing:
            return
        environment = self.r_environment.child_environment()
        try:
            zygote.start_r(os.environ if environment is None else environment)
        except OSError:
            pass  # the pool tells it again, and reports what fails

    def child_environment(self) -> dict[str, str] | None:
        """The probe's answer (see REnvironmentProbe), once the zygote has been told it."""
        self._settled.set()  # the pool starts: the environment is what it will be
        if self._thread is not None:
            self._thread.join()
        return self.r_environment.child_environment()

    def close(self) -> None:
        """Stop what no pool took over (serve ended before its pool started)."""
        self._closing = True
        self._settled.set()
        if self._thread is not None:
            self._thread.join()
        if self.zygote is not None:
            self.zygote.close()
