"""runtime/r/bytecode.py: the worker's R code compiled ahead, used only when it matches the
sources and R, and answering exactly as the sourced code does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plumbline.runtime.r import bytecode

pytestmark = pytest.mark.slow

APP = Path(__file__).parent / "apps" / "collections" / "plumber.R"

# One worker's R in a fresh process (R is embedded once per process): load the app, say
# whether the bridge came compiled and whether its request entry points are bytecode before
# any request ran, then answer a few requests (direct path and plumber's pipeline).
_WORKER = """
import json, sys
from pathlib import Path
from plumbline.runtime.r import bytecode, worker
import io
from plumbline.runtime.protocol import WorkerRequest, encode_request, read_request_blocking
if sys.argv[2]:
    bytecode.CACHE_DIR = Path(sys.argv[2])
bridge = worker.RBridge()
assert bridge.load(Path(sys.argv[1]), [], True) is None
is_compiled = bridge._ri.evalr(
    "function(f) typeof(.Internal(bodyCode(f))) == 'bytecode'"
)
before_requests = [bool(is_compiled(bridge._bridge[name])[0])
                   for name in ("plumbline_direct", "plumbline_handle")]
answers = []
for path, query in (("/pid", ""), ("/frame", ""), ("/nowhere", "a=1")):
    request = WorkerRequest("GET", path, query, [("host", "x")])
    head, body = bridge.answer(*read_request_blocking(io.BytesIO(encode_request(request))))
    answers.append([head.status, head.headers, body.decode() if path != "/pid" else "<pid>"])
print(json.dumps({
    "compiled": bridge.compiled,
    "bytecode": before_requests,
    "answers": answers,
}))
"""


def run_worker(cache_dir: str = "") -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, str(APP), cache_dir],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_worker_loads_its_r_code_compiled_and_answers_as_the_sourced_code(tmp_path):
    bytecode.compile_sources()  # what scripts/install.sh did
    compiled = run_worker()
    sourced = run_worker(str(tmp_path / "empty"))
    assert compiled["compiled"] is True
    assert compiled["bytecode"] == [True, True]  # compiled before any request ran
    assert sourced["compiled"] is False
    assert sourced["bytecode"] == [False, False]
    assert compiled["answers"] == sourced["answers"]
    assert [a[0] for a in compiled["answers"]] == [200, 200, 404]


def test_a_damaged_compiled_file_is_passed_over_for_the_sources(tmp_path):
    good = bytecode.compile_sources()
    damaged = tmp_path / "cache"
    damaged.mkdir()
    (damaged / good.name).write_bytes(good.read_bytes()[:1000])  # cut short
    answers = run_worker(str(damaged))
    assert answers["compiled"] is False
    assert [a[0] for a in answers["answers"]] == [200, 200, 404]


def test_the_compiled_file_is_named_by_the_sources_and_r(tmp_path):
    copies = []
    for source in bytecode.SOURCES:
        copy = tmp_path / source.name
        shutil.copy(source, copy)
        copies.append(copy)
    sources = tuple(copies)
    name = bytecode.compiled_path("R version 4.2.2", sources)
    assert name == bytecode.compiled_path("R version 4.2.2", sources)
    assert name != bytecode.compiled_path("R version 4.3.0", sources)
    copies[2].write_text(copies[2].read_text() + "\n# edited\n")
    assert name != bytecode.compiled_path("R version 4.2.2", sources)


def test_compiling_writes_one_current_file_and_drops_stale_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(bytecode, "CACHE_DIR", tmp_path)
    stale = tmp_path / "bridge-000000000000000000000000.Rc"
    stale.write_bytes(b"old")
    target = bytecode.compile_sources()
    assert target.parent == tmp_path and target.stat().st_size > 10_000
    assert sorted(tmp_path.iterdir()) == [target]
    written = target.stat().st_mtime_ns
    assert bytecode.compile_sources() == target  # up to date: not compiled again
    assert target.stat().st_mtime_ns == written
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))
