"""Fixtures shared by every test folder; plain paths and helpers are in support.py."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from pathlib import Path

import pytest

import support

# What only a test marked slow may start (scripts/test-fast.sh also runs the fast set with
# R and HAProxy off the PATH).
SLOW_PROGRAMS = frozenset({"R", "Rscript", "haproxy"})


@pytest.fixture(autouse=True)
def _fast_tests_start_no_server_r_or_haproxy(request, monkeypatch):
    """A test not marked slow fails if it listens on a socket or runs R or HAProxy."""
    if request.node.get_closest_marker("slow") is not None:
        return
    test = request.node.nodeid

    def no_listen(sock, *args):
        pytest.fail(
            f"{test} starts a server (listens on {sock.getsockname()}): mark it slow", pytrace=False
        )

    popen_init = subprocess.Popen.__init__

    def checked_popen(popen, args, *more, **kwargs):
        if isinstance(args, (str, bytes, os.PathLike)):
            words = shlex.split(os.fsdecode(args)) if kwargs.get("shell") else [args]
        else:
            words = list(args)
        program = Path(os.fsdecode(kwargs.get("executable") or words[0])).name if words else ""
        if program in SLOW_PROGRAMS:
            pytest.fail(f"{test} runs {program}: mark it slow", pytrace=False)
        popen_init(popen, args, *more, **kwargs)

    monkeypatch.setattr(socket.socket, "listen", no_listen)
    monkeypatch.setattr(subprocess.Popen, "__init__", checked_popen)


@pytest.fixture
def repo() -> Path:
    return support.REPO


@pytest.fixture
def example() -> Path:
    """The example app's plumber.R (examples/plumber-on-k8s)."""
    return support.EXAMPLE


@pytest.fixture
def free_port() -> int:
    return support.free_port()


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private PLUMBLINE_STATE_DIR for local clusters started by the test."""
    path = tmp_path / "state"
    monkeypatch.setenv("PLUMBLINE_STATE_DIR", str(path))
    return path
