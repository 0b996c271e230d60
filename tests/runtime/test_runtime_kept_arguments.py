"""runtime/r/r_call.py KeptArguments: a worker keeps the R arguments it made for a request's
call key and calls R with them again for the next request with that key. Each request must
still be answered as if it were the first: R code that changes its arguments changes its own
copies (R's copy-on-modify), the cache stays within its bound, and a key too long to keep is
answered all the same."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    #* @serializer text
    #* @get /append
    function(x = "") {
      x[1] <- paste0(x[1], "!")  # changes its argument: must not reach the next request
      names(x) <- "changed"
      x
    }

    #* @get /items/<id>
    function(id, q = "none") {
      id <- paste0(id, "+")
      list(id = id, q = q)
    }

    #* @post /typed
    function(a = 0) list(a = a)
    """
)

# One worker's R in a fresh process (R is embedded once per process), its cache bounded to
# four keys: answer the requests on stdin (JSON lines: method, path, query, headers, body)
# and print each answer with the number of keys kept after it.
_WORKER = """
import io, json, sys
from pathlib import Path
from plumbline.runtime.r import worker
from plumbline.runtime.r.r_call import KeptArguments
from plumbline.runtime.protocol import WorkerRequest, encode_request, read_request_blocking
bridge = worker.RBridge()
assert bridge.load(Path(sys.argv[1]), [], True) is None
bridge._kept = KeptArguments(bridge._rlib, capacity=4)
for line in sys.stdin:
    method, path, query, headers, body = json.loads(line)
    request = WorkerRequest(method, path, query, [tuple(h) for h in headers], body.encode())
    head, answer = bridge.answer(*read_request_blocking(io.BytesIO(encode_request(request))))
    print(json.dumps([head.status, answer.decode(), len(bridge._kept)]), flush=True)
"""


def answers(tmp_path, requests: list[list]) -> list[list]:
    app = tmp_path / "plumber.R"
    app.write_text(APP)
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, str(app)],
        input="".join(json.dumps(r) + "\n" for r in requests),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in out.stdout.strip().splitlines()[-len(requests) :]]


def get(path: str, query: str = "") -> list:
    return ["GET", path, query, [["host", "x"]], ""]


def test_arguments_r_code_changes_are_its_own_copies(tmp_path):
    requests = [get("/append", "x=a")] * 3 + [get("/items/7", "q=1")] * 3
    got = answers(tmp_path, requests)
    assert [status for status, _, _ in got] == [200] * 6
    assert [body for _, body, _ in got[:3]] == ["a!"] * 3
    assert [json.loads(body) for _, body, _ in got[3:]] == [{"id": ["7+"], "q": ["1"]}] * 3
    assert got[-1][2] == 2  # one key for each


def test_the_cache_starts_over_when_full_and_keeps_answering(tmp_path):
    queries = [f"x={n}" for n in range(10)]
    requests = [get("/append", q) for q in queries + queries[::-1]]
    got = answers(tmp_path, requests)
    expected = [f"{n}!" for n in range(10)] + [f"{n}!" for n in reversed(range(10))]
    assert [body for _, body, _ in got] == expected
    assert max(kept for _, _, kept in got) == 4  # never over its bound


def test_a_key_too_long_to_keep_is_answered_and_not_kept(tmp_path):
    long_value = "y" * 2000
    requests = [get("/append", f"x={long_value}")] * 2 + [get("/append", "x=b")]
    got = answers(tmp_path, requests)
    assert [body for _, body, _ in got] == [long_value + "!"] * 2 + ["b!"]
    assert [kept for _, _, kept in got] == [0, 0, 1]


def test_a_body_s_content_type_is_part_of_its_key(tmp_path):
    json_type = [["host", "x"], ["content-type", "application/json"]]
    text_type = [["host", "x"], ["content-type", "text/plain"]]
    requests = [
        ["POST", "/typed", "", json_type, '{"a": 5}'],
        ["POST", "/typed", "", text_type, '{"a": 5}'],  # plumber does not parse it as JSON
        ["POST", "/typed", "", json_type, '{"a": 6}'],
        ["POST", "/typed", "", json_type, ""],  # no body: plumber reads no content type
    ]
    got = answers(tmp_path, requests)
    assert [(status, json.loads(body)) for status, body, _ in got] == [
        (200, {"a": [5]}),
        (200, {"a": [0]}),
        (200, {"a": [6]}),
        (200, {"a": [0]}),
    ]
    assert got[-1][2] == 2  # two content types, one key each; the body is not in the key
