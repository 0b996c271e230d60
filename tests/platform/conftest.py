"""Fixtures shared by the control-plane tests."""
from __future__ import annotations

import pytest

from platform_cluster_harness import EmulatedApiServer


@pytest.fixture
def api_server():
    """KMock's Kubernetes API emulator on loopback, stopped after the test."""
    server = EmulatedApiServer()
    yield server
    server.stop()
