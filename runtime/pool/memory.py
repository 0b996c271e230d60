"""Worker memory: how much a worker may allocate, and what it holds now (Linux only).

A worker's limit is set from outside by the pool (prlimit(2) on RLIMIT_DATA) once the worker
has loaded the app, so it is the same for a worker that started R itself and for one forked
from a loaded zygote: its data segment (heap and private mappings, the memory R allocates)
may grow by `budget` beyond what it held when it became ready. Past it malloc() fails and R
raises its own "cannot allocate vector of size ..." error, which plumber answers with a 500,
instead of the kernel's OOM killer ending the whole container. Memory a forked worker
shares copy-on-write with the zygote is inherited, not allocated, so it is not charged again.

The default budget comes from the container's memory limit (cgroup v2 memory.max, or v1
memory.limit_in_bytes): what the container has left once the first worker has loaded,
shared among the workers, with a tenth kept back for the server itself.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

_CGROUP = Path("/sys/fs/cgroup")
# cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages).
_NO_LIMIT = 1 << 60
_PAGE = os.sysconf("SC_PAGE_SIZE")
_HEADROOM = 0.9


def container_memory(root: Path = _CGROUP) -> tuple[int, int] | None:
    """(limit, usage) of this container's memory cgroup in bytes; None without a limit."""
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        try:
            limit_text = (root / limit_file).read_text().strip()
            usage = int((root / usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max":
            return None
        try:
            limit = int(limit_text)
        except ValueError:
            return None
        return None if limit >= _NO_LIMIT else (limit, usage)
    return None


def default_budget(workers: int, root: Path = _CGROUP) -> int:
    """Bytes each of `workers` may allocate beyond its loaded app; 0 without a limit."""
    found = container_memory(root)
    if found is None:
        return 0
    limit, usage = found
    return max(int((limit * _HEADROOM - usage) / max(workers, 1)), 0)


def data_size(pid: int) -> int | None:
    """The process's data segment (VmData), what RLIMIT_DATA limits; None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def limit_data(pid: int, budget: int) -> int | None:
    """Let process `pid` grow its data segment by `budget` bytes from now; the limit set,
    or None when the process is gone."""
    current = data_size(pid)
    if current is None:
        return None
    limit = current + budget
    try:
        resource.prlimit(pid, resource.RLIMIT_DATA, (limit, limit))
    except ProcessLookupError:
        return None
    return limit


class Resident:
    """A process's resident memory, read cheaply and repeatedly (/proc/PID/statm, kept open)."""

    def __init__(self, pid: int):
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None

    def bytes(self) -> int | None:
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
