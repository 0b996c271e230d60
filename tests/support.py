"""Paths and helpers every test folder uses (the fixtures around them are in conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from plumbline.platform.local.ports import listen_port

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = REPO / "examples" / "plumber-on-k8s"
EXAMPLE = EXAMPLE_DIR / "plumber.R"
PLUMBLINE = [sys.executable, "-m", "plumbline"]  # the CLI of this checkout's interpreter


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on, which no outgoing connection can take before the test's
    server binds it (the local cluster's way of picking replica ports)."""
    return listen_port(host)
