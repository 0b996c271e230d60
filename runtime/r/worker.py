"""One R worker process: `python -m plumbline.runtime.r.worker --request-fd N --response-fd M ...`.

Started by the pool (never forked after R starts). It embeds R with rpy2's low-level
interface, loads runtime/r/bridge.R and the app once, reports "ready" or "load_failed", then
answers request frames until the request pipe closes. Frames travel only on the two pipe fds
the pool passed in; whatever R prints goes to stderr, so user code cannot corrupt them.

Exit codes: 0 after the pool closed the pipe, EXIT_LOAD_FAILED when the app did not load,
EXIT_BOOT_FAILED when R or the bridge could not start. Anything else is a crash (or quit()).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import os
import re
import resource
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

from plumbline.exits import ExitCode
from plumbline.runtime.r import bytecode
from plumbline.runtime.r.direct import DirectCall, DirectRoutes
from plumbline.runtime.r.r_call import AnswerHead, Arguments, KeptArguments, RCall
from plumbline.runtime.protocol import (
    MAX_BODY_SIZE,
    MAX_HEADER_SIZE,
    R_LD_LIBRARY_PATH_ENV,
    FrameTooLarge,
    decode_call_key,
    decode_header,
    encode_frame,
    encode_header,
    encoded_frame_head,
    read_request_blocking,
    response_header,
    write_all,
)

EXIT_BOOT_FAILED = ExitCode.R_BOOT
EXIT_LOAD_FAILED = ExitCode.APP_LOAD
_FULL_GC_LOOK_INTERVAL = 1.0  # seconds


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m plumbline.runtime.r.worker")
    parser.add_argument("--plumber-file", required=True, type=Path)
    parser.add_argument("--request-fd", required=True, type=int)
    parser.add_argument("--response-fd", required=True, type=int)
    parser.add_argument("--attach", action="append", default=[], help="package to attach")
    parser.add_argument("--no-inline-futures", dest="inline_futures", action="store_false")
    return parser.parse_args(argv)


def _c_stack_limit() -> int | None:
    """R's own choice: 95% of the stack rlimit (None keeps rpy2's default when unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY:
        return None
    return int(0.95 * soft)


@functools.cache
def _libr() -> ctypes.CDLL:
    """libR, already loaded by rpy2 (RTLD_NOLOAD: find it, never load a second copy)."""
    from rpy2.rinterface_lib import openrlib

    path = os.path.join(openrlib.R_HOME, "lib", "libR.so")
    return ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)


def _write_stderr(text: str) -> None:
    os.write(2, text.encode("utf-8", "replace"))


_BRIDGE_FAILED = AnswerHead.of(500, [("Content-Type", "text/plain; charset=UTF-8")])


def _import_rpy2():
    """rpy2.rinterface, told what the pool already asked R (pool/r_environment.py): R's
    variables are in our environment and R's LD_LIBRARY_PATH in R_LD_LIBRARY_PATH_ENV, so
    rpy2 need not run Rscript for them (twice, ~300 ms of a start). Without that variable, or
    with an rpy2 whose insides differ, rpy2 asks R itself."""
    ld_library_path = os.environ.pop(R_LD_LIBRARY_PATH_ENV, None)
    if ld_library_path is None:
        import rpy2.rinterface as ri

        return ri
    import rpy2.situation as situation

    # As rpy2 does after asking: R's LD_LIBRARY_PATH is for the processes R starts.
    os.environ["LD_LIBRARY_PATH"] = ld_library_path
    asked = situation.r_ld_library_path_from_subprocess
    situation.r_ld_library_path_from_subprocess = lambda r_home: ld_library_path
    try:
        import rpy2.rinterface as ri
    finally:
        situation.r_ld_library_path_from_subprocess = asked
    if hasattr(ri, "_getrenvvars"):
        ri._getrenvvars = lambda *args, **kwargs: ()  # what differs from ours: nothing now
    return ri


class RBridge:
    """The embedded R session with bridge.R loaded; the only code here that talks to R."""

    def __init__(self) -> None:
        # rpy2 warns, once per worker, that R set PWD (and other variables) its own way at
        # start; that is expected and changes nothing here.
        warnings.filterwarnings(
            "ignore", message=r"Environment variable .* redefined by R", category=UserWarning
        )
        ri = _import_rpy2()
        from rpy2.rinterface_lib import callbacks, openrlib

        # interactive=False, as under Rscript: plumber's debug default follows interactive().
        # rpy2 turns R's C stack check off by default; deep recursion (a deeply nested JSON
        # body) would then crash the worker instead of raising an R error plumber answers.
        ri.initr(interactive=False, _c_stack_limit=_c_stack_limit())
        callbacks.consolewrite_print = _write_stderr
        callbacks.consolewrite_warnerror = _write_stderr
        # rpy2 makes R call back into Python (taking a lock) from every R_CheckUserInterrupt()
        # to process events; R does that thousands of times a request (toJSON of a 20-row data
        # frame: 640 us with it, 330 us without). A worker has no GUI events to process, and
        # R's own polled events and time limits still run.
        openrlib.rlib.ptr_R_ProcessEvents = openrlib.ffi.NULL
        self._ri = ri
        bridge = ri.evalr("new.env(parent = globalenv())")
        self.forked = False  # set in a worker forked from the loaded zygote
        self.compiled = bytecode.load(ri, bridge, ri.evalr("R.version.string")[0])
        self._bridge = bridge
        self._load = bridge["plumbline_load"]
        self._exit = bridge["plumbline_exit"]
        rlib, ffi = openrlib.rlib, openrlib.ffi
        self._rlib = rlib
        self._handle = RCall(bridge["plumbline_handle"], 2, rlib, ffi)
        self._direct = RCall(bridge["plumbline_direct"], 5, rlib, ffi)
        self._routes = DirectRoutes([])
        self._kept = KeptArguments(rlib)

    def load(self, plumber_file: Path, attach: list[str], inline_futures: bool) -> str | None:
        """Load the app; R's error message (with file and line) if it failed."""
        ri = self._ri
        result = self._load(
            ri.StrSexpVector([str(plumber_file)]),
            ri.StrSexpVector(attach),
            ri.BoolSexpVector([inline_futures]),
        )
        if result is ri.NULL or len(result) == 0:
            rows = self._direct_table()
            self._routes = DirectRoutes(rows)
            # The direct path's status and headers, one R vector per endpoint kept for the
            # worker's life: read (and their frame header encoded) here once, recognised by
            # address in every answer.
            self._direct.known = {
                row["meta"].__sexp__._cdata: AnswerHead.from_strings(list(row["meta"]))
                for row in rows
                if row["direct"]
            }
            return None
        return str(result[0])

    def _direct_table(self) -> list[dict]:
        """direct.R's description of the loaded app's endpoints (empty: no direct calls)."""
        rows = self._bridge["direct_prepare"](self._bridge["plumbline"]["pr"])
        if rows is self._ri.NULL:
            return []
        return [
            {
                "verbs": list(row[0]),
                "regex": row[1][0],
                "params": row[2][0],
                "direct": bool(row[3][0]),
                "fargs": list(row[4]),
                "meta": row[5],
            }
            for row in rows
        ]

    def route_report(self, plumber_file: Path) -> bytes:
        """plumber's router as loaded (JSON, see plumbline/routes.py); b"" if R failed to
        describe it (the pool then keeps the annotation parser's reading)."""
        ri = self._ri
        try:
            pr = self._bridge["plumbline"]["pr"]
            report = self._bridge["plumbline_route_report_json"](
                pr, ri.StrSexpVector([str(plumber_file)])
            )
            return str(report[0]).encode()
        except Exception:  # never fail a loaded worker over its description
            _write_stderr("plumbline: could not describe the router:\n" + traceback.format_exc())
            return b""

    def exit(self) -> None:
        self._exit()

    def preload_packages(self) -> None:
        """Load plumber (and with it later, promises, httpuv) before the app."""
        self._ri.evalr("suppressPackageStartupMessages(library(plumber))")

    def enable_jit(self, level: int) -> None:
        """Turn R's JIT compiler on at `level` once the app has loaded (R started with it off,
        see start_r_to_load; an app that set a level of its own keeps it)."""
        self._ri.evalr(
            f"if (compiler::enableJIT(-1L) == 0L) invisible(compiler::enableJIT({level}L))"
        )

    def warm_compiler(self) -> None:
        """Compile one small function, so that the compiler's own code is loaded now (in the
        zygote: once, shared by its workers) rather than at a worker's first request."""
        self._ri.evalr("invisible(compiler::cmpfun(function(x) { for (i in 1:2) x <- x + i; x }))")

    def collect_garbage(self) -> None:
        """The zygote's last full collection before it forks (with bridge.R's sentinel)."""
        self._bridge["plumbline_sentinel"]()
        self._ri.evalr("invisible(gc(full = TRUE))")

    def full_collection_seen(self) -> bool:
        """Whether R has run a full garbage collection since this worker was forked."""
        return bool(self._bridge["plumbline"]["full_gc"][0])

    def after_fork(self) -> None:
        """In a worker just forked from the loaded zygote: what R's parallel::mcfork() resets.

        R_isForkedChild, so R treats the process as a forked child; and the random seed, so
        workers do not all draw the same "random" numbers (R seeds anew from time and pid).
        """
        forked = ctypes.c_int.in_dll(_libr(), "R_isForkedChild")
        forked.value = 1
        self._ri.evalr(
            'if (exists(".Random.seed", envir = globalenv(), inherits = FALSE)) '
            'rm(".Random.seed", envir = globalenv())'
        )
        self._bridge["plumbline_forked"]()
        self.forked = True

    def r_state(self) -> dict:
        """What makes forking this loaded process unsafe: open R connections (files, sockets)."""
        return {"connections": list(self._bridge["plumbline_open_connections"]())}

    def answer(self, key: bytes, head: bytes, body: bytes) -> tuple[AnswerHead, bytes]:
        """The answer to a request frame (its call key, JSON header and body; see
        protocol.read_request_blocking): the worker's hot path. A key seen before needs
        neither its header read nor its route or query worked out again."""
        arguments = self._kept.get(key) or self._direct_arguments(key)
        answer = None if arguments is None else self._call_direct(arguments, body)
        if answer is None:  # not a direct call, or plumbline_direct() handed it back
            return self._call_handle(decode_header(head), body)
        return answer

    def _call_direct(self, arguments: Arguments, body: bytes) -> tuple[AnswerHead, bytes] | None:
        call = self._direct
        index, query, path_values, content_type = arguments
        call.set(0, index)
        call.set(1, query)
        call.set(2, path_values)
        call.raw(3, body)
        call.set(4, content_type if body else call.null)  # no body: plumber reads no type
        return call.answer()

    def _direct_arguments(self, key: bytes) -> Arguments | None:
        """The direct call's arguments for a call key (kept for the next request with it);
        None: plumber's pipeline answers."""
        if not self._routes.enabled:
            return None
        method, path, query, content_types, cookie = decode_call_key(key)
        plan = self._routes.plan(method, _as_sent(path), query, cookie)
        if plan is None:
            return None
        content_type = (
            ",".join(_as_sent(value) for value in content_types) if content_types else None
        )
        return self._kept.make(key, lambda protect: self._arguments(plan, content_type, protect))

    def _arguments(self, plan: DirectCall, content_type: str | None, protect) -> Arguments:
        call = self._direct
        rlib = self._rlib
        return (
            call.integer(plan.index),
            call.named_list(plan.args, protect) if plan.args else call.empty[rlib.VECSXP],
            call.string_vector(plan.path_values, protect)
            if plan.path_values
            else call.empty[rlib.STRSXP],
            call.null if content_type is None else call.string_vector([content_type], protect),
        )

    def _call_handle(self, request: dict, body: bytes) -> tuple[AnswerHead, bytes]:
        names, env_names, values = _rook_headers(request["headers"])
        fields = [
            request["method"],
            _as_sent(request["path"]),
            _as_sent(request["query_string"]),
            request["remote_addr"],
            str(request["remote_port"]),
            request["server_name"],
            str(request["server_port"]),
            request["scheme"],
            *names,
            *env_names,
            *values,
        ]
        call = self._handle
        call.strings(0, fields)
        call.raw(1, body)
        answer = call.answer()
        if answer is None:  # plumbline_handle() always answers; NULL would be a bridge bug
            raise RuntimeError("the R bridge answered NULL")
        return answer


def _rook_headers(headers: list[tuple[str, str]]) -> tuple[list[str], list[str], list[str]]:
    """Names, HTTP_* names and values; a repeated header is joined with "," as httpuv does."""
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        value = _as_sent(value)
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    names = list(merged)
    env_names = ["HTTP_" + name.upper().replace("-", "_") for name in names]
    return names, env_names, list(merged.values())


def _as_sent(text: str) -> str:
    """Undo the HTTP layer's latin-1 decoding of raw bytes, so R sees UTF-8 as httpuv would."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


# R's first collection trigger, in cons cells (R_NSIZE; R's default is 350,000). From R's
# default, loading plumber and an app escalated to two or three collections of the whole
# growing heap (~0.1 s each here: R's first collection is always a full one, and a young one
# that frees less than a fifth of the trigger makes the next one older). From this value,
# plumber and a small app (the example, benchmarks/api.R) load with young collections only,
# and R settles at the same trigger once loaded; an app that loads more (or allocates a
# large model) still runs its full collections. Neither larger nor smaller is better: from
# ~600,000 R's first, full collection falls in plumber's load and the app's escalate again;
# far larger (1,200,000: hardly a collection) leaves the loaded heap's free slots spread over
# more pages, which every forked worker then writes (20-40 MiB more private memory each).
# Measured: docs/benchmarks.md, stop 31.
_LOADING_NSIZE = "500000"


def start_r_to_load() -> tuple[RBridge, int]:
    """R started to load plumber and an app fast, and the JIT level to turn on once loaded.

    R's JIT compiler is off (R_ENABLE_JIT=0): while plumber and the app load it would compile
    closures that run once (0.2-0.3 s of the example app's load, the compiler's own start
    included); the level to turn on is R_ENABLE_JIT's, else R's default, 3. R's first
    collection trigger is _LOADING_NSIZE unless R_NSIZE is set. Both variables count at R's
    start only, and are put back for the app to see."""
    given = {name: os.environ.get(name) for name in ("R_ENABLE_JIT", "R_NSIZE")}
    level = 3
    if given["R_ENABLE_JIT"] is not None:  # read as R reads it, with C's atoi(): "abc" is 0
        digits = re.match(r"\s*([+-]?\d+)", given["R_ENABLE_JIT"])
        level = max(int(digits.group(1)), 0) if digits else 0
    os.environ["R_ENABLE_JIT"] = "0"
    os.environ.setdefault("R_NSIZE", _LOADING_NSIZE)
    try:
        return RBridge(), level
    finally:
        for name, value in given.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def serve(args: argparse.Namespace) -> int:
    out = args.response_fd
    try:
        bridge, jit_level = start_r_to_load()
    except Exception:
        _write_stderr(traceback.format_exc())
        write_all(out, encode_frame({"type": "load_failed", "message": "R bridge failed to start"}))
        return EXIT_BOOT_FAILED
    # The pool decides when a worker stops; Ctrl-C in a terminal reaches the whole process
    # group. Set after R started, which installs its own SIGINT handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    error = bridge.load(args.plumber_file.resolve(), args.attach, args.inline_futures)
    if error is not None:
        write_all(out, encode_frame({"type": "load_failed", "message": error}))
        return EXIT_LOAD_FAILED
    # The ready frame's body is plumber's route table, for the pool to route and document by.
    report = bridge.route_report(args.plumber_file.resolve())
    if jit_level:
        bridge.enable_jit(jit_level)
        bridge.warm_compiler()
    gc.freeze()  # what loading left lives as long as the worker: no full collection walks it
    return serve_loaded(bridge, args.request_fd, out, report)


def serve_loaded(bridge: RBridge, request_fd: int, response_fd: int, report: bytes) -> int:
    """Report "ready" (with plumber's route table), then answer request frames until the
    pool closes the request pipe."""
    # R's system() children must not inherit the pipes, or a dead worker would never EOF.
    os.set_inheritable(request_fd, False)
    os.set_inheritable(response_fd, False)
    requests = os.fdopen(request_fd, "rb", buffering=65536)
    out = response_fd
    write_all(out, encode_frame({"type": "ready", "pid": os.getpid()}, report))
    # A forked worker says in one answer that R has run a full collection (bridge.R's
    # sentinel), so the pool can replace it with a fresh fork; looked at once a second at most.
    watching = bridge.forked
    next_look = 0.0

    while True:
        frame = read_request_blocking(requests)
        if frame is None:  # the pool closed the pipe: a graceful stop
            bridge.exit()
            return 0
        try:
            head, answer = bridge.answer(*frame)
        except Exception as exc:  # an R error that escaped the bridge's own handler
            _write_stderr(traceback.format_exc())
            head, answer = _BRIDGE_FAILED, f"ERROR: {exc}".encode()
        encoded = head.encoded
        if watching and (now := time.monotonic()) >= next_look:
            next_look = now + _FULL_GC_LOOK_INTERVAL
            if bridge.full_collection_seen():
                encoded = encode_header(response_header(head.status, head.headers, full_gc=True))
                watching = False
        write_all(out, *_response_frame(encoded, answer))


def _response_frame(encoded: bytes, body: bytes) -> tuple[bytes, bytes]:
    """The answer's frame, as (everything up to the body, the body); a 500 instead of an
    answer too large for the pipe (say, headers of megabytes), so the pool never has to
    drop this worker over it."""
    try:
        return encoded_frame_head(encoded, len(body)), body
    except FrameTooLarge as exc:
        _write_stderr(f"plumbline: the app's answer cannot be sent: {exc}\n")
        body = (
            f"ERROR: the answer is too large to send (headers over {MAX_HEADER_SIZE >> 20} MiB"
            f" or body over {MAX_BODY_SIZE >> 30} GiB)"
        ).encode()
        return encoded_frame_head(_BRIDGE_FAILED.encoded, len(body)), body


def main(argv: list[str] | None = None) -> int:
    try:
        return serve(_parse_args(argv))
    except BrokenPipeError:
        return 0  # the pool closed its end: nobody is left to answer


if __name__ == "__main__":
    sys.exit(main())
