"""Frames between the pool and a worker (no R involved, except the worker's exit code test)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys

import pytest

from plumbline.runtime.protocol import (
    ProtocolError,
    WorkerRequest,
    WorkerResponse,
    decode_request,
    decode_response,
    encode_frame,
    encode_request,
    encode_response,
    read_frame,
    read_frame_blocking,
)
from plumbline.runtime.worker import EXIT_LOAD_FAILED
from pool_harness import APPS


def test_request_survives_the_round_trip_with_binary_body():
    request = WorkerRequest("POST", "/a b", "x=%20&y", [("x-h", "v"), ("x-h", "w")],
                            bytes(range(256)) * 10, "10.0.0.1", 4321, 9000, "https")
    stream = io.BytesIO(encode_request(request) + encode_request(request))
    for _ in range(2):
        assert decode_request(*read_frame_blocking(stream)) == request
    assert read_frame_blocking(stream) is None


def test_response_round_trip_through_an_asyncio_stream():
    response = WorkerResponse(201, [("Content-Type", "application/json"), ("X-A", "é")], b'{"a":[1]}')

    async def roundtrip():
        reader = asyncio.StreamReader()
        reader.feed_data(encode_response(response))
        reader.feed_eof()
        return decode_response(*await read_frame(reader))

    assert asyncio.run(roundtrip()) == response


def test_truncated_and_implausible_frames_are_errors():
    frame = encode_frame({"type": "ready"})
    with pytest.raises(ProtocolError):
        read_frame_blocking(io.BytesIO(frame[:-1]))
    with pytest.raises(ProtocolError):
        read_frame_blocking(io.BytesIO(b"\xff" * 8 + b"{}"))
    with pytest.raises(ProtocolError):
        decode_response({"type": "ready"}, b"")


@pytest.mark.slow
def test_worker_reports_load_failure_and_exits_with_its_own_code():
    request_r, request_w = os.pipe()
    response_r, response_w = os.pipe()
    worker = subprocess.Popen(
        [sys.executable, "-m", "plumbline.runtime.worker",
         "--plumber-file", str(APPS / "syntax_error" / "plumber.R"),
         "--request-fd", str(request_r), "--response-fd", str(response_w)],
        pass_fds=(request_r, response_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
