"""R's own environment variables, asked of R once and handed to every R process the pool starts.

R's front-end script (bin/R) sets R_HOME, R_SHARE_DIR, LD_LIBRARY_PATH and a few dozen more
before R itself starts, and an embedded R needs the same. rpy2 finds them on its own each time
a process imports and starts it: `R RHOME`, then Rscript twice (LD_LIBRARY_PATH, then every
variable), ~300 ms of each worker's start and of the zygote's. The pool asks R once, with one
Rscript started as early as `plumbline serve` begins (it runs beside the front's imports), and
starts its R processes with R's variables set; R's LD_LIBRARY_PATH travels in
R_LD_LIBRARY_PATH_ENV, which also tells the R side (r/worker.py) that rpy2 need not ask again.
Should the probe fail, the processes start as before and rpy2 asks R itself.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import subprocess

from plumbline.runtime.protocol import R_LD_LIBRARY_PATH_ENV

log = logging.getLogger("plumbline.pool")
# What rpy2 runs to learn them (rinterface._getrenvvars): every variable, as CSV.
_PRINT_ENVIRONMENT = "x <- Sys.getenv(); y <- as.character(x); names(y) <- names(x); write.csv(y)"
# R's session temporary folder of the probe itself (gone once it exits), not a setting.
_NOT_INHERITED = frozenset({"R_SESSION_TMPDIR"})


class REnvironmentProbe:
    """Rscript printing its environment, started at once; `variables()` waits for it."""

    def __init__(self, rscript: str = "Rscript"):
        self._baseline = dict(os.environ)
        self._found: dict[str, str] | None = None
        # The Rscript rpy2 would run: R_HOME's when set, else the one on PATH.
        home = os.environ.get("R_HOME")
        path = os.path.join(home, "bin", rscript) if home else shutil.which(rscript)
        self._proc: subprocess.Popen[str] | None = None
        if path:
            try:
                self._proc = subprocess.Popen(
                    [path, "-e", _PRINT_ENVIRONMENT],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
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

    def _read(self, proc: subprocess.Popen[str], timeout: float) -> dict[str, str] | None:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            out = ""
        rows = list(csv.reader(io.StringIO(out)))
        if proc.returncode != 0 or not rows or rows[0] != ["", "x"]:
            log.warning(
                {
                    "message": "could not read R's environment; each R process asks R itself",
                    "event": "r_environment_unknown",
                }
            )
            return None
        return {
            name: value
            for name, value in rows[1:]
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
