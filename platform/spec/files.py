"""The files of an app folder that ship with it, as rsconnect bundles them.

The whole folder, except what never belongs in a deployment (version control, IDE state,
rsconnect's own records, renv's and packrat's local libraries) and what an `.rscignore`
names: each line of an `.rscignore` is a name (or a glob, or a path below that folder)
ignored in the folder that holds the `.rscignore`, as rsconnect reads it. plumbline keeps
`manifest.json` and `renv.lock`, which say what R packages the app needs.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

IGNORE_FILE = ".rscignore"
# rsconnect 0.8.29's own exclusions at the top of the folder, and at every level.
TOP_LEVEL = frozenset(
    {
        ".DS_Store",
        ".gitignore",
        ".Rhistory",
        "rsconnect",
        "packrat",
        "app_cache",
        ".svn",
        ".git",
        ".quarto",
        ".Rproj.user",
    }
)
EVERY_LEVEL = frozenset({"renv", IGNORE_FILE, "__pycache__"})


def _ignored(folder: Path) -> list[str]:
    path = folder / IGNORE_FILE
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line.strip("/"))
    return patterns


def _matches(relative: str, patterns: list[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(relative, p) or ("/" not in p and fnmatch.fnmatchcase(name, p))
        for p in patterns
    )


def app_files(folder: Path) -> list[Path]:
    """Every file that ships with the app in `folder`, sorted; symlinks are followed."""
    folder = Path(folder)
    found: list[Path] = []

    def walk(directory: Path, prefix: str, inherited: list[tuple[str, list[str]]]) -> None:
        rules = inherited + [(prefix, _ignored(directory))]
        for entry in sorted(directory.iterdir()):
            relative = f"{prefix}{entry.name}"
            if entry.name in EVERY_LEVEL or (
                not prefix and (entry.name in TOP_LEVEL or entry.name.endswith(".Rproj"))
            ):
                continue
            if any(_matches(relative[len(base) :], patterns) for base, patterns in rules):
                continue
            if entry.is_dir():
                walk(entry, f"{relative}/", rules)
            elif entry.is_file():
                found.append(entry)

    walk(folder, "", [])
    return found
