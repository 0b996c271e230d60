"""Fixtures shared by every test folder; plain paths and helpers are in support.py."""
from __future__ import annotations

from pathlib import Path

import pytest

import support


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
