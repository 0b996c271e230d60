"""R's own environment variables, asked of R once and handed to every R process the pool starts.

R's front-end script (bin/R) sets R_HOME, R_SHARE_DIR, LD_LIBRARY_PATH and a few dozen more
before R itself starts, and an embedded R needs the same. rpy2 finds them on its own each time
a process imports and starts it: `R RHOME`, then Rscript twice (LD_LIBRARY_PATH, then every
variable), ~300 ms of each worker's start and of the zygote's. The pool asks R once, with one
Rscript started as early as `plumbline serve` begins (it runs beside the front's imports), and
starts its R processes with R's variables set; R's LD_LIBRARY_PATH travels in
R_LD_LIBRARY_PATH_ENV, which also tells the R side (r/worker.py) that rpy2 need not ask again.
Should the probe fail, the processes start as before and rpy2 asks R itself.

The probe is on the way to the first worker (the zygote cannot start R before it has the
answer), so it starts R without the default packages (methods, utils, stats...: 0.06 s
instead of 0.23 s here) and prints with base R alone. The variables are the same: the front
end script and R's Renviron files set them, not the packages.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

from plumbline.runtime.protocol import R_LD_LIBRARY_PATH_ENV

log = logging.getLogger("plumbline.pool")
# What rpy2 asks R (rinterface._getrenvvars: every variable), printed after a marker (a site
# profile may print first) as length-prefixed bytes: "<bytes>:<name><bytes>:<value>" each, so
# no value (newlines, quotes, any encoding) can break the reading. Base R only.
_MARKER = b"plumbline-r-environment\n"
_PRINT_ENVIRONMENT = (
    "x <- Sys.getenv(); n <- names(x); x <- unname(x); "
    f'cat("{_MARKER.decode().strip()}\\n", '
    'paste0(nchar(n, "bytes"), ":", n, nchar(x, "bytes"), ":", x), sep = "")'
)
# Set for the probe alone: R starts without attaching methods, utils, stats...
_PROBE_ONLY = {"R_DEFAULT_PACKAGES": "NULL"}
# R's session temporary folder of the probe itself (gone once it exits), not a setting.
_NOT_INHERITED = frozenset({"R_SESSION_TMPDIR", *_PROBE_ONLY})


class REnvironmentProbe:
    """Rscript printing its environment, started at once; `variables()` waits for it."""

    def __init__(self, rscript: str = "Rscript"):
        self._baseline = dict(os.environ)
        self._found: dict[str, str] | None = None
        # The Rscript rpy2 would run: R_HOME's when set, else the one on PATH.
        home = os.environ.get("R_HOME")
        path = os.path.join(home, "bin", rscript) if home else shutil.which(rscript)
        self._proc: subprocess.Popen[bytes] | None = None
        if path:
            try:
                self._proc = subprocess.Popen(
                    [path, "-e", _PRINT_ENVIRONMENT],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env={**self._baseline, **_PROBE_ONLY},
                )
            except OSError:
                pass  # no R there: the R processes will say so themselves

    def variables(self, timeout: float = 60.0) -> dict[str, str] | None:
        """What R sets differently from the environment the probe started in (None if the
        probe failed: the R processes then find out for themselves)."""
        if self._proc is not None:
            self._found = self._read(self._proc, timeout)
            self._proc = None
        return self._found

    def _read(self, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, str] | None:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            out = b""
        variables = _parse(out) if proc.returncode == 0 else None
        if variables is None:
            log.warning(
                {
                    "message": "could not read R's environment; each R process asks R itself",
                    "event": "r_environment_unknown",
                }
            )
            return None
        return {
            name: value
            for name, value in variables.items()
            if name not in _NOT_INHERITED and self._baseline.get(name) != value
        }

    def child_environment(self) -> dict[str, str] | None:
        """The environment of an R process the pool starts (None: inherit ours)."""
        found = self.variables()
        if found is None:
            return None
        variables = dict(found)
        # LD_LIBRARY_PATH is not set for the process itself (the loader would use it for
        # Python's own libraries); the R side sets it after start, as rpy2 does.
        ld_library_path = variables.pop("LD_LIBRARY_PATH", os.environ.get("LD_LIBRARY_PATH", ""))
        return {**os.environ, **variables, R_LD_LIBRARY_PATH_ENV: ld_library_path}


def _parse(out: bytes) -> dict[str, str] | None:
    """The probe's variables (decoded as os.environ decodes), None if its output is not that."""
    _, marker, rest = out.partition(_MARKER)
    if not marker:
        return None
    fields: list[str] = []
    at = 0
    while at < len(rest):
        colon = rest.find(b":", at)
        if colon < 0 or not rest[at:colon].isdigit():
            return None
        end = colon + 1 + int(rest[at:colon])
        if end > len(rest):
            return None
        fields.append(os.fsdecode(rest[colon + 1 : end]))
        at = end
    if len(fields) % 2:
        return None
    return dict(zip(fields[::2], fields[1::2]))
