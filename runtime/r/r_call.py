"""Calls of the bridge's R functions through R's C API (cffi), and the arguments kept for them.

rpy2's high-level call wraps every argument and result element in Python objects (about
0.2 ms a request); here one call object is built once and preserved, and each call only
replaces its arguments. A direct call's arguments (the endpoint, the query's values, the
path's values, the content type) depend on the request's call key alone (protocol.call_key),
so they are made once per key and kept (KeptArguments): a request like an earlier one costs
two writes through cffi and R's own work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from plumbline.runtime.protocol import encode_header, response_header

# A direct call's arguments as they are kept: the endpoint's index, the query arguments, the
# path values and the content type (NULL when none), each an R value that stays alive as
# long as it is kept.
Arguments = tuple[object, object, object, object]
# Keys longer than this (long queries, long paths) are answered but not kept: the cache
# stays small however long the URLs clients make up.
_LONGEST_KEY_KEPT = 1024


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


class RCall:
    """A call of one R function, built once, its arguments swapped per call.

    The arguments hang off the preserved call, so R's garbage collector cannot take them
    while later ones are allocated. No R error may happen while arguments are built (it
    would longjmp through Python): strings are made without NUL bytes.
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
        # for this request: a kept vector (kept arguments, an empty one) is not written again
        # when the next request passes the same one, nor cleared after each call (each
        # write or clear is a call through cffi, ~0.5 us here).
        self.null = rlib.R_NilValue
        self._held: list[object] = [self.null] * nargs
        self._fresh: list[int] = []
        self._names = rlib.Rf_install(b"names")
        self._error = ffi.new("int *")
        # Arguments most requests share, made once: no query, no path values, no body.
        self.empty = {
            kind: self.keep(rlib.Rf_allocVector(kind, 0))
            for kind in (rlib.STRSXP, rlib.RAWSXP, rlib.VECSXP)
        }
        self._integers: dict[int, object] = {}
        # Status-and-headers vectors R keeps for the worker's life, already read (see
        # RBridge.load): an answer that carries one of them is not read again.
        self.known: dict[object, AnswerHead] = {}

    def keep(self, value):
        """Preserve an R value for the worker's life."""
        self._rlib.R_PreserveObject(value)
        return value

    def integer(self, number: int):
        """A length-one integer vector, kept (a request's endpoint index: a handful)."""
        value = self._integers.get(number)
        if value is None:
            value = self._integers[number] = self.keep(self._rlib.Rf_ScalarInteger(number))
        return value

    def set(self, position: int, value) -> None:
        """An R value kept alive elsewhere (integer(), the empties, KeptArguments; or NULL)
        as argument `position`."""
        if self._held[position] != value:
            self._setcar(self._cells[position], value)
            self._held[position] = value

    def _set_fresh(self, position: int, vector) -> None:
        """A vector made for this call as argument `position` (cleared after the call)."""
        self._setcar(self._cells[position], vector)
        self._held[position] = vector
        self._fresh.append(position)

    def strings(self, position: int, texts: Sequence[str]) -> None:
        """A character vector as argument `position`, for this call only."""
        if not texts:
            self.set(position, self.empty[self._rlib.STRSXP])
            return
        self.string_vector(texts, lambda vector: self._set_fresh(position, vector))

    def raw(self, position: int, data: bytes) -> None:
        """A raw vector as argument `position`, for this call only."""
        rlib = self._rlib
        if not data:
            self.set(position, self.empty[rlib.RAWSXP])
            return
        vector = rlib.Rf_allocVector(rlib.RAWSXP, len(data))
        self._set_fresh(position, vector)
        self._ffi.memmove(rlib.RAW(vector), data, len(data))

    def string_vector(self, texts: Sequence[str], protect: Callable[[object], None]):
        """c(text, ...), handed to `protect` (which keeps it from R's collector) as soon as it
        is allocated, before the strings it is filled with are."""
        rlib = self._rlib
        vector = rlib.Rf_allocVector(rlib.STRSXP, len(texts))
        protect(vector)
        self._fill(vector, texts)
        return vector

    def named_list(self, items: list[tuple[str, list[str]]], protect: Callable[[object], None]):
        """list(name = c(value, ...), ...), protected as string_vector() is."""
        rlib = self._rlib
        vector = rlib.Rf_allocVector(rlib.VECSXP, len(items))
        protect(vector)
        for i, (_, values) in enumerate(items):
            element = rlib.Rf_allocVector(rlib.STRSXP, len(values))
            rlib.SET_VECTOR_ELT(vector, i, element)
            self._fill(element, values)
        names = rlib.Rf_protect(rlib.Rf_allocVector(rlib.STRSXP, len(items)))
        self._fill(names, [name for name, _ in items])
        rlib.Rf_setAttrib(vector, self._names, names)
        rlib.Rf_unprotect(1)
        return vector

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
        # The result is read unprotected: nothing below allocates in R, so R's collector cannot
        # run before the answer is copied out (two calls through cffi fewer a request).
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
            self._clear()
        return head, body_out

    def _clear(self) -> None:
        # Let R reclaim this request's own vectors instead of holding them until the next one.
        null = self.null
        for position in self._fresh:
            self._setcar(self._cells[position], null)
            self._held[position] = null
        self._fresh.clear()


class KeptArguments:
    """Direct calls' arguments by call key, at most `capacity` keys; when full, it starts
    over. The R vectors live in one preserved list, `slots` to a key, so that keeping or
    forgetting one is a write to that list (R's own list of preserved objects is searched
    from the start on every release); a key's slots are written again only after the whole
    cache has started over. A key too long to keep gets its vectors in a scratch list,
    alive until the next such key."""

    def __init__(self, rlib, capacity: int = 1024, slots: int = 3):
        self._rlib = rlib
        self._capacity = capacity
        self._slots = slots
        self._store = rlib.Rf_allocVector(rlib.VECSXP, capacity * slots)
        rlib.R_PreserveObject(self._store)
        self._scratch = rlib.Rf_allocVector(rlib.VECSXP, slots)
        rlib.R_PreserveObject(self._scratch)
        self._kept: dict[bytes, Arguments] = {}
        self.get = self._kept.get

    def make(self, key: bytes, build: Callable[[Callable[[object], None]], Arguments]) -> Arguments:
        """The arguments `build` makes, kept under `key`. `build` hands each vector it makes
        to the protect function it is given (at most `slots` of them)."""
        if len(key) > _LONGEST_KEY_KEPT:
            return build(self._protector(self._scratch, 0))
        if len(self._kept) >= self._capacity:
            self._kept.clear()
        # The n-th key kept since the cache started over owns the n-th run of slots.
        protect = self._protector(self._store, len(self._kept) * self._slots)
        arguments = self._kept[key] = build(protect)
        return arguments

    def _protector(self, holder, first: int) -> Callable[[object], None]:
        """A protect function that puts each vector in the next of `holder`'s slots."""
        set_element = self._rlib.SET_VECTOR_ELT
        slots = iter(range(first, first + self._slots))
        return lambda vector: set_element(holder, next(slots), vector)

    def __len__(self) -> int:
        return len(self._kept)
