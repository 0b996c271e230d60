"""The one place the server picks a Backend implementation; everything else holds the
interface (plumbline.platform.backend.Backend)."""

from __future__ import annotations

from plumbline.platform.backend import Backend, BackendError
from plumbline.platform.server.config import ServerConfig


def open_backend(config: ServerConfig) -> Backend:
    raise BackendError(
        f"the {config.backend} backend is not available in this build "
        "(the Backend implementations land with the platform restructure)"
    )
