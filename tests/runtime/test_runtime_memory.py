"""The default worker memory budget from the container's cgroup, and the limits that keep a
request's frame readable by a worker (fast: files on disk, no R)."""

from __future__ import annotations

import pytest

from plumbline.runtime.pool import memory
from plumbline.runtime import settings

GIB = 1024**3


def cgroup(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return tmp_path


def test_budget_from_a_cgroup_v2_limit_shares_what_is_left_among_the_workers(tmp_path):
    root = cgroup(tmp_path, {"memory.max": str(4 * GIB), "memory.current": str(GIB // 2)})
    assert memory.container_memory(root) == (4 * GIB, GIB // 2)
    # a tenth kept back, what the container already uses taken off, split in four
    assert memory.default_budget(4, root) == int((4 * GIB * 0.9 - GIB // 2) / 4)


def test_budget_from_a_cgroup_v1_limit(tmp_path):
    root = cgroup(
        tmp_path,
        {"memory/memory.limit_in_bytes": str(2 * GIB), "memory/memory.usage_in_bytes": "0"},
    )
    assert memory.default_budget(2, root) == int(2 * GIB * 0.9 / 2)


@pytest.mark.parametrize(
    "files",
    [
        {"memory.max": "max", "memory.current": "1000"},
        {
            "memory/memory.limit_in_bytes": "9223372036854771712",
            "memory/memory.usage_in_bytes": "1000",
        },
        {},
    ],
)
def test_no_container_limit_means_no_default_limit(tmp_path, files):
    assert memory.default_budget(2, cgroup(tmp_path, files)) == 0


def test_memory_settings_take_sizes_zero_and_auto():
    config = settings.resolve(
        None, {"PLUMBLINE_MAX_WORKER_MEMORY": "1GiB", "PLUMBLINE_RECYCLE_MEMORY": "0"}
    )
    assert (config.max_worker_memory, config.recycle_memory) == (GIB, 0)
    assert settings.resolve(None, {}).max_worker_memory is None  # auto
    assert settings.BY_NAME["max_worker_memory"].render(None) == "auto"
    with pytest.raises(settings.SettingError, match="max-worker-memory"):
        settings.resolve(None, {"PLUMBLINE_MAX_WORKER_MEMORY": "lots"})


def test_head_limits_that_could_overflow_a_worker_frame_are_refused():
    with pytest.raises(settings.SettingError, match="too large together"):
        settings.resolve(None, {"PLUMBLINE_MAX_HEADER_BYTES": "1MiB"})
    with pytest.raises(settings.SettingError, match="max-body"):
        settings.resolve(None, {"PLUMBLINE_MAX_BODY": "3GiB"})
    settings.resolve(None, {"PLUMBLINE_MAX_HEADER_BYTES": "128KiB"})  # still fits
