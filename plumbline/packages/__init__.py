"""R packages for an app folder: read its manifest.json or renv.lock, install what R lacks
into a shared, content-addressed library. Used by the runtime (`plumbline serve DIR`, the
pod's `plumbline prepare`) and the platform (`plumbline up`, the server), so it imports
neither."""

from plumbline.packages.library import (
    LibraryCache,
    PackageError,
    Plan,
    RInfo,
    inspect_r,
    plan_for,
    prepare_library,
    with_library,
)
from plumbline.packages.requirements import (
    Requirement,
    Requirements,
    RequirementsError,
    find_requirements,
    parse_repos,
)

__all__ = [
    "LibraryCache",
    "PackageError",
    "Plan",
    "RInfo",
    "Requirement",
    "Requirements",
    "RequirementsError",
    "find_requirements",
    "inspect_r",
    "parse_repos",
    "plan_for",
    "prepare_library",
    "with_library",
]
