"""Bundle extraction and storage, directly (no server): what is refused, what is kept."""

from __future__ import annotations

import asyncio
import os
import tarfile
import tracemalloc

import pytest
from bundle_maker import file_member, link_member, tar_gz

from plumbline.platform.server.bundles import BundleError, BundleStore, Limits, TooLarge, extract

LIMITS = Limits(max_bundle_size=10**9, max_expanded_size=10**9, max_files=100)


def write(tmp_path, data: bytes):
    path = tmp_path / "bundle.tar.gz"
    path.write_bytes(data)
    return path


def test_links_inside_the_folder_are_kept(tmp_path):
    exe = tarfile.TarInfo("run.sh")
    exe.mode = 0o755
    archive = write(
        tmp_path,
        tar_gz(
            [
                file_member("./plumber.R", b"1"),
                file_member("data/model.rds", b"m"),
                link_member("latest.rds", "data/model.rds"),
                link_member("data/same.rds", "model.rds"),
                link_member("copy.rds", "data/model.rds", hard=True),
                (exe, b"#!/bin/sh\n"),
            ]
        ),
    )
    dest = tmp_path / "out"
    extract(archive, dest, LIMITS)
    assert (dest / "latest.rds").read_bytes() == b"m" and (dest / "latest.rds").is_symlink()
    assert (dest / "data" / "same.rds").read_bytes() == b"m"
    assert (dest / "copy.rds").read_bytes() == b"m" and not (dest / "copy.rds").is_symlink()
    assert os.access(dest / "run.sh", os.X_OK)


@pytest.mark.parametrize(
    "members, message",
    [
        ([link_member("a", "b/../../.."), file_member("plumber.R", b"1")], "pointing outside"),
        ([link_member("up", ".."), file_member("plumber.R", b"1")], "pointing outside"),
        ([file_member("a/../../x", b"1")], "escapes"),
        ([file_member("C:/x", b"1")], "absolute"),
    ],
)
def test_escapes_are_refused_and_nothing_is_left(tmp_path, members, message):
    dest = tmp_path / "out"
    with pytest.raises(BundleError, match=message):
        extract(write(tmp_path, tar_gz(members)), dest, LIMITS)
    assert not dest.exists() and os.listdir(tmp_path) == ["bundle.tar.gz"]


def test_devices_and_fifos_are_refused(tmp_path):
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    with pytest.raises(BundleError, match="not a file, folder or link"):
        extract(write(tmp_path, tar_gz([(fifo, None)])), tmp_path / "out", LIMITS)


def test_truncated_archive_is_refused(tmp_path):
    data = tar_gz([file_member("plumber.R", b"x" * 100_000)])
    with pytest.raises(BundleError, match="not a valid"):
        extract(write(tmp_path, data[: len(data) // 2]), tmp_path / "out", LIMITS)


def test_uploads_stream_to_disk_and_are_stored_once(tmp_path):
    store = BundleStore(tmp_path / "store", Limits(200 * 2**20, 10**9, 100))
    chunk = os.urandom(2**20)

    async def chunks(n):
        for _ in range(n):
            yield chunk

    tracemalloc.start()
    stored = asyncio.run(store.receive(chunks(100)))  # 100 MiB
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert stored.size == 100 * 2**20 and stored.path.stat().st_size == stored.size
    assert peak < 10 * 2**20, f"upload held {peak / 2**20:.0f} MiB in memory"
    again = asyncio.run(store.receive(chunks(100)))
    assert again.path == stored.path and len(list(store.root.rglob("*.tar.gz"))) == 1
    with pytest.raises(TooLarge):
        asyncio.run(BundleStore(tmp_path / "small", Limits(10, 10, 1)).receive(chunks(1)))
    assert list((tmp_path / "small" / "incoming").iterdir()) == []
