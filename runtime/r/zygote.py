"""The zygote: R, plumber and the app loaded once; workers are forked from it.

`python -m plumbline.runtime.r.zygote --control-fd N`, started by the pool (runtime/pool/
head_start.py, preload.py) when preloading is on, before the pool knows R's environment or
the app: it imports what it needs and waits. Told the environment, it starts R and loads
plumber; told the app, it loads it exactly as a worker does, then forks a worker whenever the
pool asks, so every worker shares the loaded app's memory (a model read at start included)
copy-on-write, the way R's parallel::mcfork() and gunicorn's --preload work. Forking is safe
because this process runs no thread of its own, holds no connection, and does nothing between
forks but wait.

The control channel is a Unix SOCK_SEQPACKET socket, one JSON message a packet (the pool's
first two may instead come as a memory file attached to an empty packet, when large):
  pool -> zygote, in this order: {"type": "environment", "set", "unset"} (the variables R
                  must see that differ from the zygote's own at start), {"type": "load",
                  "plumber_file", "attach", "inline_futures", "fork_before_settling"}, then
                  {"type": "fork", "id"} whenever it needs a worker.
  zygote -> pool: {"type": "ready", "pid"}, {"type": "load_failed", "message"},
                  {"type": "unsafe", "message"} (the loaded app holds something that must not
                  be forked: the pool then starts workers the ordinary way),
                  {"type": "forked", "id", "pid", "settled"} with the pool's ends of the new
                  worker's two pipes attached (SCM_RIGHTS), {"type": "exited", "pid",
                  "returncode"}.
With "fork_before_settling" (a pool's first start, when nothing serves yet) the zygote says
it is ready before its heap's last collections and runs them right after the first fork, so
the first worker serves ~0.1 s sooner; that worker ("settled": false) keeps the unsettled
heap to itself once the zygote collects, and the pool replaces it at once.
The pool closing the socket stops the zygote. Workers it forked are the pool's business:
they outlive the zygote and still end when the pool closes their pipes.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from plumbline.runtime.protocol import MAX_CONTROL_PACKET
from plumbline.runtime.r import worker


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m plumbline.runtime.r.zygote")
    parser.add_argument("--control-fd", required=True, type=int)
    return parser.parse_args(argv)


def _receive(control: socket.socket, kind: str) -> dict | None:
    """The pool's next message, which must be of this kind (None: it went away first). A
    large one comes as a memory file attached to an empty packet."""
    data, fds, _, _ = socket.recv_fds(control, MAX_CONTROL_PACKET, 1)
    if fds:
        with open(fds[0], "rb") as file:
            file.seek(0)  # the sender's writes moved the offset both share
            data = file.read()
    if not data:
        return None
    message = json.loads(data)
    if message.get("type") != kind:
        raise ValueError(f"expected the pool's {kind!r} message, got {message.get('type')!r}")
    return message


def _send(control: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        socket.send_fds(control, [data], list(fds))
    else:
        control.send(data)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _sockets(keep: int) -> list[str]:
    """Sockets this process holds besides the control socket (fd `keep`)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:") and int(name) != keep:
            found.append(f"fd {name}")
    return found


def _unsafe(bridge: worker.RBridge, control_fd: int, baseline_threads: int) -> str | None:
    """Why this loaded process must not be forked, or None."""
    problems = []
    connections = bridge.r_state()["connections"]
    if connections:
        problems.append("open R connections: " + ", ".join(connections))
    sockets = _sockets(control_fd)
    if sockets:
        problems.append("open sockets (" + ", ".join(sockets) + ")")
    threads = _threads() - baseline_threads
    if threads > 0:
        problems.append(f"{threads} thread(s) started while loading the app")
    return "; ".join(problems) or None


def serve(args: argparse.Namespace) -> int:
    control = socket.socket(fileno=args.control_fd)
    control.set_inheritable(False)
    # Ctrl-C reaches the whole process group; `plumbline serve` decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    environment = _receive(control, "environment")
    if environment is None:
        return 0
    for name in environment["unset"]:
        os.environ.pop(name, None)
    os.environ.update(environment["set"])
    try:
        bridge, jit_level = worker.start_r_to_load()
    except Exception:  # whatever stops R from starting is reported the same
        worker._write_stderr(traceback.format_exc())
        _send(control, {"type": "load_failed", "message": "R bridge failed to start"})
        return worker.EXIT_BOOT_FAILED
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # again: R's start set a handler of its own
    # plumber's own packages start threads of their own (later's); only the app's count.
    bridge.preload_packages()
    baseline_threads = _threads()
    order = _receive(control, "load")
    if order is None:
        return 0
    plumber_file = Path(order["plumber_file"]).resolve()
    error = bridge.load(plumber_file, order["attach"], order["inline_futures"])
    if error is not None:
        _send(control, {"type": "load_failed", "message": error})
        return worker.EXIT_LOAD_FAILED
    # plumber's route table, described once here and sent by every worker it forks.
    report = bridge.route_report(plumber_file)
    problem = _unsafe(bridge, args.control_fd, baseline_threads)
    if problem is not None:
        _send(control, {"type": "unsafe", "message": problem})
        return 0
    if jit_level:  # before the first fork: every worker runs with R's JIT on
        bridge.enable_jit(jit_level)
    pending: Callable[[], None] | None = None
    if order.get("fork_before_settling", False):
        pending = functools.partial(_settle, bridge, jit_level > 0)
    else:
        _settle(bridge, jit_level > 0)
    _send(control, {"type": "ready", "pid": os.getpid()})
    return _fork_loop(control, bridge, report, pending)


def _settle(bridge: worker.RBridge, jit: bool) -> None:
    """What every worker forked from here shares, made ready once: the JIT compiler's own
    code loaded, and the heap's last collections, so that what is allocated now is shared by
    every worker, and Python's collector must not touch (and so copy) the frozen objects in
    each of them."""
    if jit:
        bridge.warm_compiler()
    bridge.collect_garbage()
    gc.collect()
    gc.freeze()


def _fork_loop(
    control: socket.socket,
    bridge: worker.RBridge,
    report: bytes,
    settle: Callable[[], None] | None,
) -> int:
    """Fork a worker whenever the pool asks; `settle`, when the heap is still to settle, is
    run right after the first fork."""
    # SIGCHLD wakes the loop through a pipe, so exits are reported at once.
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    poller = select.poll()
    poller.register(control.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                while True:
                    try:
                        if not os.read(wake_r, 512):
                            break
                    except BlockingIOError:
                        break
                _reap(control)
                continue
            data = control.recv(MAX_CONTROL_PACKET)
            if not data:  # the pool closed the channel
                return 0
            message = json.loads(data)
            if message.get("type") == "fork":
                _fork(control, bridge, report, message["id"], settle is None, (wake_r, wake_w))
                if settle is not None:
                    # The first worker is serving already; the pool replaces it with one
                    # forked from the settled heap (pool.py, "unsettled").
                    settle()
                    settle = None
        _reap(control)


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(
            control,
            {
                "type": "exited",
                "pid": pid,
                "returncode": os.waitstatus_to_exitcode(status),
            },
        )


def _fork(
    control: socket.socket,
    bridge: worker.RBridge,
    report: bytes,
    fork_id: int,
    settled: bool,
    own_fds: tuple[int, int],
) -> None:
    request_r, request_w = os.pipe()
    response_r, response_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 70  # EX_SOFTWARE, if anything below fails
        try:
            control.close()
            os.close(request_w)
            os.close(response_r)
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in own_fds:
                os.close(fd)
            bridge.after_fork()
            code = worker.serve_loaded(bridge, request_r, response_w, report)
        except BrokenPipeError:
            code = 0  # the pool closed its end: nobody is left to answer
        except BaseException:  # a forked child must never return to the loop
            worker._write_stderr(traceback.format_exc())
        finally:
            # No atexit handlers: R's clean-up would delete the temporary directory that the
            # zygote and every other worker share.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(request_r)
    os.close(response_w)
    try:
        _send(
            control,
            {"type": "forked", "id": fork_id, "pid": pid, "settled": settled},
            (request_w, response_r),
        )
    finally:
        os.close(request_w)
        os.close(response_r)


def main(argv: list[str] | None = None) -> int:
    try:
        return serve(_parse_args(argv))
    except (BrokenPipeError, ConnectionError):
        return 0  # the pool went away


if __name__ == "__main__":
    sys.exit(main())
