"""Exit codes of every `plumbline` command, declared once, and the one error type commands
raise to end with a message (`plumbline COMMAND: MESSAGE` on stderr, then the code)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # ran and failed: a rollout, an API call, an app that did not start
    USAGE = 2  # refused before changing anything: bad usage, setting, spec or plumber.R
    APP_LOAD = 3  # serve: plumber.R failed to load in R (R's message is printed)
    BIND = 4  # serve: the address could not be bound (e.g. the port is in use)
    R_BOOT = 5  # an R worker process: R or plumbline's bridge could not start
    PACKAGES = 6  # serve, prepare: the app's R packages could not be installed
    INTERRUPTED = 130  # Ctrl-C

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "Done (serve: stopped by SIGTERM/SIGINT after draining).",
    ExitCode.FAILED: "The operation ran and failed: a rollout, the Kubernetes API, the local "
    "cluster, an app that did not start.",
    ExitCode.USAGE: "Refused before anything changed: bad usage, a bad setting or spec, a "
    "plumber.R that plumber would refuse.",
    ExitCode.APP_LOAD: "`serve`: plumber.R failed to load in R (R's message is printed); the "
    "port was never bound.",
    ExitCode.BIND: "`serve`: the address could not be bound (for example the port is in use).",
    ExitCode.R_BOOT: "An R worker process could not start R or plumbline's bridge (internal "
    "to `serve`).",
    ExitCode.PACKAGES: "`serve`, `prepare`: the R packages of the app's manifest.json or "
    "renv.lock could not be installed (R's message is printed).",
    ExitCode.INTERRUPTED: "Interrupted (Ctrl-C); what was applied stays applied.",
}


class CommandError(Exception):
    """Ends a command: `plumbline COMMAND: message` on stderr and exit `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED):
        super().__init__(message)
        self.message, self.code = message, code


def exit_codes_markdown() -> list[str]:
    """The exit code table of the docs."""
    lines = ["| Code | Meaning |", "|---|---|"]
    return lines + [f"| {code.value} | {code.meaning} |" for code in ExitCode]
