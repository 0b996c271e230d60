"""Messages between the pool and a worker, and how they travel over a pipe.

A frame is an 8-byte prefix (header length, body length; big-endian uint32), a small JSON
header, then the raw body bytes. The body never passes through JSON, so a large upload or
download costs one copy, and the header stays a handful of fields. A request frame's header
starts with its call key (see call_key; its length as a big-endian uint32, then the key),
which a worker reads before, and most often instead of, the JSON.

Frames a worker sends: {"type": "ready"}, {"type": "load_failed", "message": ...} and
{"type": "response", "status": ..., "headers": [...]}. The pool sends {"type": "request", ...}.
"""

from __future__ import annotations

import json
import json.encoder
import os
from dataclasses import dataclass, field
from typing import BinaryIO

PREFIX_SIZE = 8
# A frame header is a few fields; anything bigger means the stream is out of step. 2 MiB: a
# request's URL and its Content-Type values travel twice (in its call key and its JSON).
MAX_HEADER_SIZE = 2 << 20
MAX_BODY_SIZE = 1 << 31


# The largest packet either side reads on the zygote's control socket (SOCK_SEQPACKET): the
# pool sends a larger message as a memory file whose descriptor an empty packet carries (a
# socket's send buffer, ~208 KiB by default, bounds one packet; pool/head_start.py
# send_message, r/zygote.py _receive); the zygote's own messages are short JSON.
MAX_CONTROL_PACKET = 64 * 1024


# Set by the pool for the R processes it starts (pool/r_environment.py): R's own variables
# are in their environment already, and this is the LD_LIBRARY_PATH R would add.
R_LD_LIBRARY_PATH_ENV = "PLUMBLINE_R_LD_LIBRARY_PATH"


class ProtocolError(Exception):
    """The other side sent something that is not a frame."""


class FrameTooLarge(ValueError):
    """A frame the other side would refuse to read (see MAX_HEADER_SIZE, MAX_BODY_SIZE):
    never written, so no request or answer can make a worker or the pool drop the pipe."""


@dataclass
class WorkerRequest:
    method: str
    path: str  # decoded path (PATH_INFO)
    query_string: str  # raw, undecoded, without '?'
    headers: list[tuple[str, str]]  # as received
    body: bytes = b""
    remote_addr: str = "127.0.0.1"
    remote_port: int = 0
    server_name: str = "127.0.0.1"  # the address the connection came in on, as httpuv gives it
    server_port: int = 8000
    scheme: str = "http"


@dataclass
class WorkerResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    full_gc: bool = False  # a forked worker's R ran a full collection (see pool.py)


# One encoder for every frame: json.dumps() with separators builds a new one per call (~40%
# of the encoding time of a request's header).
_encode_header = json.JSONEncoder(separators=(",", ":")).encode
# A JSON string literal, escaped to ASCII (json's own C function).
_quote = json.encoder.encode_basestring_ascii
# And one decoder: json.loads() of bytes first guesses their encoding and checks for text
# after the value (a frame's prefix already says where its header ends): 3.1 -> 2.1 us.
_raw_decode = json.JSONDecoder().raw_decode


def decode_header(head: bytes) -> dict:
    """A frame's header (UTF-8 JSON, as encode_header() wrote it); ProtocolError otherwise."""
    try:
        header = _raw_decode(head.decode())[0]
    except ValueError as exc:  # not UTF-8, or not JSON
        raise ProtocolError(f"a frame header that is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("a frame header that is not a JSON object")
    return header


def encode_frame(header: dict, body: bytes = b"") -> bytes:
    return frame_head(header, len(body)) + body


def frame_head(header: dict, body_size: int) -> bytes:
    """A frame up to its body (prefix and header): the body follows as it is."""
    return encoded_frame_head(encode_header(header), body_size)


def encode_header(header: dict) -> bytes:
    """A frame's header as it travels (for one sent many times, see encoded_frame_head)."""
    return _encode_header(header).encode()


def encoded_frame_head(head: bytes, body_size: int) -> bytes:
    """A frame up to its body, its header already encoded by encode_header()."""
    if len(head) > MAX_HEADER_SIZE or body_size > MAX_BODY_SIZE:
        raise FrameTooLarge(
            f"frame of {len(head)}/{body_size} bytes (header/body) is over "
            f"{MAX_HEADER_SIZE}/{MAX_BODY_SIZE}"
        )
    return len(head).to_bytes(4, "big") + body_size.to_bytes(4, "big") + head


def split_prefix(prefix: bytes) -> tuple[int, int]:
    head_len = int.from_bytes(prefix[:4], "big")
    body_len = int.from_bytes(prefix[4:], "big")
    if head_len > MAX_HEADER_SIZE or body_len > MAX_BODY_SIZE:
        raise ProtocolError(f"implausible frame sizes {head_len}/{body_len}")
    return head_len, body_len


def encode_request(request: WorkerRequest) -> bytes:
    key = call_key(request)
    head = len(key).to_bytes(4, "big") + key + encoded_request_header(request)
    return encoded_frame_head(head, len(request.body)) + request.body


def call_key(request: WorkerRequest) -> bytes:
    """Everything but the body that a worker's direct call of R depends on (runtime/r/direct.py):
    method, path, query, the Content-Type values and whether a cookie came. A worker keeps the
    R arguments it made for a key, so a request like an earlier one is called without reading
    its header, routing or parsing its query again; the header's other fields (the client's
    address and port, other headers) differ between clients and are left out, so that they
    still share a key. JSON, so no two requests share a key by accident."""
    content_types = []
    cookie = False
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == "content-type":
            content_types.append(value)
        elif lowered == "cookie":
            cookie = True
    # Written out rather than by json's encoder, which sets up anew for every value (3 us
    # instead of 1 a request, in the pool process).
    types = ",".join(map(_quote, content_types))
    return (
        f"[{_quote(request.method)},{_quote(request.path)},{_quote(request.query_string)},"
        f"[{types}],{'true' if cookie else 'false'}]"
    ).encode()


def request_header(request: WorkerRequest) -> dict:
    """The request frame's header: every field but the body (the worker reads these keys).
    Frames carry it as encoded_request_header() writes it; this dict is what that must
    equal, and what a test holds it to."""
    return {
        "type": "request",
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string,
        "headers": request.headers,
        "remote_addr": request.remote_addr,
        "remote_port": request.remote_port,
        "server_name": request.server_name,
        "server_port": request.server_port,
        "scheme": request.scheme,
    }


def encoded_request_header(request: WorkerRequest) -> bytes:
    """encode_header(request_header(request)), byte for byte, written out as call_key() is
    (json's encoder: 7.7 us a request in the pool process; written out: 3.1)."""
    headers = ",".join([f"[{_quote(name)},{_quote(value)}]" for name, value in request.headers])
    return (
        f'{{"type":"request","method":{_quote(request.method)},"path":{_quote(request.path)},'
        f'"query_string":{_quote(request.query_string)},"headers":[{headers}],'
        f'"remote_addr":{_quote(request.remote_addr)},"remote_port":{int(request.remote_port)},'
        f'"server_name":{_quote(request.server_name)},"server_port":{int(request.server_port)},'
        f'"scheme":{_quote(request.scheme)}}}'
    ).encode()


def response_header(status: int, headers: list[tuple[str, str]], full_gc: bool = False) -> dict:
    """A response frame's header (full_gc only when true: every other answer's frame is the
    same as before it existed)."""
    header = {"type": "response", "status": status, "headers": headers}
    if full_gc:
        header["full_gc"] = True
    return header


def decode_response(header: dict, body: bytes) -> WorkerResponse:
    if header.get("type") != "response":
        raise ProtocolError(f"expected a response frame, got {header.get('type')!r}")
    return WorkerResponse(
        status=header["status"],
        headers=[(name, value) for name, value in header["headers"]],
        body=body,
        full_gc=reports_full_gc(header),
    )


def reports_full_gc(header: dict) -> bool:
    """Whether a response frame's header says its worker's R ran a full collection."""
    return header.get("full_gc") is True


def read_frame_blocking(stream: BinaryIO) -> tuple[dict, bytes] | None:
    """Read one frame (not a request's: see read_request_blocking) from a buffered binary
    stream; None at a clean end of stream."""
    frame = _read_raw_frame(stream)
    if frame is None:
        return None
    data, head_len = frame
    return decode_header(data[:head_len]), data[head_len:]


def decode_call_key(key: bytes) -> list:
    """call_key()'s fields: method, path, query, Content-Type values, cookie or not."""
    try:
        fields = _raw_decode(key.decode())[0]
    except ValueError as exc:
        raise ProtocolError(f"a call key that is not JSON: {exc}") from None
    if not isinstance(fields, list) or len(fields) != 5:
        raise ProtocolError("a call key that is not a list of five fields")
    return fields


def read_request_blocking(stream: BinaryIO) -> tuple[bytes, bytes, bytes] | None:
    """Read one request frame, undecoded: (call key, JSON header, body); None at a clean end
    of stream."""
    frame = _read_raw_frame(stream)
    if frame is None:
        return None
    data, head_len = frame
    key_end = 4 + int.from_bytes(data[:4], "big")
    if key_end > head_len:
        raise ProtocolError("a request frame whose call key overruns its header")
    return data[4:key_end], data[key_end:head_len], data[head_len:]


def _read_raw_frame(stream: BinaryIO) -> tuple[bytes, int] | None:
    """A frame's header and body, read as one, and the header's length."""
    prefix = stream.read(PREFIX_SIZE)
    if not prefix:
        return None
    if len(prefix) < PREFIX_SIZE:
        raise ProtocolError("stream ended inside a frame prefix")
    head_len, body_len = split_prefix(prefix)
    data = stream.read(head_len + body_len)
    if len(data) < head_len + body_len:
        raise ProtocolError("stream ended inside a frame")
    return data, head_len


def write_all(fd: int, data: bytes, tail: bytes = b"") -> None:
    """Write data, then tail, in as few system calls as the pipe allows (the two are not
    joined first: a large body is not copied)."""
    written = os.writev(fd, (data, tail))
    if written == len(data) + len(tail):  # almost always: a pipe takes 64 KiB at once
        return
    views = [memoryview(data)[written:], memoryview(tail)]
    if written > len(data):
        views = [memoryview(tail)[written - len(data) :]]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]
