"""Paths and helpers every test folder uses (the fixtures around them are in conftest.py)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = REPO / "examples" / "plumber-on-k8s"
EXAMPLE = EXAMPLE_DIR / "plumber.R"
PLUMBLINE = [sys.executable, "-m", "plumbline"]  # the CLI of this checkout's interpreter


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
