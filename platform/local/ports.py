"""Ports for local listeners (replicas) that nothing else can take before they bind.

A port the OS hands out for `bind(0)` comes from the ephemeral range, the same range the
kernel takes source ports of outgoing connections from; between picking one and a replica
binding it, a connection (HAProxy's health checks, a proxied request, any client on the
machine) may take it as its source port, and the replica then fails to start. Ports below
that range are never used as source ports: pick there, among those nobody listens on, and
never the same one twice in a row of recent picks (two replicas started together would
otherwise race for it).
"""

from __future__ import annotations

import random
import socket
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL_LOW = 32768  # Linux's default when the range cannot be read
_LOWEST = 10000  # below: well-known and registered services' ports, left alone
_RECENT = 1024  # picks remembered, not handed out again until this many newer ones

_lock = threading.Lock()
_recent: deque[int] = deque(maxlen=_RECENT)


def ephemeral_low() -> int:
    """The lowest port the kernel takes source ports of outgoing connections from."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def port_is_free(host: str, port: int) -> bool:
    """Nobody listens there (HAProxy binds with SO_REUSEADDR, so TIME_WAIT is no matter)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def listen_port(host: str = "127.0.0.1", choose: Callable[[int, int], int] = random.randint) -> int:
    """A port to listen on at `host` that no listener holds and no outgoing connection can
    take (see above); the OS's pick if the range below the ephemeral one is too small or full.
    `choose(a, b)` picks where to start looking (random: processes picking at once rarely
    start at the same place)."""
    low, high = _LOWEST, ephemeral_low() - 1
    if high - low >= _RECENT:
        start = choose(low, high)
        span = high - low + 1
        with _lock:
            for step in range(span):
                port = low + (start - low + step) % span
                if port not in _recent and port_is_free(host, port):
                    _recent.append(port)
                    return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
