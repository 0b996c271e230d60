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


@pytest.fixture(autouse=True)
def _fast_tests_read_routes_without_r(request, monkeypatch):
    """Fast tests start no R: there the control plane reads routes from the annotations
    (PLUMBLINE_ROUTE_TABLE=annotations); slow tests get plumber's own route table from R."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setenv("PLUMBLINE_ROUTE_TABLE", "annotations")
