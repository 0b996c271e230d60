"""The command line of a worker the pool starts itself (no preloading). The zygote, which
loads the app the same way, takes the same loading options in its load message instead
(head_start.py): it is started before they are known."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path


def r_process_command(
    module: str, plumber_file: str | Path, attach: Iterable[str], inline_futures: bool
) -> list[str]:
    """`python -m MODULE` with the app's loading options; the caller adds its descriptors."""
    args = [sys.executable, "-m", module, "--plumber-file", str(Path(plumber_file).resolve())]
    for package in attach:
        args += ["--attach", package]
    if not inline_futures:
        args.append("--no-inline-futures")
    return args
