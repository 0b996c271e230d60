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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from plumbline.exits import ExitCode
from plumbline.runtime.r import bytecode
from plumbline.runtime.r.direct import DirectCall, DirectRoutes
from plumbline.runtime.protocol import (
    R_LD_LIBRARY_PATH_ENV,
    FrameTooLarge,
    encode_frame,
    encode_header,
    encoded_frame_head,
    read_frame_blocking,
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


@dataclass(frozen=True, slots=True)
class AnswerHead:
    """An answer's status and headers, and its response frame's header already encoded: a
    direct endpoint's is made once (see RBridge.load), not for every request."""

    status: int
    headers: list[tuple[str, str]]
    encoded: bytes

    @classmethod
    def of(cls, status: int, headers: list[tuple[str, str]]) -> AnswerHead:
        return cls(status, headers, encode_header(response_header(status, headers)))

    @classmethod
    def from_strings(cls, strings: list[str]) -> AnswerHead:
        """From the bridge's c(status, name, value, ...) vector."""
        return cls.of(int(strings[0]), list(zip(strings[1::2], strings[2::2])))


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
        self._handle = _RCall(bridge["plumbline_handle"], 2, rlib, ffi)
        self._direct = _RCall(bridge["plumbline_direct"], 5, rlib, ffi)
        self._routes = DirectRoutes([])

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

    def answer(self, request: dict, body: bytes) -> tuple[AnswerHead, bytes]:
        """The answer to a request frame (its header's fields, see protocol.request_header,
        and its body), read straight from the frame: the worker's hot path."""
        answer = None
        headers = request["headers"]
        if self._routes.enabled:
            path = _as_sent(request["path"])
            plan = self._routes.plan(request["method"], path, request["query_string"], headers)
            if plan is not None:
                answer = self._call_direct(plan, headers, body)
        if answer is None:
            answer = self._call_handle(request, body)
        return answer

    def _call_direct(self, plan: DirectCall, headers: list, body: bytes):
        call = self._direct
        call.set(0, call.integer(plan.index))
        call.named_list(1, plan.args)
        call.strings(2, plan.path_values)
        call.raw(3, body)
        content_type = _content_type(headers) if body else None
        if content_type is None:
            call.set(4, call.null)
        else:
            call.strings(4, [content_type])
        return call.answer()

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


class _RCall:
    """A call of one R function through R's C API, built once, its arguments swapped per call.

    rpy2's high-level call wraps every argument and result element in Python objects
    (about 0.2 ms a request); here one call object is built once and preserved, and each
    call only replaces its arguments. The arguments hang off that preserved call, so R's
    garbage collector cannot take them while later ones are allocated, and the result is
    protected while it is read. No R error may happen while arguments are built (it would
    longjmp through Python): strings are made without NUL bytes.
    """

    def __init__(self, function, nargs: int, rlib, ffi):
        self._rlib = rlib
        self._ffi = ffi
        call = rlib.Rf_allocVector(rlib.LANGSXP, nargs + 1)
        rlib.R_PreserveObject(call)
        rlib.SETCAR(call, function.__sexp__._cdata)
        self._call = call
        self._cells = []
        cell = call
        for _ in range(nargs):
            cell = rlib.CDR(cell)
            self._cells.append(cell)
        self._setcar = rlib.SETCAR
        # What each argument cell holds (R's NULL at first), and the cells holding a vector made
        # for this request: a kept vector (an index, an empty argument) is not written again
        # when the next request passes the same one, nor cleared after each call (each
        # write or clear is a call through cffi, ~0.5 us here).
        self.null = rlib.R_NilValue
        self._held: list[object] = [self.null] * nargs
        self._fresh: list[int] = []
        self._names = rlib.Rf_install(b"names")
        self._error = ffi.new("int *")
        # Arguments most requests share, made once: no query, no path values, no body.
        self._empty = {
            kind: self._keep(rlib.Rf_allocVector(kind, 0))
            for kind in (rlib.STRSXP, rlib.RAWSXP, rlib.VECSXP)
        }
        self._integers: dict[int, object] = {}
        # Status-and-headers vectors R keeps for the worker's life, already read (see
        # RBridge.load): an answer that carries one of them is not read again.
        self.known: dict[object, AnswerHead] = {}

    def _keep(self, value):
        self._rlib.R_PreserveObject(value)
        return value

    def integer(self, number: int):
        """A length-one integer vector, kept (a request's endpoint index: a handful)."""
        value = self._integers.get(number)
        if value is None:
            value = self._integers[number] = self._keep(self._rlib.Rf_ScalarInteger(number))
        return value

    def set(self, position: int, value) -> None:
        """A kept R value (preserved, see integer() and the empties; or NULL) as argument
        `position`."""
        if self._held[position] != value:
            self._setcar(self._cells[position], value)
            self._held[position] = value

    def _set_fresh(self, position: int, vector) -> None:
        """A vector made for this call as argument `position` (cleared after the call)."""
        self._setcar(self._cells[position], vector)
        self._held[position] = vector
        self._fresh.append(position)

    def strings(self, position: int, texts: Sequence[str]):
        """A character vector as argument `position`."""
        rlib = self._rlib
        if not texts:
            self.set(position, self._empty[rlib.STRSXP])
            return
        vector = rlib.Rf_allocVector(rlib.STRSXP, len(texts))
        self._set_fresh(position, vector)
        self._fill(vector, texts)

    def raw(self, position: int, data: bytes) -> None:
        rlib = self._rlib
        if not data:
            self.set(position, self._empty[rlib.RAWSXP])
            return
        vector = rlib.Rf_allocVector(rlib.RAWSXP, len(data))
        self._set_fresh(position, vector)
        self._ffi.memmove(rlib.RAW(vector), data, len(data))

    def named_list(self, position: int, items: list[tuple[str, list[str]]]) -> None:
        """list(name = c(value, ...), ...) as argument `position`."""
        rlib = self._rlib
        if not items:
            self.set(position, self._empty[rlib.VECSXP])
            return
        vector = rlib.Rf_allocVector(rlib.VECSXP, len(items))
        self._set_fresh(position, vector)
        for i, (_, values) in enumerate(items):
            element = rlib.Rf_allocVector(rlib.STRSXP, len(values))
            rlib.SET_VECTOR_ELT(vector, i, element)
            self._fill(element, values)
        names = rlib.Rf_protect(rlib.Rf_allocVector(rlib.STRSXP, len(items)))
        self._fill(names, [name for name, _ in items])
        rlib.Rf_setAttrib(vector, self._names, names)
        rlib.Rf_unprotect(1)

    def _fill(self, vector, texts: Sequence[str]) -> None:
        rlib = self._rlib
        for i, text in enumerate(texts):
            data = text.encode("utf-8", "replace")
            if b"\0" in data:
                data = data.replace(b"\0", b"")
            rlib.SET_STRING_ELT(vector, i, rlib.Rf_mkCharLenCE(data, len(data), rlib.CE_UTF8))

    def answer(self) -> tuple[AnswerHead, bytes] | None:
        """Evaluate; the (status and headers, raw body) pair of the R function's answer, None
        for NULL."""
        rlib, ffi = self._rlib, self._ffi
        result = rlib.R_tryEval(self._call, rlib.R_GlobalEnv, self._error)
        if self._error[0]:
            self._clear()
            raise RuntimeError("the R bridge failed (see the R error above)")
        if result == rlib.R_NilValue:
            self._clear()
            return None
        rlib.Rf_protect(result)
        try:
            meta = rlib.VECTOR_ELT(result, 0)
            head = self.known.get(meta)
            if head is None:
                head = AnswerHead.from_strings(
                    [
                        ffi.string(rlib.R_CHAR(rlib.STRING_ELT(meta, i))).decode("utf-8", "replace")
                        for i in range(rlib.Rf_xlength(meta))
                    ]
                )
            raw_out = rlib.VECTOR_ELT(result, 1)
            size = rlib.Rf_xlength(raw_out)
            body_out = ffi.buffer(rlib.RAW(raw_out), size)[:] if size else b""
        finally:
            rlib.Rf_unprotect(1)
            self._clear()
        return head, body_out

    def _clear(self) -> None:
        # Let R reclaim this request's arguments instead of holding them until the next one.
        null = self.null
        for position in self._fresh:
            self._setcar(self._cells[position], null)
            self._held[position] = null
        self._fresh.clear()


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


def _content_type(headers: list[tuple[str, str]]) -> str | None:
    """The Content-Type header as httpuv gives it to R (repeated ones joined with ",")."""
    found = [_as_sent(value) for name, value in headers if name.lower() == "content-type"]
    return ",".join(found) if found else None


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
        frame = read_frame_blocking(requests)
        if frame is None:  # the pool closed the pipe: a graceful stop
            bridge.exit()
            return 0
        header, body = frame
        try:
            head, answer = bridge.answer(header, body)
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
        body = b"ERROR: the answer is too large to send (headers over 1 MiB or body over 2 GiB)"
        return encoded_frame_head(_BRIDGE_FAILED.encoded, len(body)), body


def main(argv: list[str] | None = None) -> int:
    try:
        return serve(_parse_args(argv))
    except BrokenPipeError:
        return 0  # the pool closed its end: nobody is left to answer


if __name__ == "__main__":
    sys.exit(main())
