"""Replica ports: never where the kernel takes outgoing connections' source ports, never one a
listener holds, never the same one to two replicas started together."""

from __future__ import annotations

import socket

import pytest

from plumbline.platform.local import ports


def test_ports_are_below_the_ephemeral_range_and_bindable():
    low = ports.ephemeral_low()
    picked = [ports.listen_port() for _ in range(50)]
    assert all(10000 <= port < low for port in picked)
    assert len(set(picked)) == 50  # recent picks are not handed out again
    for port in picked[:5]:
        assert ports.port_is_free("127.0.0.1", port)


@pytest.mark.slow  # it listens
def test_a_port_someone_listens_on_is_skipped():
    start = ports.listen_port()  # free a moment ago; now taken by a listener
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", start))
        taken.listen()
        ports._recent.clear()  # so only the listener can keep `start` from being picked
        assert not ports.port_is_free("127.0.0.1", start)
        picked = ports.listen_port(choose=lambda low, high: start)
    assert picked != start
    assert ports.port_is_free("127.0.0.1", picked)


def test_without_room_below_the_ephemeral_range_the_os_picks(monkeypatch):
    low = ports.ephemeral_low()
    monkeypatch.setattr(ports, "ephemeral_low", lambda: 10500)
    port = ports.listen_port()
    assert port >= low  # the OS picks from the ephemeral range
    assert ports.port_is_free("127.0.0.1", port)
