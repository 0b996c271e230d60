"""Bundles: uploads streamed to disk and stored by sha256 (their safe extraction is
plumbline.archive's, shared with the pods' `plumbline prepare`).

A bundle is a gzip-compressed tar of the app's folder (what rsconnect uploads). Uploads never
sit in memory: chunks are hashed and written as they arrive, and refused past the size
limit.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from plumbline.archive import CHUNK, GZIP_MAGIC, BundleError, Limits, extract

__all__ = [
    "CHUNK",
    "GZIP_MAGIC",
    "BundleError",
    "BundleStore",
    "Limits",
    "StoredBundle",
    "TooLarge",
    "extract",
]


class TooLarge(BundleError):
    pass


@dataclass(frozen=True)
class StoredBundle:
    sha256: str
    size: int
    path: Path


class BundleStore:
    """Bundles under `root/<sha[:2]>/<sha>.tar.gz`: the same upload is stored once."""

    def __init__(self, root: Path, limits: Limits):
        self.root = root
        self.limits = limits
        (root / "incoming").mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.tar.gz"

    async def receive(self, chunks: AsyncIterator[bytes]) -> StoredBundle:
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "incoming", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.limits.max_bundle_size:
                        raise TooLarge(
                            f"the bundle is larger than the server's limit of "
                            f"{self.limits.max_bundle_size} bytes "
                            "(--max-bundle-size)"
                        )
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise BundleError("the upload is empty: send the bundle (a .tar.gz) as the body")
            sha = digest.hexdigest()
            final = self.path_of(sha)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
            return StoredBundle(sha, size, final)
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)
