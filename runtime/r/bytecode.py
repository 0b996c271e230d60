"""The worker's R code, byte-compiled once per version of it (like Python's __pycache__).

Sourced, the bridge's closures are compiled by R's JIT at a worker's first requests: 30 ms
(direct path) to 190 ms (plumber's pipeline) added to a fresh worker's first two answers,
after every start and every replacement; and in a worker forked from the loaded zygote, the
compiled code and the compiler's garbage made ~35 MiB of heap pages private. The sources
compiled ahead (`python -m plumbline.runtime.r.bytecode`, run by scripts/install.sh and the
image build) load in ~6 ms, already compiled, and a zygote's workers share that code.

The compiled file is named by a digest of the sources and of R's version, so an edited
source or another R never loads stale code: without a matching file the worker sources the
files as before (R's JIT then compiles at first use).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import plumbline

_HERE = Path(__file__).parent
# plumbline/routes.py's REPORT_R, not imported from there: that module brings the annotation
# parser, ~20 ms of every R process's start.
REPORT_R = Path(plumbline.__file__).with_name("route_report.R")
# The order the worker has always sourced them in.
SOURCES = (
    _HERE / "bridge.R",
    _HERE / "fastpath.R",
    REPORT_R,
    _HERE / "direct.R",
    _HERE / "json_writer.R",
)
CACHE_DIR = _HERE / "__rcache__"


def compiled_path(r_version: str, sources: tuple[Path, ...] = SOURCES) -> Path:
    """Where the compiled form of these sources, for this R, is kept."""
    digest = hashlib.sha256(r_version.encode())
    for source in sources:
        digest.update(source.read_bytes())
    return CACHE_DIR / f"bridge-{digest.hexdigest()[:24]}.Rc"


def load(ri, envir, r_version: str) -> bool:
    """Evaluate the sources into `envir`: compiled when a matching file exists and loads
    (True), else sourced (False)."""
    compiled = compiled_path(r_version)
    if compiled.is_file():
        try:
            ri.evalr("compiler::loadcmp")(str(compiled), envir=envir)
            return True
        except Exception as exc:  # a damaged file: the sources are still there
            os.write(2, f"plumbline: {compiled.name} did not load ({exc}); sourcing\n".encode())
    for source in SOURCES:
        ri.baseenv["sys.source"](str(source), envir=envir)
    return False


_COMPILE_R = """
args <- commandArgs(trailingOnly = TRUE)
cat(R.version.string, file = args[[1]])
"""


def compile_sources(rscript: str = "Rscript") -> Path:
    """Compile the sources for the R that `rscript` runs, unless done already; the file
    (written atomically, so a worker starting meanwhile sees it whole or not at all)."""
    with tempfile.TemporaryDirectory() as tmp:
        version_file = Path(tmp) / "version"
        subprocess.run([rscript, "-e", _COMPILE_R, str(version_file)], check=True)
        target = compiled_path(version_file.read_text())
        if target.is_file():
            return target
        joined = Path(tmp) / "bridge.R"
        joined.write_text("\n".join(source.read_text() for source in SOURCES))
        CACHE_DIR.mkdir(exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(
            [
                rscript,
                "-e",
                "a <- commandArgs(TRUE); invisible(compiler::cmpfile(a[[1]], a[[2]], verbose = FALSE))",
                str(joined),
                str(partial),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        partial.replace(target)
    for stale in CACHE_DIR.glob("bridge-*.Rc"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    print(compile_sources(sys.argv[1] if len(sys.argv) > 1 else "Rscript"))
