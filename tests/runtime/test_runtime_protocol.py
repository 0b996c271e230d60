"""Frames between the pool and a worker (no R involved, except the worker's exit code test)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading

import pytest

from plumbline.runtime.pool.frame_reader import FrameReader
from plumbline.runtime.protocol import (
    MAX_HEADER_SIZE,
    FrameTooLarge,
    ProtocolError,
    WorkerRequest,
    WorkerResponse,
    call_key,
    decode_call_key,
    decode_header,
    decode_response,
    encode_frame,
    encode_header,
    encode_request,
    read_frame_blocking,
    read_request_blocking,
    encoded_request_header,
    request_header,
    frame_head,
    response_header,
    write_all,
)
from plumbline.runtime.r.worker import EXIT_LOAD_FAILED
from pool_harness import APPS


def test_request_survives_the_round_trip_with_binary_body():
    request = WorkerRequest(
        "POST",
        "/a b",
        "x=%20&y",
        [("x-h", "v"), ("x-h", "w")],
        bytes(range(256)) * 10,
        remote_addr="10.0.0.1",
        remote_port=4321,
        server_port=9000,
        scheme="https",
    )
    stream = io.BytesIO(encode_request(request) + encode_request(request))
    for _ in range(2):
        key, head, body = read_request_blocking(stream)
        assert decode_call_key(key) == ["POST", "/a b", "x=%20&y", [], False]
        assert decode_header(head) == _as_json(request_header(request))
        assert body == request.body
    assert read_request_blocking(stream) is None


def test_the_request_header_is_written_as_json_writes_it():
    """The pool writes a request's JSON header by hand (faster than json's encoder): the same
    bytes for every kind of text a request can carry."""
    texts = [
        "",
        "plain",
        'quote " and \\ backslash',
        "tab\tnew\nline\x00nul\x1f",
        "é ü ß",
        "\u2028 \U0001f600",
        "ÃƒÂ© (latin-1 decoded bytes)",
        "</script>",
    ]
    for i, text in enumerate(texts):
        request = WorkerRequest(
            text or "GET",
            "/" + text,
            text,
            [(text, texts[-1 - i]), ("host", text), ("x", "")] if i % 2 else [],
            b"",
            remote_addr=text,
            remote_port=i * 1000,
            server_name=texts[-1 - i],
            server_port=65535 - i,
            scheme=text,
        )
        assert encoded_request_header(request) == encode_header(request_header(request))


def test_a_call_key_holds_what_a_direct_call_depends_on_and_nothing_else():
    """Requests that differ only in who sent them share a key (a worker reuses the R arguments
    it made for it); any difference R's direct call would see makes another key."""

    def key(query="a=1", headers=(), method="GET", path="/p", **client) -> list:
        return decode_call_key(
            call_key(WorkerRequest(method, path, query, list(headers), **client))
        )

    same = key(headers=[("user-agent", "curl"), ("x-request-id", "7")], remote_port=5151)
    assert same == key(remote_addr="10.1.2.3", remote_port=4242) == ["GET", "/p", "a=1", [], False]
    typed = [("Content-Type", "text/plain"), ("content-type", "application/json")]
    assert key(headers=typed)[3] == ["text/plain", "application/json"]
    assert key(headers=[("COOKIE", "a=1")])[4] is True
    differing = [key(), key("a=2"), key(method="POST"), key(path="/q"), key(headers=typed[1:])]
    assert len({json.dumps(k) for k in differing}) == 5
    # no path or query can pose as another field: JSON quotes them
    assert key(path='/p", "a=1') != key()


def _as_json(header: dict) -> dict:
    """What a header reads back as: JSON has lists, not tuples."""
    return json.loads(json.dumps(header))


def response_head(response: WorkerResponse) -> bytes:
    """A response's frame up to its body, as a worker writes it."""
    header = response_header(response.status, response.headers, response.full_gc)
    return frame_head(header, len(response.body))


def encode_response(response: WorkerResponse) -> bytes:
    return response_head(response) + response.body


def test_a_response_says_full_collection_only_when_there_was_one():
    plain = WorkerResponse(200, [("Content-Type", "text/plain")], b"odd")
    flagged = WorkerResponse(200, [("Content-Type", "text/plain")], b"odd", full_gc=True)
    assert b"full_gc" not in response_head(plain)  # every other answer's frame is unchanged
    for response in (plain, flagged):
        stream = io.BytesIO(encode_response(response))
        assert decode_response(*read_frame_blocking(stream)) == response


def test_a_large_answer_crosses_a_worker_pipe_whole_without_being_joined_first():
    # Header and body written separately (writev), both larger than the pipe holds at once,
    # so the writes are partial and resume mid-part.
    response = WorkerResponse(200, [("X-Pad", "h" * 700_000)], os.urandom(3_000_000))
    read_fd, write_fd = os.pipe()
    received = []
    reader = threading.Thread(target=lambda: received.append(os.fdopen(read_fd, "rb").read()))
    reader.start()
    write_all(write_fd, response_head(response), response.body)
    os.close(write_fd)
    reader.join(30)
    assert received == [encode_response(response)]
    stream = io.BytesIO(received[0])
    assert decode_response(*read_frame_blocking(stream)) == response


def test_responses_arrive_whole_however_the_pipe_splits_them():
    first = WorkerResponse(201, [("Content-Type", "application/json"), ("X-A", "é")], b'{"a":[1]}')
    second = WorkerResponse(200, [], bytes(range(256)) * 1000)
    data = encode_response(first) + encode_response(second)

    async def receive(chunk_size: int) -> list[WorkerResponse]:
        reader = FrameReader()
        for start in range(0, len(data), chunk_size):
            reader.data_received(data[start : start + chunk_size])
        reader.eof_received()
        answers = [decode_response(*await reader.read(1)) for _ in range(2)]
        with pytest.raises(asyncio.IncompleteReadError):
            await reader.read(1)
        return answers

    for chunk_size in (1, 7, 4096, len(data)):
        assert asyncio.run(receive(chunk_size)) == [first, second]


def test_frame_reader_waits_then_times_out_or_sees_the_pipe_close():
    async def scenario() -> None:
        reader = FrameReader()
        with pytest.raises(TimeoutError):
            await reader.read(0.05)
        later = asyncio.get_running_loop().call_later(
            0.05, reader.data_received, encode_frame({"type": "ready"})
        )
        assert (await reader.read(5))[0] == {"type": "ready"}
        later.cancel()
        reader.data_received(encode_frame({"type": "ready"})[:5])  # the worker died mid-frame
        asyncio.get_running_loop().call_later(0.05, reader.connection_lost, None)
        with pytest.raises(asyncio.IncompleteReadError):
            await reader.read(5)

    asyncio.run(scenario())


def test_truncated_and_implausible_frames_are_errors():
    frame = encode_frame({"type": "ready"})
    with pytest.raises(ProtocolError):
        read_frame_blocking(io.BytesIO(frame[:-1]))
    with pytest.raises(ProtocolError):
        read_frame_blocking(io.BytesIO(b"\xff" * 8 + b"{}"))
    with pytest.raises(ProtocolError):
        decode_response({"type": "ready"}, b"")
    request = encode_request(WorkerRequest("GET", "/", "", []))
    with pytest.raises(ProtocolError):  # a call key longer than the header it starts
        read_request_blocking(io.BytesIO(request[:8] + b"\xff" * 4 + request[12:]))
    with pytest.raises(ProtocolError):
        decode_call_key(b'{"not": "a list"}')

    async def implausible() -> None:
        reader = FrameReader()
        reader.data_received(b"\xff" * 8 + b"{}")
        await reader.read(1)

    with pytest.raises(ProtocolError):
        asyncio.run(implausible())


@pytest.mark.parametrize("head", [b"not json", b"\xff\xfe", b"[1, 2]", b""])
def test_a_header_that_is_not_a_json_object_is_a_protocol_error(head):
    frame = len(head).to_bytes(4, "big") + (0).to_bytes(4, "big") + head
    with pytest.raises(ProtocolError):
        read_frame_blocking(io.BytesIO(frame))

    async def pool_side() -> None:
        reader = FrameReader()
        reader.data_received(frame + encode_frame({"type": "ready"}))
        with pytest.raises(ProtocolError):
            await reader.read(1)
        assert (await reader.read(1)) == ({"type": "ready"}, b"")  # the next frame still reads

    asyncio.run(pool_side())


@pytest.mark.slow
def test_worker_reports_load_failure_and_exits_with_its_own_code():
    request_r, request_w = os.pipe()
    response_r, response_w = os.pipe()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plumbline.runtime.r.worker",
            "--plumber-file",
            str(APPS / "syntax_error" / "plumber.R"),
            "--request-fd",
            str(request_r),
            "--response-fd",
            str(response_w),
        ],
        pass_fds=(request_r, response_w),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(request_r)
    os.close(response_w)
    try:
        with os.fdopen(response_r, "rb") as responses:
            header, _ = read_frame_blocking(responses)
        assert header["type"] == "load_failed"
        assert "unexpected '}'" in header["message"]
        assert worker.wait(60) == EXIT_LOAD_FAILED
    finally:
        os.close(request_w)
        worker.kill()
        worker.wait()


def test_a_frame_the_other_side_would_refuse_is_never_encoded():
    # Headers that JSON escapes to six bytes each: a frame header over MAX_HEADER_SIZE.
    headers = [("x-h", "\x7f" * (MAX_HEADER_SIZE // 6 + 1000))]
    with pytest.raises(FrameTooLarge):
        encode_request(WorkerRequest("GET", "/", "", headers))
    with pytest.raises(FrameTooLarge):
        encode_response(WorkerResponse(200, [("X-Big", "a" * (MAX_HEADER_SIZE + 1))]))
    # just under the limit still goes through, and reads back
    fits = WorkerRequest("GET", "/", "", [("x-h", "\x7f" * (MAX_HEADER_SIZE // 6 - 10_000))])
    _, head, _ = read_request_blocking(io.BytesIO(encode_request(fits)))
    assert decode_header(head) == _as_json(request_header(fits))
